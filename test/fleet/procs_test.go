package fleet

import "github.com/pgrouter/pgrouter/test/testenv"

// startMember runs a member of the test fleet (testenv.StartMember with
// this package's binary and etcd).
func startMember(dir, name string, env ...string) (*testenv.Member, error) {
	return testenv.StartMember(bin, etcd.URL, dir, name, env...)
}
