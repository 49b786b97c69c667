package nfqueue

import "sync"

// tracker remembers the packets delivered on a Conn that still await their
// verdict, so a second verdict or one for a packet never delivered is caught
// without a kernel round trip. It is an open-addressing table indexed by
// packet id (ids are sequential, so they spread evenly), with linear probing
// and backward-shift deletion; it allocates only to grow.
type tracker struct {
	mu    sync.Mutex
	slots []slot
	n     int
	last  uint32 // highest id delivered
	any   bool   // whether any packet was delivered
	// inflight counts verdict messages that SetVerdict, SetVerdictBatch or
	// the timeout sweep took packets out for and have not sent yet. Until
	// they are sent those packets still wait in the kernel, so Serve must
	// not cover them with a batch verdict.
	inflight int
}

type slot struct {
	id    uint32
	flags uint8
	at    int64 // when the packet was delivered, in nanoseconds (monotonic)
}

const (
	slotUsed uint8 = 1 << iota
	slotTruncated
)

// newTracker sizes the table for a queue of capacity packets, up to 4096
// slots; it grows if more packets wait.
func newTracker(capacity uint32) tracker {
	n := 64
	for uint64(n) < 2*uint64(capacity) && n < 4096 {
		n *= 2
	}
	return tracker{slots: make([]slot, n)}
}

// idle reports whether no packet awaits a verdict outside Serve's own
// pending ones: the condition for Serve to send a batch verdict.
func (t *tracker) idle() bool { return t.n == 0 && t.inflight == 0 }

// add records a delivered packet. The caller holds mu.
func (t *tracker) add(id uint32, flags uint8, at int64) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	if t.insert(slot{id: id, flags: flags | slotUsed, at: at}) {
		t.n++
	}
	if !t.any || int32(id-t.last) > 0 {
		t.last, t.any = id, true
	}
}

// insert stores s, replacing an entry with the same id; it reports whether
// the id is new.
func (t *tracker) insert(s slot) bool {
	mask := uint32(len(t.slots) - 1)
	for i := s.id & mask; ; i = (i + 1) & mask {
		if t.slots[i].flags&slotUsed == 0 || t.slots[i].id == s.id {
			added := t.slots[i].flags&slotUsed == 0
			t.slots[i] = s
			return added
		}
	}
}

func (t *tracker) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	for _, s := range old {
		if s.flags&slotUsed != 0 {
			t.insert(s)
		}
	}
}

// find returns the index of id's slot, or -1.
func (t *tracker) find(id uint32) int {
	mask := uint32(len(t.slots) - 1)
	for i := id & mask; ; i = (i + 1) & mask {
		switch {
		case t.slots[i].flags&slotUsed == 0:
			return -1
		case t.slots[i].id == id:
			return int(i)
		}
	}
}

// take removes id and returns its flags; ok is false when id is not
// awaiting a verdict. The caller holds mu.
func (t *tracker) take(id uint32) (flags uint8, ok bool) {
	i := t.find(id)
	if i < 0 {
		return 0, false
	}
	flags = t.slots[i].flags
	t.deleteAt(i)
	return flags, true
}

// deleteAt empties slot i and shifts later entries of its probe run back.
func (t *tracker) deleteAt(i int) {
	mask := len(t.slots) - 1
	t.slots[i] = slot{}
	t.n--
	for j := (i + 1) & mask; t.slots[j].flags&slotUsed != 0; j = (j + 1) & mask {
		home := int(t.slots[j].id) & mask
		// Move slot j into the hole at i if its home is not in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i], t.slots[j] = t.slots[j], slot{}
			i = j
		}
	}
}

// missingErr returns the error for a verdict on an id not awaiting one.
func (t *tracker) missingErr(id uint32) error {
	if t.any && int32(id-t.last) <= 0 {
		return ErrVerdictTwice
	}
	return ErrUnknownPacket
}

// takeUpTo removes every id up to and including upTo (in the kernel's
// wrap-around order) and returns how many it removed. The caller holds mu.
func (t *tracker) takeUpTo(upTo uint32) (n int) {
	for i := 0; i < len(t.slots); {
		s := t.slots[i]
		if s.flags&slotUsed != 0 && int32(s.id-upTo) <= 0 {
			t.deleteAt(i)
			n++
			continue // a later entry may have moved into i
		}
		i++
	}
	return n
}

// expired calls fn for each packet delivered before deadline and removes
// it. The caller holds mu.
func (t *tracker) expired(deadline int64, fn func(id uint32, flags uint8)) {
	for i := 0; i < len(t.slots); {
		s := t.slots[i]
		if s.flags&slotUsed != 0 && s.at < deadline {
			t.deleteAt(i)
			fn(s.id, s.flags)
			continue
		}
		i++
	}
}
