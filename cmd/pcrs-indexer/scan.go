package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/memlimit"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/progress"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/vector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// scanSettings are the flags scan and batch share: how storages are read
// and how scans are reported.
type scanSettings struct {
	concurrency, retries, maxUnreachable int
	timeout, scanTimeout                 time.Duration
	allowShrink                          bool
	passwordFile                         string
	s3Endpoint                           string
	s3PathStyle                          bool
	sftpKey, sftpKnownHosts              string
	sftpInsecure                         bool
	tolerance                            float64
	pushgateway, metricsFile, statePath  string
	catalog                              string
	verbose                              bool
	formats                              formatList
	memory                               memoryLimit
}

// memoryLimit is --memory-limit, resolved by check (internal/memlimit).
type memoryLimit struct {
	value  string
	bytes  int64 // 0: none set here
	source string
}

func addMemoryFlag(fs *flag.FlagSet, m *memoryLimit) {
	fs.StringVar(&m.value, "memory-limit", memlimit.Auto, "soft memory limit of the Go heap: a size (512MiB, 2GiB), off, or auto ($GOMEMLIMIT when set, else 80 % of the container's memory limit, else none); the garbage collector works harder near it instead of letting the heap double")
}

// resolve checks the value and says which limit it asks for.
func (m *memoryLimit) resolve() error {
	var err error
	m.bytes, m.source, err = memlimit.Resolve(m.value, os.Getenv, os.DirFS("/"))
	return err
}

// apply gives the runtime the limit resolved, if any, and says so.
func (m *memoryLimit) apply(log *slog.Logger) {
	memlimit.Enforce(m.bytes, m.source)
	log.Info("memory limit", "bytes", m.bytes, "source", m.source)
}

// formatList is the repeatable --format flag.
type formatList []vector.Format

