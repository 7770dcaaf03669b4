package indexer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/airbusgeo/godal"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metrics are the scan's Prometheus metrics. Labels are bounded: results,
// reasons, operations, backends, outcomes and storage ids, never an object
// key nor a free-text name.
type Metrics struct {
	tiles           *prometheus.CounterVec
	requests        *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	retries         *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	scanDuration    *prometheus.HistogramVec
	inProgress      prometheus.Gauge
	scans           *prometheus.CounterVec
	lastSuccess     *prometheus.GaugeVec
	lastAttempt     *prometheus.GaugeVec
	readable        *prometheus.GaugeVec
	problems        *prometheus.GaugeVec
	warnings        *prometheus.GaugeVec
	// perStorage: the per-storage series carry a storage label of their
	// own (a service); otherwise the registry labels every series.
	perStorage bool
}

// NewMetrics creates the metrics of a process scanning many storages (the
// service) and registers them on reg: per-storage series carry a storage
// label, the storage's id.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) { return newMetrics(reg, true) }

// NewJobMetrics creates the metrics of a job scanning one storage (the CLI,
// for node_exporter's textfile collector or a Pushgateway): every series is
// labelled storage=storageID, so that several jobs' files never hold the
// same series.
func NewJobMetrics(reg prometheus.Registerer, storageID string) (*Metrics, error) {
	return newMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"storage": storageID}, reg), false)
}

// StorageID is a stable id for a storage location, fit for a label: the
// location's redacted form hashed, so that it holds no secret and no free
// text, and stays the same from one run to the next.
func StorageID(location string) string {
	sum := sha256.Sum256([]byte(storage.Redact(location)))
	return hex.EncodeToString(sum[:8])
}

func newMetrics(reg prometheus.Registerer, perStorage bool) (*Metrics, error) {
	var storageLabel []string
	if perStorage {
		storageLabel = []string{"storage"}
	}
	m := &Metrics{perStorage: perStorage,
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
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pcrs_indexer_storage_retries_total",
			Help: "Storage requests tried again after a transient failure, by backend and reason (timeout; transient: a 5xx, a 429, a cut or reset connection; network: another network error).",
		}, []string{"backend", "reason"}),
		scanDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pcrs_indexer_scan_duration_seconds",
			Help:    "Duration of whole scans, failed ones included, by outcome (success, failed, incomplete).",
			Buckets: prometheus.ExponentialBuckets(1, 3, 10),
		}, []string{"outcome"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pcrs_indexer_scans_in_progress",
			Help: "Scans running now.",
		}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pcrs_indexer_scans_total",
			Help: "Scans finished, by outcome (success, failed, incomplete).",
		}, append(storageLabel, "outcome")),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pcrs_indexer_last_success_timestamp_seconds",
			Help: "Unix time of the storage's last successful scan (published outputs).",
		}, storageLabel),
		lastAttempt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pcrs_indexer_last_attempt_timestamp_seconds",
			Help: "Unix time the storage's last scan ended, whatever its outcome.",
		}, storageLabel),
	}
	m.readable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pcrs_indexer_readable_tiles",
		Help: "Readable tiles found by the storage's last successful scan.",
	}, storageLabel)
	m.problems = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pcrs_indexer_problem_tiles",
		Help: "Tiles set aside by the storage's last successful scan, by reason.",
	}, append(storageLabel, "reason"))
	m.warnings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pcrs_indexer_warnings",
		Help: "What the storage's last successful scan found wrong with its readable tiles as a delivery, by kind (off_grid, overlap, duplicate, name_mismatch, resolution, mixed, size_outlier, missing).",
	}, append(storageLabel, "kind"))
	version, revision := BuildVersion()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pcrs_indexer_build_info",
		Help:        "Always 1: the version, commit, Go and GDAL versions of the running binary.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version(), "gdal": GDALVersion()},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{m.tiles, m.requests, m.bytes, m.retries, m.requestDuration, m.scanDuration, m.inProgress, m.scans, m.lastSuccess, m.lastAttempt, m.readable, m.problems, m.warnings, buildInfo} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) storageValues(storageID string, values ...string) []string {
	if m.perStorage {
		return append([]string{storageID}, values...)
	}
	return values
}

