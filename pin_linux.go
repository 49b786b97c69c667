package nfqueue

import "github.com/nfqueue-go/nfqueue/internal/nlsock"

func pinToCPU(cpu int) error { return nlsock.PinToCPU(cpu) }
