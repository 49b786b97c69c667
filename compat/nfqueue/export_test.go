package nfqueue

import nfq "github.com/nfqueue-go/nfqueue"

// SetOpen makes q open its queue with open instead of the real kernel's,
// e.g. with a fake kernel's (nfqtest.Kernel.Open).
func SetOpen(q *Queue, open func(queue uint16, cfg *nfq.Config) (*nfq.Conn, error)) { q.open = open }

// SetNetNS makes q open its queue in the network namespace at path.
func SetNetNS(q *Queue, path string) { q.netns = path }