// ScanFinished records a scan's end: its outcome (Outcome of the error the
// scan or its publishing returned) and duration, the storage's last attempt
// and, on success, its last success and what it found (r).
func (m *Metrics) ScanFinished(storageID, outcome string, started, finished time.Time, r *Report) {
	m.scans.WithLabelValues(m.storageValues(storageID, outcome)...).Inc()
	m.scanDuration.WithLabelValues(outcome).Observe(finished.Sub(started).Seconds())
	m.lastAttempt.WithLabelValues(m.storageValues(storageID)...).Set(float64(finished.Unix()))
	if outcome != OutcomeSuccess || r == nil {
		return
	}
	m.lastSuccess.WithLabelValues(m.storageValues(storageID)...).Set(float64(finished.Unix()))
	m.readable.WithLabelValues(m.storageValues(storageID)...).Set(float64(r.Counts.Readable))
	for reason, n := range r.ProblemsByReason {
		m.problems.WithLabelValues(m.storageValues(storageID, reason)...).Set(float64(n))
	}
	for kind, n := range r.WarningsByKind {
		m.warnings.WithLabelValues(m.storageValues(storageID, kind)...).Set(float64(n))
	}
}

// Restore sets a storage's last success and attempt after a restart, from
// what the service kept; zero times are left unset.
func (m *Metrics) Restore(storageID string, lastSuccess, lastAttempt time.Time) {
	if !lastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(m.storageValues(storageID)...).Set(float64(lastSuccess.Unix()))
	}
	if !lastAttempt.IsZero() {
		m.lastAttempt.WithLabelValues(m.storageValues(storageID)...).Set(float64(lastAttempt.Unix()))
	}
}

// Forget drops a deleted storage's series.
func (m *Metrics) Forget(storageID string) {
	if !m.perStorage {
		return
	}
	m.lastSuccess.DeleteLabelValues(storageID)
	m.lastAttempt.DeleteLabelValues(storageID)
	m.readable.DeleteLabelValues(storageID)
	m.problems.DeletePartialMatch(prometheus.Labels{"storage": storageID})
	m.warnings.DeletePartialMatch(prometheus.Labels{"storage": storageID})
	m.scans.DeletePartialMatch(prometheus.Labels{"storage": storageID})
}

// Scan outcomes, as metrics and the final event name them.
const (
	OutcomeSuccess    = "success"
	OutcomeFailed     = "failed"
	OutcomeIncomplete = "incomplete"
)

// Outcome names how a scan (and its publishing) that returned err ended:
// incomplete when it was stopped or tiles stayed unreachable, failed
// otherwise.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, ErrIncomplete), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeIncomplete
	}
	return OutcomeFailed
}

// BuildVersion is the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func BuildVersion() (version, revision string) {
	version, revision = "(devel)", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return version, revision
}

// GDALVersion is the GDAL library's version, as "3.6.2".
func GDALVersion() string {
	v := godal.Version()
	return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Revision())
}

// countTiles counts a scan's final verdicts.
func (m *Metrics) countTiles(r Report) {
	if r.Counts.Readable > 0 {
		m.tiles.WithLabelValues("readable", "").Add(float64(r.Counts.Readable))
	}
	for reason, n := range r.ProblemsByReason {
		if n > 0 {
			m.tiles.WithLabelValues("problem", reason).Add(float64(n))
		}
	}
}

// Observer feeds the storage request metrics of one backend.
func (m *Metrics) Observer(backend string) storage.Observer { return observer{m, backend} }

// RetryObserved counts one request tried again after a transient failure.
func (m *Metrics) RetryObserved(backend, reason string) {
	m.retries.WithLabelValues(backend, reason).Inc()
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
	return WriteAtomically(path, func(w io.Writer) error {
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		return nil
	})
}
