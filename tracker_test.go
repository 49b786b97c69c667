package nfqueue

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTracker verifies the table's invariants: n counts the used slots,
// and every used slot is reachable from its home slot without crossing an
// empty one (what find relies on), with no id twice.
func checkTracker(t *testing.T, tr *tracker) {
	t.Helper()
	mask := len(tr.slots) - 1
	used := 0
	seen := make(map[uint32]bool)
	for i, s := range tr.slots {
		if s.flags&slotUsed == 0 {
			if s != (slot{}) {
				t.Fatalf("empty slot %d not cleared: %+v", i, s)
			}
			continue
		}
		used++
		if seen[s.id] {
			t.Fatalf("id %d twice", s.id)
		}
		seen[s.id] = true
		for j := int(s.id) & mask; j != i; j = (j + 1) & mask {
			if tr.slots[j].flags&slotUsed == 0 {
				t.Fatalf("id %#x in slot %d is cut off from its home %d by empty slot %d", s.id, i, int(s.id)&mask, j)
			}
		}
		if tr.find(s.id) != i {
			t.Fatalf("find(%#x) = %d, want %d", s.id, tr.find(s.id), i)
		}
	}
	if used != tr.n {
		t.Fatalf("n = %d, %d slots used", tr.n, used)
	}
	if 2*tr.n > len(tr.slots) {
		t.Fatalf("load %d/%d over one half", tr.n, len(tr.slots))
	}
}

func TestTrackerAddTake(t *testing.T) {
	tr := newTracker(0)
	if len(tr.slots) != 64 {
		t.Fatalf("%d slots", len(tr.slots))
	}
	if err := tr.missingErr(1); err != ErrUnknownPacket {
		t.Errorf("empty tracker: missingErr = %v", err)
	}
	for id := uint32(1); id <= 10; id++ {
		tr.add(id, uint8(id%2)*slotTruncated, int64(id))
	}
	tr.add(11, testFlag|slotTruncated, 11)
	checkTracker(t, &tr)
	for id := uint32(1); id <= 11; id++ {
		flags, ok := tr.take(id)
		want := slotUsed | uint8(id%2)*slotTruncated
		if id == 11 {
			want = slotUsed | testFlag | slotTruncated
		}
		if !ok || flags != want {
			t.Errorf("take(%d) = %#x, %v; want %#x", id, flags, ok, want)
		}
		if _, ok := tr.take(id); ok {
			t.Errorf("take(%d) twice", id)
		}
		// A second verdict is told apart from a packet never delivered.
		if err := tr.missingErr(id); err != ErrVerdictTwice {
			t.Errorf("missingErr(%d) after take = %v", id, err)
		}
	}
	checkTracker(t, &tr)
	if tr.n != 0 {
		t.Errorf("n = %d", tr.n)
	}
	for _, id := range []uint32{12, 1000, 0x7fffffff} {
		if err := tr.missingErr(id); err != ErrUnknownPacket {
			t.Errorf("missingErr(%d) = %v, want ErrUnknownPacket", id, err)
		}
	}
	// Older ids were delivered or dropped before delivery: "twice".
	if err := tr.missingErr(0); err != ErrVerdictTwice {
		t.Errorf("missingErr(0) = %v", err)
	}
}

func TestTrackerMissingErrWraps(t *testing.T) {
	tr := newTracker(0)
	tr.add(0xfffffffe, 0, 0)
	tr.add(0xffffffff, 0, 0)
	tr.add(1, 0, 0) // after the wrap (0 was never delivered here)
	if tr.last != 1 {
		t.Errorf("last = %#x, want 1", tr.last)
	}
	for id, want := range map[uint32]error{0xfffffffd: ErrVerdictTwice, 0: ErrVerdictTwice, 1: ErrVerdictTwice, 2: ErrUnknownPacket, 0x80000000: ErrUnknownPacket} {
		if err := tr.missingErr(id); err != want {
			t.Errorf("missingErr(%#x) = %v, want %v", id, err, want)
		}
	}
	// An id that is older than the last does not move it back.
	tr.add(0xfffffffd, 0, 0)
	if tr.last != 1 {
		t.Errorf("last = %#x after adding an older id", tr.last)
	}
}

