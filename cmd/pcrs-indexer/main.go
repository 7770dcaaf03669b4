// Command pcrs-indexer indexes the storages where PCRS aerial-image tiles
// are published.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/openpcrs/pcrs-indexer/catalog"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/service"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/prometheus/client_golang/prometheus"
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
  pcrs-indexer batch [flags] MANIFEST one shard of a national run (CSV manifest)
  pcrs-indexer merge --out DIR SHARD_OUT...  national outputs from batch folders
  pcrs-indexer serve [flags]          the long-running service (HTTP API, schedule)
  pcrs-indexer sample DIR             write the demo storage into DIR
  pcrs-indexer version                module version, commit and GDAL version

SOURCE is a folder (/data/tiles, file:///data/tiles), a web server's
listing (https://host/path/), s3://bucket/prefix, sftp://user@host:port/path,
ftp://host/path or ftps://host/path.
Run 'pcrs-indexer COMMAND --help' for a command's flags. Every flag can
also come from the environment: --request-timeout from
PCRS_INDEXER_REQUEST_TIMEOUT, and so on.
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
	case "batch":
		return batchCommand(args[1:], stdout, stderr)
	case "merge":
		return mergeCommand(args[1:], stdout, stderr)
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "version", "--version":
		return printVersion(stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "pcrs-indexer: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func sample(args []string, stdout, stderr io.Writer) int {
	c := newCommand("sample", "DIR", "Writes the demo storage (tiles on a grid near Carcassonne, with holes, an island and broken files) into DIR.")
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) != 1:
		return c.usageError(stderr, fmt.Errorf("want one DIR, got %d arguments", len(positional)))
	}
	n, err := tilegen.Sample(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "pcrs-indexer: writing the sample: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "sample storage with %d tiles written to %s\n", n, positional[0])
	return exitOK
}

// catalogSource gives the catalog once loaded (batch loads it once for
// every row); nil loads it.
type catalogSource func(ctx context.Context, location string) (*catalog.Catalog, error)

// loadAttributes joins the catalog's attributes and the attributes file.
func loadAttributes(ctx context.Context, stderr io.Writer, cat catalogSource, catalogLoc, projet, livrableNom, file string) (*livrable.Attributes, int) {
	var attrs *livrable.Attributes
	if catalogLoc != "" || projet != "" || livrableNom != "" {
		if catalogLoc == "" || projet == "" || livrableNom == "" {
			fmt.Fprintln(stderr, "pcrs-indexer: --catalog, --projet and --livrable go together")
			return nil, exitUsage
		}
		if cat == nil {
			cat = func(ctx context.Context, loc string) (*catalog.Catalog, error) { return catalog.Load(ctx, loc, nil) }
		}
		c, err := cat(ctx, catalogLoc)
		if err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: %v\n", err)
			if errors.Is(err, catalog.ErrInvalid) {
				return nil, exitUsage
			}
			return nil, exitFailed
		}
		if attrs, err = c.Attributes(projet, livrableNom); err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: catalog: %v\n", err)
			return nil, exitUsage
		}
	}
	if file != "" {
		a, err := livrable.Load(file)
		if err != nil {
			fmt.Fprintf(stderr, "pcrs-indexer: attributes: %v\n", err)
			return nil, exitUsage
		}
		attrs = livrable.Merge(attrs, a)
	}
	return attrs, exitOK
}

