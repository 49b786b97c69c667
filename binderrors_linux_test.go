package nfqueue_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqtest"
)

// TestBindErrors: each errno the kernel can answer a bind with comes back
// as the package's clear error, still matching the errno.
func TestBindErrors(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		cfg   nfqueue.Config
		want  error
	}{
		// nfnetlink answers EINVAL when no nfnetlink_queue subsystem is there.
		{syscall.EINVAL, nfqueue.Config{}, nfqueue.ErrModuleMissing},
		{syscall.EOPNOTSUPP, nfqueue.Config{Conntrack: true}, nfqueue.ErrNotSupported},
		{syscall.EOPNOTSUPP, nfqueue.Config{SecCtx: true}, nfqueue.ErrNotSupported},
		// Through a socket pair the owner cannot be looked up in /proc:
		// with CAP_NET_ADMIN (as root) this is a busy queue.
		{syscall.EPERM, nfqueue.Config{}, nil},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			k := nfqtest.NewKernel(t)
			k.FailBind(tc.errno)
			conn, err := k.Open(9, &tc.cfg)
			if err == nil {
				conn.Close()
				t.Fatal("Open succeeded")
			}
			var oe *nfqueue.OpError
			if !errors.As(err, &oe) || oe.Op != "bind" || oe.Queue != 9 || !errors.Is(err, tc.errno) {
				t.Fatalf("error %v: want a bind OpError for queue 9 matching %v", err, tc.errno)
			}
			want := tc.want
			if want == nil {
				want = nfqueue.ErrPermission
				if isPrivileged() {
					want = nfqueue.ErrQueueBusy
				}
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v does not match %v", err, want)
			}
		})
	}
}
