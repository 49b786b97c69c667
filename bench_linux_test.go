package nfqueue_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// BenchmarkServeLoop measures Serve's whole per-packet path (receive,
// decode, bookkeeping, handler, verdict build and send) against a peer on a
// Unix socket pair that feeds packet messages as fast as it can and reads
// the verdicts; no kernel queue is involved.
func BenchmarkServeLoop(b *testing.B) {
	for _, cfg := range []struct {
		name string
		cfg  nfqueue.Config
	}{
		{"batching", nfqueue.Config{}},
		{"no-batching", nfqueue.Config{DisableBatching: true}},
	} {
		b.Run(cfg.name, func(b *testing.B) { benchServe(b, cfg.cfg) })
	}
}

func benchServe(b *testing.B, cfg nfqueue.Config) {
	ours, peer := ackingPair(b)
	conn, err := nfqueue.NewConn(ours, 0, &cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	n := uint32(b.N)
	done := make(chan struct{})
	go func() { // read verdicts until the last packet has one
		defer close(done)
		buf := make([]byte, 1<<16)
		var it wire.Messages
		var m wire.Message
		for {
			k, err := peer.Read(buf)
			if err != nil {
				return
			}
			it.Reset(buf[:k])
			for it.Next(&m) {
				_, attrs, _ := wire.SplitGenMsg(m.Payload)
				a := wire.NewAttrs(attrs)
				for a.Next() {
					if a.Type() == wire.AttrVerdictHdr {
						if _, id, _ := wire.VerdictHdr(a.Data()); id >= n {
							return
						}
					}
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	}()

	payload := make([]byte, 92) // an IPv4 UDP packet with 64 bytes of data
	payload[0] = 0x45
	msg := make([]byte, 0, 256)
	hdr := []byte{0, 0, 0, 0, 0x08, 0x00, 3} // packet id, IPv4, output hook
	b.ReportAllocs()
	b.ResetTimer()
	for id := uint32(1); id <= n; id++ {
		msg, start := wire.AppendHeader(msg[:0], wire.QueueType(wire.MsgPacket), 0, 0, wire.ProtoIPv4, 0)
		binary.BigEndian.PutUint32(hdr, id)
		msg = wire.AppendAttr(msg, wire.AttrPacketHdr, hdr)
		msg = wire.AppendAttr(msg, wire.AttrPayload, payload)
		msg = wire.Finish(msg, start)
		if _, err := peer.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	cancel()
	<-served
}
