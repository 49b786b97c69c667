//go:build !linux

package nfqueue

func pinToCPU(int) error { return errPlatform }
