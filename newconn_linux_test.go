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
	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// ackingPair returns the two ends of a socket pair: ours for NewConn, and
// the peer, which acknowledges the first request it reads (the bind) in
// the background and is then the test's to use.
func ackingPair(tb testing.TB) (ours, peer *os.File) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	ours, peer = os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "peer")
	tb.Cleanup(func() { ours.Close(); peer.Close() })
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		// NLMSG_ERROR with error 0 and the request's header.
		req := make([]byte, 4096)
		n, err := peer.Read(req)
		if err != nil || n < wire.HeaderLen {
			return
		}
		ack := make([]byte, wire.HeaderLen+4+wire.HeaderLen)
		binary.NativeEndian.PutUint32(ack[0:], uint32(len(ack)))
		binary.NativeEndian.PutUint16(ack[4:], wire.NLMsgError)
		copy(ack[8:12], req[8:12]) // sequence number
		copy(ack[20:], req[:wire.HeaderLen])
		peer.Write(ack)
	}()
	tb.Cleanup(func() { <-acked })
	return ours, peer
}

// packetMsg returns a PACKET message for packet id with a small payload.
func packetMsg(id uint32) []byte {
	msg, start := wire.AppendHeader(nil, wire.QueueType(wire.MsgPacket), 0, 0, wire.ProtoIPv4, 0)
	hdr := []byte{0, 0, 0, 0, 0x08, 0x00, 3} // packet id, IPv4, output hook
	binary.BigEndian.PutUint32(hdr, id)
	msg = wire.AppendAttr(msg, wire.AttrPacketHdr, hdr)
	msg = wire.AppendAttr(msg, wire.AttrPayload, make([]byte, 28))
	return wire.Finish(msg, start)
}

// TestNewConnPeerGone: when the peer of a NewConn socket goes away, Serve
// returns io.EOF instead of spinning on empty reads.
func TestNewConnPeerGone(t *testing.T) {
	ours, peer := ackingPair(t)
	conn, err := nfqueue.NewConn(ours, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer.Close()
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

// TestCloseFromOnError: OnError may close the Conn, also when the
// VerdictTimeout goroutine reports the error.
func TestCloseFromOnError(t *testing.T) {
	ours, peer := ackingPair(t)
	var conn *nfqueue.Conn
	closed := make(chan error, 1)
	conn, err := nfqueue.NewConn(ours, 0, &nfqueue.Config{
		VerdictTimeout: 10 * time.Millisecond,
		OnError:        func(error) { closed <- conn.Close() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := peer.Write(packetMsg(1)); err != nil {
		t.Fatal(err)
	}
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	peer.Close() // the timeout verdict for packet 1 cannot be sent
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close called from OnError did not return")
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); !errors.Is(err, nfqueue.ErrClosed) {
		t.Fatalf("SetVerdict after Close: %v", err)
	}
}

// TestMalformedPacketDropped: a packet message that cannot be decoded past
// its header is reported, and Serve drops the packet rather than leaving
// it in the kernel's queue.
func TestMalformedPacketDropped(t *testing.T) {
	ours, peer := ackingPair(t)
	errs := make(chan error, 4)
	conn, err := nfqueue.NewConn(ours, 0, &nfqueue.Config{DisableBatching: true, OnError: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })

	msg, start := wire.AppendHeader(nil, wire.QueueType(wire.MsgPacket), 0, 0, wire.ProtoIPv4, 0)
	msg = wire.AppendAttr(msg, wire.AttrPacketHdr, []byte{0, 0, 0, 42, 0x08, 0x00, 3})
	msg = wire.AppendAttr(msg, wire.AttrMark, []byte{1, 2}) // a mark is 4 bytes
	if _, err := peer.Write(wire.Finish(msg, start)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		var oe *nfqueue.OpError
		if !errors.Is(err, nfqueue.ErrMalformed) || !errors.As(err, &oe) || oe.ID != 42 {
			t.Fatalf("OnError got %v, want ErrMalformed for packet 42", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported")
	}
	buf := make([]byte, 4096)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var it wire.Messages
	var m wire.Message
	it.Reset(buf[:n])
	if !it.Next(&m) {
		t.Fatal("no message")
	}
	_, attrs, _ := wire.SplitGenMsg(m.Payload)
	a := wire.NewAttrs(attrs)
	for a.Next() {
		if a.Type() == wire.AttrVerdictHdr {
			code, id, _ := wire.VerdictHdr(a.Data())
			if id != 42 || code != wire.NFDrop {
				t.Fatalf("verdict %d for packet %d, want drop for 42", code, id)
			}
			return
		}
	}
	t.Fatal("no verdict header")
}
