package nfqueue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

// TestOpenInvalidConfig: each invalid Config fails in Open with
// ErrInvalidConfig, before anything reaches the kernel (so without
// privileges too).
func TestOpenInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  nfqueue.Config
	}{
		{"copy range over the maximum", nfqueue.Config{CopyRange: nfqueue.MaxCopyRange + 1}},
		{"copy mode none", nfqueue.Config{CopyMode: nfqueue.CopyNone}},
		{"unknown copy mode", nfqueue.Config{CopyMode: 9}},
		{"copy range with meta", nfqueue.Config{CopyMode: nfqueue.CopyMeta, CopyRange: 100}},
		{"negative bind retry", nfqueue.Config{BindRetry: -time.Second}},
		{"negative verdict timeout", nfqueue.Config{VerdictTimeout: -time.Second}},
		{"verdict timeout under 1ms", nfqueue.Config{VerdictTimeout: time.Microsecond}},
		{"timeout verdict with payload", nfqueue.Config{VerdictTimeout: time.Second, TimeoutVerdict: nfqueue.Accept.WithPayload([]byte{1})}},
		{"timeout verdict defer", nfqueue.Config{VerdictTimeout: time.Second, TimeoutVerdict: nfqueue.Defer}},
		{"read buffer over 1 GiB", nfqueue.Config{ReadBufferSize: 2 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := nfqueue.Open(0, &tc.cfg)
			if conn != nil {
				conn.Close()
			}
			var oe *nfqueue.OpError
			if !errors.Is(err, nfqueue.ErrInvalidConfig) || !errors.As(err, &oe) || oe.Op != "open" {
				t.Fatalf("Open: %v, want an open OpError with ErrInvalidConfig", err)
			}
		})
	}
	if _, err := nfqueue.OpenSet(0xfffe, 3, nil, nil); !errors.Is(err, nfqueue.ErrInvalidConfig) {
		t.Errorf("OpenSet past queue 65535: %v", err)
	}
	if _, err := nfqueue.OpenSet(0, 0, nil, nil); !errors.Is(err, nfqueue.ErrInvalidConfig) {
		t.Errorf("OpenSet of no queue: %v", err)
	}
}
