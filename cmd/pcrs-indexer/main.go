// Command pcrs-indexer indexes the storages where PCRS aerial-image tiles
// are published.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/openpcrs/pcrs-indexer/catalog"
	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/progress"
	"github.com/openpcrs/pcrs-indexer/service"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"golang.org/x/term"
)

// Exit statuses, as SPEC.md sets them.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usage = `pcrs-indexer indexes a storage of PCRS tiles.

Usage:
  pcrs-indexer scan [flags] SOURCE    scan one storage (one livrable)
  pcrs-indexer serve [flags]          the long-running service (HTTP API, schedule)
  pcrs-indexer sample DIR             write the demo storage into DIR

SOURCE is a folder (/data/tiles, file:///data/tiles), a web server's
listing (https://host/path/), s3://bucket/prefix, sftp://user@host:port/path,
ftp://host/path or ftps://host/path.
Run 'pcrs-indexer scan -h' for the scan flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "scan":
		return scan(args[1:], stdout, stderr)
	case "sample":
		return sample(args[1:], stdout, stderr)
	case "serve":
		return serve(args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "pcrs-indexer: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func sample(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, "usage: pcrs-indexer sample DIR\n")
		return exitUsage
	}
	n, err := tilegen.Sample(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "pcrs-indexer: writing the sample: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "sample storage with %d tiles written to %s\n", n, args[0])
	return exitOK
}

func scan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "out", "folder receiving dalles.geojson, livrables.geojson and report.json")
	name := fs.String("name", "", "livrable name (default: the last path element of SOURCE)")
	attributes := fs.String("attributes", "", "livrable attributes, YAML or JSON file (overrides the catalog's)")
	catalogLoc := fs.String("catalog", "", "folder or base URL of the PCRS CSV exports (with --projet and --livrable)")
	projet := fs.String("projet", "", "project UUID in the catalog")
	livrableNom := fs.String("livrable", "", "livrable name in the catalog")
	concurrency := fs.Int("concurrency", indexer.DefaultConcurrency, "tiles read at once")
	retries := fs.Int("retries", storage.DefaultRetry.Attempts-1, "retries of a failed storage request (exponential backoff with jitter)")
	timeout := fs.Duration("request-timeout", storage.DefaultRetry.Timeout, "time limit of one storage request")
	maxUnreachable := fs.Int("max-unreachable", 0, "unreachable tiles tolerated before the scan counts as failed")
	passwordFile := fs.String("password-file", "", "file holding the storage password (default: $PCRS_INDEXER_PASSWORD)")
	s3Endpoint := fs.String("s3-endpoint", "", "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)")
	s3PathStyle := fs.Bool("s3-path-style", false, "S3 path-style addressing (most S3-compatible stores)")
	sftpKey := fs.String("sftp-key", "", "SFTP private key file")
	sftpKnownHosts := fs.String("sftp-known-hosts", "", "known_hosts file checked for the SFTP host key (default ~/.ssh/known_hosts)")
	sftpInsecure := fs.Bool("sftp-insecure-ignore-host-key", false, "trust any SFTP host key (insecure)")
	tolerance := fs.Float64("snap", footprint.DefaultTolerance, "footprint snapping tolerance, in CRS units")
	pushgateway := fs.String("pushgateway", "", "push the scan's metrics to this Prometheus Pushgateway (job pcrs_indexer, instance = the livrable name)")
	metricsFile := fs.String("metrics-file", "", "write the scan's metrics here (Prometheus text format, for node_exporter's textfile collector)")
	statePath := fs.String("state", "", "state file: rescans read only new or changed tiles, and a stopped scan resumes")
	verbose := fs.Bool("verbose", false, "log every tile set aside, even on a terminal")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: pcrs-indexer scan [flags] SOURCE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	source := fs.Arg(0)
	if *retries < 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "pcrs-indexer: --retries must be at least 0 and --request-timeout positive")
		return exitUsage
	}
	if *concurrency < 1 {
		fmt.Fprintln(stderr, "pcrs-indexer: --concurrency must be at least 1")
		return exitUsage
	}

	onTerminal := isTerminal(stderr)
	log := newLogger(stderr, onTerminal, *verbose)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var attrs *livrable.Attributes
	if *catalogLoc != "" || *projet != "" || *livrableNom != "" {
		if *catalogLoc == "" || *projet == "" || *livrableNom == "" {
			fmt.Fprintln(stderr, "pcrs-indexer: --catalog, --projet and --livrable go together")
			return exitUsage
		}
		c, err := catalog.Load(ctx, *catalogLoc, nil)
		if err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: %v\n", err)
			return exitFailed
		}
		if attrs, err = c.Attributes(*projet, *livrableNom); err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: catalog: %v\n", err)
			return exitUsage
		}
	}
	if *attributes != "" {
		a, err := livrable.Load(*attributes)
		if err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: attributes: %v\n", err)
			return exitUsage
		}
		attrs = livrable.Merge(attrs, a)
	}
	opts := storage.Options{
		Password:                  os.Getenv("PCRS_INDEXER_PASSWORD"),
		S3Endpoint:                *s3Endpoint,
		S3PathStyle:               *s3PathStyle,
		SFTPKey:                   *sftpKey,
		SFTPKnownHosts:            *sftpKnownHosts,
		SFTPInsecureIgnoreHostKey: *sftpInsecure,
	}
	if *passwordFile != "" {
		raw, err := os.ReadFile(*passwordFile)
		if err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: --password-file: %v\n", err)
			return exitUsage
		}
		opts.Password = strings.TrimRight(string(raw), "\r\n")
	}
	livrableName := *name
	if livrableName == "" && attrs != nil {
		livrableName = attrs.Nom
	}
	if livrableName == "" {
		livrableName = defaultName(source)
	}

	reg := backends.Registry()
	st, err := reg.Open(ctx, source, opts)
	if err != nil {
		log.Error("cannot open the storage", "source", storage.Redact(source), "error", err)
		if errors.Is(err, storage.ErrUnsupported) {
			return exitUsage
		}
		return exitFailed
	}
	defer st.Close()

	u, _ := storage.ParseLocation(source)
	var tileState indexer.State
	if *statePath != "" {
		store, err := state.Open(*statePath)
		if err != nil {
			log.Error("cannot open the state", "error", err)
			return exitFailed
		}
		defer store.Close()
		tileState = store.Namespace(storage.Redact(u.String()))
	}

	registry := prometheus.NewRegistry()
	metrics, err := indexer.NewMetrics(registry)
	if err != nil {
		log.Error("metrics", "error", err)
		return exitFailed
	}
	// Failed scans are worth metrics too: written whatever the outcome.
	if *metricsFile != "" {
		defer func() {
			if err := indexer.WriteMetricsFile(*metricsFile, registry); err != nil {
				log.Error("writing the metrics file", "error", err)
			}
		}()
	}
	if *pushgateway != "" {
		defer func() {
			err := push.New(*pushgateway, "pcrs_indexer").Gatherer(registry).Grouping("instance", livrableName).Push()
			if err != nil {
				log.Error("pushing metrics", "pushgateway", storage.Redact(*pushgateway), "error", err)
			}
		}()
	}
	cfg := indexer.Config{
		Storage:        st,
		Location:       source,
		Backend:        u.Scheme,
		Name:           livrableName,
		Attributes:     attrs,
		Concurrency:    *concurrency,
		MaxUnreachable: *maxUnreachable,
		Retry:          storage.RetryPolicy{Attempts: *retries + 1, Base: storage.DefaultRetry.Base, Max: storage.DefaultRetry.Max, Timeout: *timeout},
		Footprint:      footprint.Options{Tolerance: *tolerance},
		Logger:         log,
		Metrics:        metrics,
		State:          tileState,
	}
	if onTerminal {
		cfg.Progress = &progress.Bar{W: stderr, Label: "tiles"}
	}
	res, err := indexer.Scan(ctx, cfg)
	switch {
	case errors.Is(err, indexer.ErrIncomplete):
		if perr := indexer.PublishFailed(*out, &res.Report); perr != nil {
			log.Error("writing the failed report", "error", perr)
		}
		printSummary(stdout, res, *out, false)
		log.Error("scan failed: previous outputs left in place", "error", err, "report", path.Join(*out, indexer.FailedReportFile))
		return exitFailed
	case err != nil:
		log.Error("scan failed: previous outputs left in place", "error", err)
		return exitFailed
	}
	if err := indexer.Publish(*out, res); err != nil {
		log.Error("writing outputs", "error", err)
		return exitFailed
	}
	printSummary(stdout, res, *out, true)
	return exitOK
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	data := fs.String("data", "data", "folder holding the embedded store and the outputs")
	allowPrivate := fs.Bool("allow-private-networks", false, "allow storages on loopback, private or link-local addresses")
	allowFile := fs.Bool("allow-file-storages", false, "allow local folders as storages")
	maxScans := fs.Int("max-scans", 2, "scans running at once")
	concurrency := fs.Int("concurrency", indexer.DefaultConcurrency, "tiles read at once per scan")
	s3Endpoint := fs.String("s3-endpoint", os.Getenv("AWS_ENDPOINT_URL_S3"), "S3 endpoint URL for s3:// storages")
	catalogLoc := fs.String("catalog", "", "folder or base URL of the PCRS CSV exports, for registrations naming a projet/livrable pair")
	basemap := fs.String("basemap", "", "XYZ tile URL template drawn under the map's footprints (none by default)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	log := newLogger(stderr, false, true)
	reg := prometheus.NewRegistry()
	svc, err := service.New(service.Config{
		DataDir: *data, AdminToken: os.Getenv("PCRS_INDEXER_ADMIN_TOKEN"),
		AllowPrivateNetworks: *allowPrivate, AllowFileStorages: *allowFile, S3Endpoint: *s3Endpoint, Basemap: *basemap, Catalog: *catalogLoc,
		MaxScans: *maxScans, Concurrency: *concurrency,
		Registry: backends.Registry(), Registerer: reg, Gatherer: reg, Logger: log,
	})
	if err != nil {
		log.Error("cannot start the service", "error", err)
		return exitFailed
	}
	if os.Getenv("PCRS_INDEXER_ADMIN_TOKEN") == "" {
		log.Warn("PCRS_INDEXER_ADMIN_TOKEN is not set: admin calls are disabled")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go svc.Run(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "listen", *listen, "data", *data)
	select {
	case err = <-errc:
		log.Error("listening", "error", err)
		stop()
		svc.Close()
		return exitFailed
	case <-ctx.Done():
	}
	// Graceful: stop taking requests, let answers finish, cancel scans
	// (they resume from the state at the next start).
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err := svc.Close(); err != nil {
		log.Error("closing the store", "error", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}

func newLogger(w io.Writer, onTerminal, verbose bool) *slog.Logger {
	if onTerminal {
		// The summary lists the problems; a bar needs a quiet terminal.
		level := slog.LevelError
		if verbose {
			level = slog.LevelInfo
		}
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func defaultName(source string) string {
	u, err := storage.ParseLocation(source)
	if err != nil {
		return source
	}
	p := strings.TrimRight(u.Path, "/")
	if p == "" {
		return u.Host
	}
	return path.Base(p)
}

func printSummary(w io.Writer, res *indexer.Result, out string, published bool) {
	r := res.Report
	fmt.Fprintf(w, "livrable %q from %s, %.1f s\n", res.Livrable.Name, r.Source, r.DurationSeconds)
	fmt.Fprintf(w, "  objects %d, tiles %d, readable %d, problems %d\n", r.Counts.Objects, r.Counts.Tiles, r.Counts.Readable, r.Counts.Problems)
	reasons := make([]string, 0, len(r.ProblemsByReason))
	for reason, n := range r.ProblemsByReason {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %d", reason, n))
		}
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(w, "  problems by reason: %s\n", strings.Join(reasons, ", "))
		for i, p := range r.Problems {
			if i == 10 {
				fmt.Fprintf(w, "    … and %d more in the report\n", len(r.Problems)-10)
				break
			}
			fmt.Fprintf(w, "    %s: %s (%s)\n", p.Path, p.Reason, p.Detail)
		}
	}
	fmt.Fprintf(w, "  footprint %.4f km², %d polygon(s)\n", r.AreaKm2, len(res.Outline.WGS84))
	fmt.Fprintf(w, "  storage: %d requests (%.2f per tile), %d bytes read\n", r.IO.Requests, r.IO.RequestsPerTile, r.IO.Bytes)
	if published {
		fmt.Fprintf(w, "  outputs: %s, %s, %s\n", path.Join(out, indexer.DallesFile), path.Join(out, indexer.LivrablesFile), path.Join(out, indexer.ReportFile))
	} else {
		fmt.Fprintf(w, "  nothing published; report of this attempt: %s\n", path.Join(out, indexer.FailedReportFile))
	}
}