func (f *formatList) String() string {
	parts := make([]string, len(*f))
	for i, v := range *f {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}

func (f *formatList) Set(v string) error {
	values := []string{v}
	if len(*f) > 0 {
		values = append(values, f.String())
	}
	parsed, err := vector.ParseFormats(values)
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

func addScanFlags(fs *flag.FlagSet) *scanSettings {
	s := &scanSettings{}
	fs.StringVar(&s.catalog, "catalog", "", "folder or base URL of the PCRS CSV exports (with --projet and --livrable)")
	fs.IntVar(&s.concurrency, "concurrency", indexer.DefaultConcurrency, "tiles read at once")
	fs.IntVar(&s.retries, "retries", storage.DefaultRetry.Attempts-1, "retries of a failed storage request (exponential backoff with jitter)")
	fs.DurationVar(&s.timeout, "request-timeout", storage.DefaultRetry.Timeout, "time limit of one storage request")
	fs.DurationVar(&s.scanTimeout, "scan-timeout", 0, "time limit of a whole scan, listing included (0: none)")
	fs.IntVar(&s.maxUnreachable, "max-unreachable", 0, "unreachable tiles tolerated before the scan counts as failed")
	fs.BoolVar(&s.allowShrink, "allow-shrink", false, "publish even when the readable tiles fall below half of the outputs replaced (the delivery really shrank)")
	fs.StringVar(&s.passwordFile, "password-file", "", "file holding the storage password (default: $PCRS_INDEXER_PASSWORD)")
	fs.StringVar(&s.s3Endpoint, "s3-endpoint", "", "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)")
	fs.BoolVar(&s.s3PathStyle, "s3-path-style", false, "S3 path-style addressing (most S3-compatible stores)")
	fs.StringVar(&s.sftpKey, "sftp-key", "", "SFTP private key file")
	fs.StringVar(&s.sftpKnownHosts, "sftp-known-hosts", "", "known_hosts file checked for the SFTP host key (default ~/.ssh/known_hosts)")
	fs.BoolVar(&s.sftpInsecure, "sftp-insecure-ignore-host-key", false, "trust any SFTP host key (insecure)")
	fs.Float64Var(&s.tolerance, "snap", footprint.DefaultTolerance, "footprint snapping tolerance, in CRS units")
	fs.StringVar(&s.pushgateway, "pushgateway", "", "push each scan's metrics to this Prometheus Pushgateway (job pcrs_indexer, instance = the storage id)")
	fs.StringVar(&s.metricsFile, "metrics-file", "", "write each scan's metrics here (Prometheus text format, for node_exporter's textfile collector); a folder gets pcrs_indexer_<storage id>.prom")
	fs.StringVar(&s.statePath, "state", "", "state file: rescans read only new or changed tiles, and a stopped scan resumes")
	fs.BoolVar(&s.verbose, "verbose", false, "log every tile set aside, even on a terminal")
	addMemoryFlag(fs, &s.memory)
	fs.Var(&s.formats, "format", "also write the outputs as fgb (FlatGeobuf) or gpkg (GeoPackage), with the problems as a layer; repeatable or comma-separated (GeoJSON is always written)")
	return s
}

func (s *scanSettings) check() error {
	switch {
	case s.retries < 0 || s.timeout <= 0 || s.scanTimeout < 0:
		return errors.New("--retries must be at least 0, --request-timeout positive and --scan-timeout not negative")
	case s.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	}
	if err := s.memory.resolve(); err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	return nil
}

func (s *scanSettings) storageOptions() (storage.Options, error) {
	opts := storage.Options{
		Password:                  os.Getenv("PCRS_INDEXER_PASSWORD"),
		S3Endpoint:                s.s3Endpoint,
		S3PathStyle:               s.s3PathStyle,
		SFTPKey:                   s.sftpKey,
		SFTPKnownHosts:            s.sftpKnownHosts,
		SFTPInsecureIgnoreHostKey: s.sftpInsecure,
	}
	if s.passwordFile != "" {
		raw, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return opts, fmt.Errorf("--password-file: %w", err)
		}
		opts.Password = strings.TrimRight(string(raw), "\r\n")
	}
	return opts, nil
}

// job is one storage to scan and where its outputs go.
type job struct {
	source, out             string
	name, attributes        string
	projet, livrable        string
	metricsFolder           bool // --metrics-file names a folder whatever it holds
	stdout, stderr          io.Writer
	log                     *slog.Logger
	onTerminal              bool
	storageOptions          storage.Options
	settings                *scanSettings
	attrs                   *livrable.Attributes
	storageID, livrableName string
	// deliver, when set, sends what the scan published into out (and the
	// closed state) where they belong, a remote prefix: the scan is a
	// success, in its final event, its metrics and its exit status, only
	// once they are there.
	deliver func(ctx context.Context) error
}

func scan(args []string, stdout, stderr io.Writer) int {
	c := newCommand("scan", "[flags] SOURCE", "Scans one storage (one livrable) and publishes dalles.geojson, livrables.geojson and report.json.")
	fs := c.fs
	out := fs.String("out", "out", "folder receiving dalles.geojson, livrables.geojson and report.json")
	name := fs.String("name", "", "livrable name (default: the catalog's, else the last path element of SOURCE)")
	attributes := fs.String("attributes", "", "livrable attributes, YAML or JSON file (overrides the catalog's)")
	projet := fs.String("projet", "", "project UUID in the catalog")
	livrableNom := fs.String("livrable", "", "livrable name in the catalog")
	settings := addScanFlags(fs)
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) != 1:
		return c.usageError(stderr, fmt.Errorf("want one SOURCE, got %d arguments", len(positional)))
	}
	if err := settings.check(); err != nil {
		return c.usageError(stderr, err)
	}
	opts, err := settings.storageOptions()
	if err != nil {
		return c.usageError(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	onTerminal := isTerminal(stderr)
	j := &job{source: positional[0], out: *out, name: *name, attributes: *attributes, projet: *projet, livrable: *livrableNom,
		stdout: stdout, stderr: stderr, onTerminal: onTerminal, log: newLogger(stderr, onTerminal, settings.verbose),
		storageOptions: opts, settings: settings}
	if code := j.prepare(ctx, nil); code != exitOK {
		return code
	}
	settings.memory.apply(j.log)
	return j.run(ctx)
}

// prepare loads the job's attributes (from cat when given, else loading the
// catalog) and names it.
func (j *job) prepare(ctx context.Context, cat catalogSource) int {
	attrs, code := loadAttributes(ctx, j.stderr, cat, j.settings.catalog, j.projet, j.livrable, j.attributes)
	if code != exitOK {
		return code
	}
	j.attrs = attrs
	j.livrableName = j.name
	if j.livrableName == "" && attrs != nil {
		j.livrableName = attrs.Nom
	}
	if j.livrableName == "" {
		j.livrableName = defaultName(j.source)
	}
	j.storageID = indexer.StorageID(j.source)
	return exitOK
}

// run scans the storage and publishes its outputs; it ends with the final
// event and returns the exit status.
func (j *job) run(ctx context.Context) int {
	log, s := j.log, j.settings
	final := finalEvent{w: j.stderr, source: storage.Redact(j.source), livrable: j.livrableName}
	fail := func(msg string, err error) int {
		log.Error(msg, "source", storage.Redact(j.source), "error", err)
		final.emit(indexer.OutcomeFailed, nil, err)
		return exitFailed
	}
	st, err := backends.Registry().Open(ctx, j.source, j.storageOptions)
	if err != nil {
		if errors.Is(err, storage.ErrUnsupported) {
			fmt.Fprintf(j.stderr, "pcrs-indexer: %v\n", err)
			return exitUsage
		}
		return fail("cannot open the storage", err)
	}
	defer st.Close()
	// Where the outputs and the state go is checked before the storage is
	// listed: a scan must not run for hours to find it cannot publish.
	if err := indexer.CheckOut(j.out); err != nil {
		return fail("cannot write the outputs", err)
	}
	u, _ := storage.ParseLocation(j.source) // Open parsed it
	var tileState indexer.State
	closeState := func() error { return nil }
	if s.statePath != "" {
		store, err := state.Open(s.statePath)
		if err != nil {
			return fail("cannot open the state", err)
		}
		defer store.Close()
		closeState = store.Close
		tileState = store.Namespace(storage.Redact(u.String()))
	}
	// What the outputs said before this scan: the last success if this
	// one fails, whatever it has published into out meanwhile.
	lastGood := indexer.PublishedAt(j.out)
	registry := prometheus.NewRegistry()
	metrics, err := indexer.NewJobMetrics(registry, j.storageID)
	if err != nil {
		return fail("metrics", err)
	}
	defer j.exportMetrics(registry)
	cfg := indexer.Config{
		Storage: st, Location: j.source, Backend: u.Scheme, Name: j.livrableName, Attributes: j.attrs,
		Concurrency: s.concurrency, MaxUnreachable: s.maxUnreachable,
		Retry:     storage.RetryPolicy{Attempts: s.retries + 1, Base: storage.DefaultRetry.Base, Max: storage.DefaultRetry.Max, Timeout: s.timeout},
		Footprint: footprint.Options{Tolerance: s.tolerance}, Timeout: s.scanTimeout, AllowShrink: s.allowShrink, Formats: s.formats,
		Logger: log, Metrics: metrics, State: tileState,
	}
	if j.onTerminal {
		cfg.Progress = &progress.Bar{W: j.stderr, Label: "tiles"}
	}
	started := time.Now()
	res, err := indexer.Scan(ctx, cfg)
	if res != nil {
		defer res.Close()
	}
	if err == nil {
		err = indexer.Publish(j.out, res)
	}
	if err == nil && j.deliver != nil {
		if err = closeState(); err == nil {
			err = j.deliver(ctx)
		}
		if err != nil {
			err = fmt.Errorf("upload failed: livrable not published, its previous outputs stay: %w", err)
		}
	}
	var report *indexer.Report
	if res != nil {
		report = &res.Report
	}
	metrics.ScanFinished(j.storageID, indexer.Outcome(err), started, time.Now(), report)
	switch {
	case err == nil:
		printSummary(j.stdout, res, j.out, true)
		final.emit(indexer.OutcomeSuccess, res, nil)
		return exitOK
	case res != nil:
		// The scan got far enough to say what it found: its report goes
		// beside the outputs it leaves in place (Publish wrote it already
		// when it refused a shrunken scan).
		if !errors.Is(err, indexer.ErrShrunk) {
			if perr := indexer.PublishFailed(j.out, res); perr != nil {
				log.Error("writing the failed report", "error", perr)
			}
		}
		printSummary(j.stdout, res, j.out, false)
		log.Error("scan failed: previous outputs left in place", "error", err, "report", path.Join(j.out, indexer.FailedReportFile))
	default:
		log.Error("scan failed: previous outputs left in place", "error", err)
	}
	// A job knows only its own run; the outputs it left in place say when
	// the storage was last scanned successfully.
	metrics.Restore(j.storageID, lastGood, time.Time{})
	final.emit(indexer.Outcome(err), res, err)
	return exitFailed
}

// exportMetrics writes the textfile and pushes to the Pushgateway, whatever
// the scan's outcome: failed scans are worth metrics too.
func (j *job) exportMetrics(registry *prometheus.Registry) {
	s := j.settings
	if s.metricsFile != "" {
		file := metricsPath(s.metricsFile, j.storageID, j.metricsFolder)
		if err := indexer.WriteMetricsFile(file, registry); err != nil {
			j.log.Error("writing the metrics file", "error", err)
		}
	}
	if s.pushgateway != "" {
		err := push.New(s.pushgateway, "pcrs_indexer").Gatherer(registry).Grouping("instance", j.storageID).Push()
		if err != nil {
			j.log.Error("pushing metrics", "pushgateway", storage.Redact(s.pushgateway), "error", err)
		}
	}
}
