package fleet

import "github.com/pgrouter/pgrouter/test/testenv"

// startMember runs a member of the test fleet (testenv.StartMember with
// this package's binary, on the etcd at etcdURL).
func startMember(dir, name, etcdURL string, env ...string) (*testenv.Member, error) {
	return testenv.StartMember(bin, etcdURL, dir, name, env...)
}
