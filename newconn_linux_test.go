package nfqueue_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

// TestNewConnPeerGone binds through NewConn on a socket pair whose other end
// acknowledges the bind and then goes away: Serve returns io.EOF instead of
// spinning on the empty reads.
func TestNewConnPeerGone(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, peer := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "peer")
	defer ours.Close()
	go func() {
		// Acknowledge the CONFIG request: NLMSG_ERROR with error 0 and the
		// request's header.
		req := make([]byte, 4096)
		n, err := peer.Read(req)
		if err != nil || n < 16 {
			peer.Close()
			return
		}
		ack := make([]byte, 36)
		binary.NativeEndian.PutUint32(ack[0:], 36)
		binary.NativeEndian.PutUint16(ack[4:], 2) // NLMSG_ERROR
		copy(ack[8:12], req[8:12])                // sequence number
		copy(ack[20:36], req[:16])
		peer.Write(ack)
		peer.Close()
	}()
	conn, err := nfqueue.NewConn(ours, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		done <- conn.Serve(context.Background(), func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Serve: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when the peer went away")
	}
}