func serve(args []string, stdout, stderr io.Writer) int {
	c := newCommand("serve", "[flags]", "The long-running service: HTTP API, scheduled scans, map, metrics.")
	fs := c.fs
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	data := fs.String("data", "data", "folder holding the embedded store and the outputs")
	allowPrivate := fs.Bool("allow-private-networks", false, "allow storages on loopback, private or link-local addresses")
	allowFile := fs.Bool("allow-file-storages", false, "allow local folders as storages")
	maxScans := fs.Int("max-scans", 2, "scans running at once")
	concurrency := fs.Int("concurrency", indexer.DefaultConcurrency, "tiles read at once per scan")
	s3Endpoint := fs.String("s3-endpoint", os.Getenv("AWS_ENDPOINT_URL_S3"), "S3 endpoint URL for s3:// storages")
	catalogLoc := fs.String("catalog", "", "folder or base URL of the PCRS CSV exports, for registrations naming a projet/livrable pair")
	var basemaps service.BasemapFlag
	fs.Var(&basemaps, "basemap", "map background layer NAME=URL_TEMPLATE ({z}/{x}/{y}; a WMTS KVP GetTile URL too), repeatable; none: no background (default: IGN Géoplateforme Plan IGN v2 and orthophotos)")
	secretKeyFile := fs.String("secret-key-file", "", "file holding the key that encrypts stored credentials (base64 of 32 bytes; default $"+service.SecretKeyEnv+")")
	var memory memoryLimit
	addMemoryFlag(fs, &memory)
	resetState := fs.Bool("reset-state", false, "move a damaged state file aside and start empty (storages must be registered again)")
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) != 0:
		return c.usageError(stderr, fmt.Errorf("unexpected argument %q", positional[0]))
	}
	if err := memory.resolve(); err != nil {
		return c.usageError(stderr, fmt.Errorf("--memory-limit: %w", err))
	}
	log := newLogger(stderr, false, false)
	memory.apply(log)
	key, err := service.LoadSecretKey(*secretKeyFile)
	if err != nil {
		return c.usageError(stderr, err)
	}
	reg := prometheus.NewRegistry()
	cfg := service.Config{
		DataDir: *data, AdminToken: os.Getenv("PCRS_INDEXER_ADMIN_TOKEN"), SecretKey: key,
		AllowPrivateNetworks: *allowPrivate, AllowFileStorages: *allowFile, S3Endpoint: *s3Endpoint, Basemaps: basemaps.Basemaps(), Catalog: *catalogLoc,
		MaxScans: *maxScans, Concurrency: *concurrency,
		Registry: backends.Registry(), Registerer: reg, Gatherer: reg, Logger: log,
	}
	svc, err := service.New(cfg)
	if errors.Is(err, state.ErrDamaged) && *resetState {
		aside, rerr := state.Reset(service.StatePath(*data))
		if rerr != nil {
			log.Error("cannot reset the state", "error", rerr)
			return exitFailed
		}
		log.Warn("state file damaged: moved aside, starting empty", "aside", aside, "error", err)
		svc, err = service.New(cfg)
	}
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

// metricsPath is where a job writes its metrics: the file given, or in a
// folder (node_exporter's textfile folder) a file named after the storage,
// so that jobs sharing the folder never overwrite each other.
func metricsPath(p, storageID string, folder bool) string {
	if fi, err := os.Stat(p); folder || err == nil && fi.IsDir() || strings.HasSuffix(p, "/") {
		return filepath.Join(p, "pcrs_indexer_"+storageID+".prom")
	}
	return p
}

func newLogger(w io.Writer, onTerminal, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if onTerminal {
		level = slog.LevelError // the summary lists the problems; a bar needs a quiet terminal
	}
	if verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if onTerminal {
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(h)
	if verbose {
		// GDAL's own warnings, at debug level, through the same handler:
		// never raw lines on stderr breaking the JSON.
		raster.SetLogger(log)
	}
	return log
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
		shown := 0
		errShown := errors.New("shown")
		err := res.EachProblem(func(p *indexer.ProblemEntry) error {
			if shown == 10 {
				return errShown
			}
			shown++
			fmt.Fprintf(w, "    %s: %s (%s)\n", p.Path, p.Reason, p.Detail)
			return nil
		})
		switch {
		case errors.Is(err, errShown):
			fmt.Fprintf(w, "    … and %d more in the report\n", r.Counts.Problems-shown)
		case err != nil:
			fmt.Fprintf(w, "    (the problems could not be read back: %v)\n", err)
		}
	}
	printWarnings(w, r)
	fmt.Fprintf(w, "  footprint %.4f km², %d polygon(s)\n", r.AreaKm2, len(res.Outline.WGS84))
	fmt.Fprintf(w, "  storage: %d requests (%.2f per tile), %d bytes read\n", r.IO.Requests, r.IO.RequestsPerTile, r.IO.Bytes)
	if published {
		fmt.Fprintf(w, "  outputs: %s, %s, %s\n", path.Join(out, indexer.DallesFile), path.Join(out, indexer.LivrablesFile), path.Join(out, indexer.ReportFile))
	} else {
		fmt.Fprintf(w, "  nothing published; report of this attempt: %s\n", path.Join(out, indexer.FailedReportFile))
	}
}

// printWarnings says, by kind, what is wrong with the readable tiles as a
// delivery, and the first few.
func printWarnings(w io.Writer, r indexer.Report) {
	var kinds []string
	total := 0
	for kind, n := range r.WarningsByKind {
		if n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
			total += n
		}
	}
	if total == 0 {
		return
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "  warnings (tiles kept, to check): %s\n", strings.Join(kinds, ", "))
	for i, wa := range r.Warnings {
		if i == 10 {
			fmt.Fprintf(w, "    … and %d more in the report\n", total-10)
			break
		}
		fmt.Fprintf(w, "    %s %s: %s\n", wa.Kind, wa.Path, wa.Detail)
	}
}
