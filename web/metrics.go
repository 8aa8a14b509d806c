package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds workerca's Prometheus collectors on a registry of its own
// (no global registry). It implements enroll.Observer.
type Metrics struct {
	reg      *prometheus.Registry
	issuance *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	requests *prometheus.CounterVec
	// rateLimited counts requests refused by the per-source bucket;
	// pool refusals are issuance outcomes "rate_limited".
	rateLimited *prometheus.CounterVec
}

// NewMetrics registers the collectors on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		issuance: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerca_issuance_total",
			Help: "Certificate issuance attempts by pool, enrollment method and outcome.",
		}, []string{"pool", "method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workerca_issuance_duration_seconds",
			Help:    "Time from a verified enrollment to a recorded certificate (or refusal).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"pool", "method"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerca_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerca_rate_limited_total",
			Help: "Enrollment requests refused by the per-source-address rate limit.",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(m.issuance, m.latency, m.requests, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Issuance records one issuance attempt (enroll.Observer).
func (m *Metrics) Issuance(pool, method, outcome string, d time.Duration) {
	m.issuance.WithLabelValues(pool, method, outcome).Inc()
	m.latency.WithLabelValues(pool, method).Observe(d.Seconds())
}

// Registerer is the registry, for other components' collectors (served
// at /metrics with the rest).
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
