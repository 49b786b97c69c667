package nfqprom_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/nfqueue-go/nfqueue"
	nfqprom "github.com/nfqueue-go/nfqueue/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve queues 0 to 3 (iptables ... -j NFQUEUE --queue-balance 0:3) and
// export their counters, queue by queue, on http://localhost:9100/metrics.
func ExampleNewCollector() {
	set, err := nfqueue.OpenSet(0, 4, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()

	prometheus.MustRegister(nfqprom.NewCollector(nil, set))
	http.Handle("/metrics", promhttp.Handler())
	go func() { log.Fatal(http.ListenAndServe("localhost:9100", nil)) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = set.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	if err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// Several queues opened on their own go into one Collector; a second
// Collector needs a constant label to tell its series apart.
func ExampleNewCollector_conns() {
	dns, err := nfqueue.Open(53, nil)
	if err != nil {
		log.Fatal(err)
	}
	web, err := nfqueue.Open(80, nil)
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(nfqprom.NewCollector(&nfqprom.Options{ConstLabels: prometheus.Labels{"app": "filter"}}, dns, web))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
