package indexer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metrics are the scan's Prometheus metrics. Labels are bounded: results,
// reasons, operations and backends, never an object key.
type Metrics struct {
	tiles           *prometheus.CounterVec
	requests        *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	scanDuration    prometheus.Histogram
	inProgress      prometheus.Gauge
	lastSuccess     *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pcrs_indexer_tiles_total",
			Help: "Tiles inspected, by result (readable, problem) and problem reason.",
		}, []string{"result", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pcrs_indexer_storage_requests_total",
			Help: "Storage requests, by backend, operation (list, read) and outcome.",
		}, []string{"backend", "op", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pcrs_indexer_storage_read_bytes_total",
			Help: "Bytes read from storages, by backend.",
		}, []string{"backend"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pcrs_indexer_storage_request_duration_seconds",
			Help:    "Duration of storage requests, by backend and operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"backend", "op"}),
		scanDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pcrs_indexer_scan_duration_seconds",
			Help:    "Duration of whole scans.",
			Buckets: prometheus.ExponentialBuckets(1, 3, 10),
		}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pcrs_indexer_scans_in_progress",
			Help: "Scans running now.",
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pcrs_indexer_last_success_timestamp_seconds",
			Help: "Unix time of the last successful scan, by livrable.",
		}, []string{"livrable"}),
	}
	for _, c := range []prometheus.Collector{m.tiles, m.requests, m.bytes, m.requestDuration, m.scanDuration, m.inProgress, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observer feeds the storage metrics of one backend.
type observer struct {
	m       *Metrics
	backend string
}

func (o observer) ObserveRequest(op storage.Op, n int64, err error, elapsed time.Duration) {
	outcome := "ok"
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.Is(err, storage.ErrNotFound):
		outcome = "not_found"
	default:
		outcome = "error"
	}
	o.m.requests.WithLabelValues(o.backend, string(op), outcome).Inc()
	o.m.requestDuration.WithLabelValues(o.backend, string(op)).Observe(elapsed.Seconds())
	if n > 0 {
		o.m.bytes.WithLabelValues(o.backend).Add(float64(n))
	}
}

// WriteMetricsFile writes what g gathers in Prometheus's text format, for
// node_exporter's textfile collector: replaced atomically, so the collector
// never reads half a file.
func WriteMetricsFile(path string, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := writeTemp(dir, name, func(w io.Writer) error {
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
