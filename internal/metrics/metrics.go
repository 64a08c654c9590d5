// Package metrics holds the Prometheus metrics of the API server and the
// store, served on /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records request, watch and etcd figures.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watches  *prometheus.GaugeVec
	etcd     *prometheus.HistogramVec
}

// New returns metrics registered in a registry of their own.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total", Help: "Counter of apiserver requests broken out by verb, group, resource and HTTP response code.",
		}, []string{"verb", "group", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apiserver_request_duration_seconds", Help: "Response latency distribution in seconds by verb, group and resource.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verb", "group", "resource"}),
		watches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_longrunning_requests", Help: "Number of open watch requests by group and resource.",
		}, []string{"verb", "group", "resource"}),
		etcd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "etcd_request_duration_seconds", Help: "Etcd request latency in seconds by operation.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5},
		}, []string{"operation"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.watches, m.etcd,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveRequest records one API request.
func (m *Metrics) ObserveRequest(verb, group, resource string, code int, d time.Duration) {
	if verb == "watch" {
		return // a watch's duration is its lifetime; counted in watches
	}
	m.requests.WithLabelValues(verb, group, resource, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(verb, group, resource).Observe(d.Seconds())
}

// WatchStarted counts an open watch until done is called.
func (m *Metrics) WatchStarted(group, resource string) (done func()) {
	g := m.watches.WithLabelValues("WATCH", group, resource)
	g.Inc()
	m.requests.WithLabelValues("WATCH", group, resource, "200").Inc()
	return g.Dec
}

// ObserveEtcd records one etcd operation.
func (m *Metrics) ObserveEtcd(op string, d time.Duration) {
	m.etcd.WithLabelValues(op).Observe(d.Seconds())
}