func TestTrackerTakeUpToWraparound(t *testing.T) {
	tr := newTracker(0)
	ids := []uint32{0xfffffffc, 0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2, 3}
	for _, id := range ids {
		tr.add(id, 0, 0)
	}
	checkTracker(t, &tr)
	if n := tr.takeUpTo(0xfffffffb); n != 0 {
		t.Errorf("takeUpTo before the first id removed %d", n)
	}
	if n := tr.takeUpTo(0xfffffffd); n != 2 {
		t.Errorf("takeUpTo(0xfffffffd) removed %d, want 2", n)
	}
	checkTracker(t, &tr)
	if n := tr.takeUpTo(0); n != 3 {
		t.Errorf("takeUpTo(0) removed %d, want 3 (0xfffffffe, 0xffffffff, 0)", n)
	}
	checkTracker(t, &tr)
	for _, id := range []uint32{1, 2, 3} {
		if tr.find(id) < 0 {
			t.Errorf("id %d removed", id)
		}
	}
	if n := tr.takeUpTo(0); n != 0 {
		t.Errorf("second takeUpTo(0) removed %d", n)
	}
	if err := tr.missingErr(0); err != ErrVerdictTwice {
		t.Errorf("missingErr(0) = %v", err)
	}
	if n := tr.takeUpTo(3); n != 3 || tr.n != 0 {
		t.Errorf("takeUpTo(3) removed %d, %d left", n, tr.n)
	}
	checkTracker(t, &tr)
}

// TestTrackerCollisions deletes from probe runs that share a home slot and
// wrap from the table's end to its start.
func TestTrackerCollisions(t *testing.T) {
	tr := newTracker(0)
	size := uint32(len(tr.slots))
	// Homes 62, 63 and 0: runs that wrap around the end.
	ids := []uint32{62, 62 + size, 63, 62 + 2*size, 63 + size, size, 1, 2*size + 1, 2}
	for _, id := range ids {
		tr.add(id, 0, int64(id))
	}
	checkTracker(t, &tr)
	for _, order := range [][]uint32{
		{62, 63, size, 1, 2},
		{62 + 2*size, 63 + size, 62 + size, 2*size + 1},
	} {
		for _, id := range order {
			if _, ok := tr.take(id); !ok {
				t.Fatalf("take(%d) failed", id)
			}
			checkTracker(t, &tr)
		}
	}
	if tr.n != 0 {
		t.Errorf("%d left", tr.n)
	}
}

func TestTrackerGrow(t *testing.T) {
	for capacity, want := range map[uint32]int{0: 64, 32: 64, 33: 128, 1024: 2048, 1025: 4096} {
		if got := len(newTracker(capacity).slots); got != want {
			t.Errorf("newTracker(%d): %d slots, want %d", capacity, got, want)
		}
	}
	tr := newTracker(0)
	for id := uint32(1); id <= 32; id++ {
		tr.add(id*64, testFlag, int64(id)) // all in one probe run
	}
	if len(tr.slots) != 64 {
		t.Fatalf("grew early: %d slots for 32 ids", len(tr.slots))
	}
	checkTracker(t, &tr)
	tr.add(33*64, testFlag, 33)
	if len(tr.slots) != 128 {
		t.Fatalf("%d slots after the 33rd id", len(tr.slots))
	}
	checkTracker(t, &tr)
	for id := uint32(34); id <= 1000; id++ {
		tr.add(id*64, testFlag, int64(id))
	}
	checkTracker(t, &tr)
	for id := uint32(1); id <= 1000; id++ {
		if flags, ok := tr.take(id * 64); !ok || flags != slotUsed|testFlag {
			t.Fatalf("take(%d) = %#x, %v after growing", id*64, flags, ok)
		}
	}
	checkTracker(t, &tr)
}

