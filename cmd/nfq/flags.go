package main

import (
	"fmt"
	"strconv"
)

// uintFlag is a flag holding an unsigned number of bits bits, given in
// decimal or with a 0x prefix in hexadecimal; set records whether it was
// given.
type uintFlag struct {
	v    uint64
	bits int
	set  bool
}

func (f *uintFlag) String() string {
	if f == nil {
		return "0"
	}
	return strconv.FormatUint(f.v, 10)
}

func (f *uintFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, f.bits)
	if err != nil {
		return fmt.Errorf("want a number from 0 to %d (decimal or 0x hex)", uint64(1)<<f.bits-1)
	}
	f.v, f.set = v, true
	return nil
}
