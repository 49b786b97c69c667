package nfqueue_test

import (
	"os"
	"testing"

	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestMain lets a normal user run the kernel test inside a user namespace
// (NFQUEUE_USERNS=1), like the root package's kernel tests.
func TestMain(m *testing.M) {
	if code := nstest.ReexecInUserNS(); code >= 0 {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
