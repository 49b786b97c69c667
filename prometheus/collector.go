// Package nfqprom exports the counters of nfqueue queues to Prometheus.
//
// Its import path ends in prometheus but the package is named nfqprom, so
// that it can be imported next to github.com/prometheus/client_golang's
// prometheus package; write the name out to make that plain:
//
//	import nfqprom "github.com/nfqueue-go/nfqueue/prometheus"
//
// It lives in its own module so that the nfqueue library does not depend
// on the Prometheus client.
//
// A Collector reads Stats() from each of its sources whenever it is
// scraped, and reports one series per queue, labelled queue="N":
//
//	nfqueue_packets_received_total          packets delivered to the program
//	nfqueue_verdicts_total{verdict=...}     verdicts by kind: accept, drop, queue, repeat, stop
//	nfqueue_batch_verdicts_total            VERDICT_BATCH messages sent
//	nfqueue_verdict_timeouts_total          packets given the default verdict on timeout
//	nfqueue_overruns_total                  receive buffer overruns (ENOBUFS)
//	nfqueue_packets_truncated_total         packets cut to the copy range
//	nfqueue_malformed_messages_total        kernel messages that could not be decoded
//	nfqueue_verdict_errors_total            errors the kernel returned for verdicts
//	nfqueue_packets_outstanding             packets delivered and still without verdict
//	nfqueue_kernel_stats_available          1 if the kernel's line for the queue was read, else 0
//	nfqueue_kernel_packets_waiting          packets the kernel holds for a verdict
//	nfqueue_kernel_queue_dropped_total      packets the kernel dropped: queue full
//	nfqueue_kernel_user_dropped_total       packets the kernel dropped: socket buffer full
//
// The kernel_* series come from /proc/net/netfilter/nfnetlink_queue. When
// it cannot be read (Stats.KernelErr, e.g. in an unprivileged user
// namespace or after Close) they are left out of the scrape, which still
// succeeds, and nfqueue_kernel_stats_available is 0. The kernel keeps its
// drop counters in 32 bits and restarts them when the queue is bound
// again; Prometheus' rate and increase treat both as counter resets.
package nfqprom

import (
	"strconv"

	"github.com/nfqueue-go/nfqueue"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is what a Collector reads: *nfqueue.Conn and *nfqueue.Set have
// the method.
//
// The queue label of a Source comes from its Queue method (*nfqueue.Conn
// has one); a Source with a Conns method (*nfqueue.Set) is reported queue
// by queue, from its Conns; any other Source is reported with queue="".
type Source interface {
	Stats() nfqueue.Stats
}

// Options configure a Collector. The zero value is ready to use.
type Options struct {
	// Namespace is the first part of every metric name; empty means
	// "nfqueue".
	Namespace string
	// ConstLabels are added to every series, e.g. {"netns": "blue"} to
	// tell apart two Collectors whose queues have the same numbers.
	ConstLabels prometheus.Labels
}

// Collector is a prometheus.Collector for the counters of nfqueue queues.
// It is safe for concurrent use; each scrape calls Stats on every source.
type Collector struct {
	sources []Source

	received, verdicts, batches, timeouts, overruns, truncated, malformed, verdictErrors *prometheus.Desc
	outstanding, kernelOK, waiting, queueDropped, userDropped                            *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector for sources, with the queue label
// described at Source. opts may be nil. Register it once:
//
//	prometheus.MustRegister(nfqprom.NewCollector(nil, conn))
//
// Put every queue of a program in one Collector: two Collectors with the
// same Options describe the same metrics and cannot both be registered in
// one registry. The queues of its sources must be distinct, or the scrape
// reports duplicate series.
func NewCollector(opts *Options, sources ...Source) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "nfqueue"
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, "", name), help,
			append([]string{"queue"}, labels...), o.ConstLabels)
	}
	return &Collector{
		sources: append([]Source(nil), sources...),

		received:      desc("packets_received_total", "Packets the kernel delivered to the queue's socket."),
		verdicts:      desc("verdicts_total", "Verdicts given, by kind; a batch verdict counts once per packet.", "verdict"),
		batches:       desc("batch_verdicts_total", "Batch verdict (VERDICT_BATCH) messages sent."),
		timeouts:      desc("verdict_timeouts_total", "Packets given the default verdict because none came in time."),
		overruns:      desc("overruns_total", "Receive buffer overruns (ENOBUFS): the kernel dropped packets for lack of socket buffer."),
		truncated:     desc("packets_truncated_total", "Packets whose payload was cut to the copy range."),
		malformed:     desc("malformed_messages_total", "Messages from the kernel that could not be decoded."),
		verdictErrors: desc("verdict_errors_total", "Errors the kernel returned for verdicts."),
		outstanding:   desc("packets_outstanding", "Packets delivered and still without a verdict."),
		kernelOK:      desc("kernel_stats_available", "1 if the kernel's statistics for the queue could be read, else 0."),
		waiting:       desc("kernel_packets_waiting", "Packets the kernel holds waiting for a verdict."),
		queueDropped:  desc("kernel_queue_dropped_total", "Packets the kernel dropped because the queue was full."),
		userDropped:   desc("kernel_user_dropped_total", "Packets the kernel dropped because the socket's receive buffer was full."),
	}
}

// Describe sends the descriptors of all metrics the Collector can report.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.received, c.verdicts, c.batches, c.timeouts, c.overruns, c.truncated, c.malformed, c.verdictErrors,
		c.outstanding, c.kernelOK, c.waiting, c.queueDropped, c.userDropped,
	} {
		ch <- d
	}
}

// Collect reads the sources' statistics and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, src := range c.sources {
		switch s := src.(type) {
		case interface{ Conns() []*nfqueue.Conn }:
			for _, conn := range s.Conns() {
				c.collect(ch, strconv.Itoa(int(conn.Queue())), conn.Stats())
			}
		case interface{ Queue() uint16 }:
			c.collect(ch, strconv.Itoa(int(s.Queue())), src.Stats())
		default:
			c.collect(ch, "", src.Stats())
		}
	}
}

// collect sends the metrics of one queue.
func (c *Collector) collect(ch chan<- prometheus.Metric, queue string, st nfqueue.Stats) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{queue}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, queue)
	}
	counter(c.received, st.Received)
	for _, k := range []struct {
		kind nfqueue.VerdictKind
		n    uint64
	}{
		{nfqueue.KindAccept, st.Accepted},
		{nfqueue.KindDrop, st.Dropped},
		{nfqueue.KindQueue, st.Queued},
		{nfqueue.KindRepeat, st.Repeated},
		{nfqueue.KindStop, st.Stopped},
	} {
		counter(c.verdicts, k.n, k.kind.String())
	}
	counter(c.batches, st.BatchVerdicts)
	counter(c.timeouts, st.Timeouts)
	counter(c.overruns, st.Overruns)
	counter(c.truncated, st.Truncated)
	counter(c.malformed, st.Malformed)
	counter(c.verdictErrors, st.VerdictErrors)
	gauge(c.outstanding, float64(st.Outstanding))
	if st.KernelErr != nil {
		gauge(c.kernelOK, 0)
		return
	}
	gauge(c.kernelOK, 1)
	gauge(c.waiting, float64(st.Kernel.Waiting))
	counter(c.queueDropped, uint64(st.Kernel.QueueDropped))
	counter(c.userDropped, uint64(st.Kernel.UserDropped))
}
