package nfqueue

import "testing"

// TestTrackerIdleWhileVerdictInFlight: between SetVerdict taking a packet
// out and its message reaching the kernel, Serve must not send a batch
// verdict, which would cover that packet.
func TestTrackerIdleWhileVerdictInFlight(t *testing.T) {
	c := &Conn{track: newTracker(16)}
	c.track.add(7, 0, 0)
	if c.track.idle() {
		t.Fatal("idle with a packet awaiting its verdict")
	}
	v := Drop
	if err := c.take(7, &v); err != nil {
		t.Fatal(err)
	}
	if c.track.idle() {
		t.Fatal("idle while the verdict for packet 7 is not sent yet")
	}
	c.track.inflight-- // what send does once the message is out
	if !c.track.idle() {
		t.Fatal("not idle after the verdict went out")
	}
}
