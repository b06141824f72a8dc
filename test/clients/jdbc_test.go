package clients

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

const jdbcJar = "/usr/share/java/postgresql.jar"

func jdbcInstalled() error {
	for _, tool := range []string{"javac", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s missing (install: make deps, or apt-get install -y default-jdk-headless): %v", tool, err)
		}
	}
	if _, err := os.Stat(jdbcJar); err != nil {
		return fmt.Errorf("pgJDBC missing (install: make deps, or apt-get install -y libpostgresql-jdbc-java): %v", err)
	}
	return nil
}

var (
	jdbcOnce    sync.Once
	jdbcClasses string
	jdbcErr     error
)

// jdbc compiles JdbcClient.java once per test binary into a temporary
// directory (removed by the OS's tmp cleaning, not before: subtests share it).
// The JVM's time zone becomes the session TimeZone pgJDBC sends at startup.
func jdbc(t *testing.T) []string {
	jdbcOnce.Do(func() {
		jdbcClasses, jdbcErr = os.MkdirTemp("", "pgrouter-jdbc-")
		if jdbcErr != nil {
			return
		}
		out, err := exec.Command("javac", "-cp", jdbcJar, "-d", jdbcClasses, "JdbcClient.java").CombinedOutput()
		if err != nil {
			jdbcErr = fmt.Errorf("javac JdbcClient.java: %v\n%s", err, out)
		}
	})
	if jdbcErr != nil {
		t.Fatal(jdbcErr)
	}
	return []string{"java", "-Duser.timezone=America/Sao_Paulo", "-cp", jdbcClasses + ":" + jdbcJar, "JdbcClient"}
}