func TestTrackerExpired(t *testing.T) {
	tr := newTracker(0)
	for id := uint32(1); id <= 100; id++ {
		tr.add(id, 0, int64(id%10)) // delivered at times 0..9
	}
	var got []uint32
	tr.expired(5, func(id uint32, flags uint8) {
		if flags != slotUsed {
			t.Errorf("flags %#x", flags)
		}
		got = append(got, id)
	})
	checkTracker(t, &tr)
	if len(got) != 50 || tr.n != 50 {
		t.Errorf("expired %d, kept %d", len(got), tr.n)
	}
	for _, id := range got {
		if id%10 >= 5 {
			t.Errorf("id %d (time %d) expired at deadline 5", id, id%10)
		}
	}
	tr.expired(5, func(id uint32, _ uint8) { t.Errorf("id %d expired twice", id) })
}

// TestTrackerDifferential runs random operations on the tracker and on a
// map, and compares them after each: the results of add, take, takeUpTo,
// expired and missingErr, and the table's invariants.
func TestTrackerDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7919))
		tr := newTracker(uint32(rng.IntN(40)))
		model := make(map[uint32]uint8) // id -> flags
		at := make(map[uint32]int64)
		var last uint32
		anyAdded := false
		// Ids run sequentially from near the wrap point, as the kernel's
		// do, with jumps (other consumers' ids are not ours) and clusters
		// of ids sharing a home slot.
		next := uint32(0xffffffff - rng.IntN(300))
		now := int64(0)
		for op := 0; op < 3000; op++ {
			now++
			switch r := rng.IntN(100); {
			case r < 45: // deliver
				id := next
				switch rng.IntN(10) {
				case 0:
					id = next + uint32(len(tr.slots))*uint32(rng.IntN(4)) // collide
				case 1:
					next += uint32(rng.IntN(5))
				}
				next++
				if _, dup := model[id]; dup {
					continue // the kernel never queues an id twice
				}
				flags := uint8(rng.IntN(4)) << 1 // truncated and deferred bits
				tr.add(id, flags, now)
				model[id], at[id] = flags|slotUsed, now
				if !anyAdded || int32(id-last) > 0 {
					last, anyAdded = id, true
				}
			case r < 80: // verdict for a known or unknown id
				id := next - uint32(rng.IntN(60))
				flags, ok := tr.take(id)
				wantFlags, wantOK := model[id]
				if ok != wantOK || flags != wantFlags {
					t.Fatalf("seed %d op %d: take(%#x) = %#x, %v; model %#x, %v", seed, op, id, flags, ok, wantFlags, wantOK)
				}
				delete(model, id)
				if !ok {
					want := ErrUnknownPacket
					if anyAdded && int32(id-last) <= 0 {
						want = ErrVerdictTwice
					}
					if err := tr.missingErr(id); err != want {
						t.Fatalf("seed %d: missingErr(%#x) = %v, want %v", seed, id, err, want)
					}
				}
			case r < 92: // batch verdict
				upTo := next - uint32(rng.IntN(80))
				want := 0
				for id := range model {
					if int32(id-upTo) <= 0 {
						delete(model, id)
						want++
					}
				}
				if n := tr.takeUpTo(upTo); n != want {
					t.Fatalf("seed %d op %d: takeUpTo(%#x) = %d, model %d", seed, op, upTo, n, want)
				}
			default: // verdict timeout
				deadline := now - int64(rng.IntN(200))
				var want, got []uint32
				for id := range model {
					if at[id] < deadline {
						want = append(want, id)
						delete(model, id)
					}
				}
				tr.expired(deadline, func(id uint32, flags uint8) { got = append(got, id) })
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d op %d: expired %v, model %v", seed, op, got, want)
				}
			}
			checkTracker(t, &tr)
			if tr.n != len(model) {
				t.Fatalf("seed %d op %d: n %d, model %d", seed, op, tr.n, len(model))
			}
			for id, flags := range model {
				i := tr.find(id)
				if i < 0 || tr.slots[i].flags != flags {
					t.Fatalf("seed %d op %d: id %#x lost", seed, op, id)
				}
			}
		}
	}
}

// testFlag is a slot flag the tracker itself does not use.
const testFlag uint8 = 1 << 5
