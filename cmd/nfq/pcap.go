package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capture writes queued packets to a pcapng file: link type raw IP (the
// payload starts at the network header), one Enhanced Packet Block per
// packet, with the packet's NFQUEUE metadata and verdict in its comment.
type capture struct {
	f *os.File
	w *pcapgo.NgWriter
	n int
}

// createCapture creates path (truncating it) for the packets of queue.
func createCapture(path string, queue uint16, filter string) (*capture, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	intf := pcapgo.NgInterface{
		Name:                fmt.Sprintf("nfqueue:%d", queue),
		Description:         fmt.Sprintf("packets of NFQUEUE queue %d", queue),
		Filter:              filter,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeRaw,
		SnapLength:          0,
		TimestampResolution: 9,
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware:    runtime.GOARCH,
		OS:          runtime.GOOS,
		Application: "nfq watch",
	}}
	w, err := pcapgo.NewNgWriterInterface(f, intf, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Write the header blocks now, so that an interrupted capture is
	// still a valid (empty) file.
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return &capture{f: f, w: w}, nil
}

// write adds one packet: data as copied from the queue, origLen its length
// on the wire, hook the netfilter hook it was queued from (which gives the
// direction flag), comment its metadata.
func (c *capture) write(ts time.Time, data []byte, origLen int, hook, comment string) error {
	if origLen < len(data) {
		origLen = len(data)
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: origLen}
	opts := pcapgo.NgPacketOptions{Comments: []string{comment}}
	switch hook {
	case "prerouting", "input":
		opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	case "output", "postrouting":
		opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	}
	if err := c.w.WritePacketWithOptions(ci, data, opts); err != nil {
		return err
	}
	c.n++
	// Flush every packet: a capture is read while it is written (tail -f,
	// a test), and the rate of a queue watched by a person is modest.
	return c.w.Flush()
}

// Close flushes and closes the file.
func (c *capture) Close() error {
	return errors.Join(c.w.Flush(), c.f.Close())
}
