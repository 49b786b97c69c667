//go:build !linux

package nfqtest

import (
	"errors"
	"net"
	"os"
)

var errPlatform = errors.New("nfqtest: the fake kernel needs Linux")

func socketPair() (*os.File, *net.UnixConn, error) { return nil, nil, errPlatform }

func recv(fd uintptr, buf []byte) (n int, trunc, wait, eof bool, err error) {
	return 0, false, false, false, errPlatform
}

const supported = false
