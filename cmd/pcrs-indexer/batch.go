package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/openpcrs/pcrs-indexer/batch"
	"github.com/openpcrs/pcrs-indexer/batch/output"
	"github.com/openpcrs/pcrs-indexer/catalog"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/storage"
)

func batchCommand(args []string, stdout, stderr io.Writer) int {
	c := newCommand("batch", "[flags] MANIFEST", "Scans this shard's storages of a CSV manifest (columns location, name, attributes, projet, livrable), one after the other, into OUT/<storage id>/, OUT a local folder or an s3:// prefix. The shard comes from --shard I/N, else from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX and JOB_COMPLETIONS, else 0/1.")
	fs := c.fs
	out := fs.String("out", "", "local folder or s3://bucket/prefix receiving one folder of outputs per livrable (required); on S3 each livrable's state goes with its outputs")
	shardFlag := fs.String("shard", "", "this process's shard, I/N (default: from JOB_COMPLETION_INDEX/JOB_COMPLETIONS)")
	settings := addScanFlags(fs)
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) != 1:
		return c.usageError(stderr, fmt.Errorf("want one MANIFEST, got %d arguments", len(positional)))
	case *out == "":
		return c.usageError(stderr, errors.New("--out is required"))
	case output.IsRemote(*out) && settings.statePath != "":
		return c.usageError(stderr, errors.New("--state is for a local --out: with a remote --out each livrable's state is kept below the prefix (<storage id>/"+output.StateFile+")"))
	}
	if err := settings.check(); err != nil {
		return c.usageError(stderr, err)
	}
	shard, err := chooseShard(*shardFlag)
	if err != nil {
		return c.usageError(stderr, err)
	}
	rows, err := batch.LoadManifest(positional[0])
	if err != nil {
		return c.usageError(stderr, err)
	}
	opts, err := settings.storageOptions()
	if err != nil {
		return c.usageError(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dest, code := openOut(ctx, c, stderr, *out, opts, settings.retryPolicy())
	if code != exitOK {
		return code
	}
	if dest != nil {
		defer dest.Close()
	}
	b := &batchRun{out: *out, dest: dest, settings: settings, opts: opts, manifestDir: filepath.Dir(positional[0]),
		stdout: stdout, stderr: stderr, onTerminal: isTerminal(stderr), cat: cachedCatalog()}
	b.log = newLogger(stderr, b.onTerminal, settings.verbose)
	settings.memory.apply(b.log)
	outcomes, code := b.runShard(ctx, rows, shard)
	slog.New(slog.NewJSONHandler(stderr, nil)).Info("batch finished", "shard", fmt.Sprintf("%d/%d", shard.Index, shard.Count), "rows", len(rows), "livrables", outcomes)
	return code
}

// openOut opens a remote --out (nil for a local folder): a location that
// cannot be written is bad usage, a store that cannot be configured a
// failure.
func openOut(ctx context.Context, c *command, stderr io.Writer, out string, opts storage.Options, retry storage.RetryPolicy) (*output.Prefix, int) {
	if !output.IsRemote(out) {
		return nil, exitOK
	}
	dest, err := output.Open(ctx, out, opts, retry)
	switch {
	case errors.Is(err, storage.ErrUnsupported):
		return nil, c.usageError(stderr, fmt.Errorf("--out: %w", err))
	case err != nil:
		fmt.Fprintf(stderr, "pcrs-indexer %s: --out: %v\n", c.name, err)
		return nil, exitFailed
	}
	return dest, exitOK
}

// batchRun is what every row of one batch shares.
type batchRun struct {
	out         string
	dest        *output.Prefix // nil for a local --out
	settings    *scanSettings
	opts        storage.Options
	manifestDir string
	stdout      io.Writer
	stderr      io.Writer
	onTerminal  bool
	log         *slog.Logger
	cat         catalogSource
}

// runShard scans the rows of the shard one after the other and counts
// their outcomes; any row not published makes the batch fail.
func (b *batchRun) runShard(ctx context.Context, rows []batch.Row, shard batch.Shard) (map[string]int, int) {
	outcomes := map[string]int{}
	code := exitOK
	for _, row := range rows {
		if !shard.Owns(row) {
			continue
		}
		if ctx.Err() != nil {
			outcomes[indexer.OutcomeIncomplete]++
			code = exitFailed
			continue
		}
		j := &job{source: row.Location, name: row.Name, attributes: resolve(b.manifestDir, row.Attributes), projet: row.Projet, livrable: row.Livrable,
			metricsFolder: true, stdout: b.stdout, stderr: b.stderr, onTerminal: b.onTerminal,
			log: b.log.With("line", row.Line), storageOptions: b.opts, settings: b.settings}
		j.storageID = indexer.StorageID(row.Location)
		var rc int
		if b.dest != nil {
			rc = runStaged(ctx, j, b.cat, b.dest.Sub(j.storageID))
		} else {
			j.out = filepath.Join(b.out, j.storageID)
			if rc = j.prepare(ctx, b.cat); rc == exitOK {
				rc = j.run(ctx)
			}
		}
		switch rc {
		case exitOK:
			outcomes[indexer.OutcomeSuccess]++
		default:
			outcomes[indexer.OutcomeFailed]++
			code = exitFailed
		}
	}
	return outcomes, code
}

// retryPolicy is the storage retry policy the flags set.
func (s *scanSettings) retryPolicy() storage.RetryPolicy {
	return storage.RetryPolicy{Attempts: s.retries + 1, Base: storage.DefaultRetry.Base, Max: storage.DefaultRetry.Max, Timeout: s.timeout}
}

// attemptGrace bounds the upload of a failed scan's report and state after
// SIGTERM: Kubernetes kills a pod 30 s after asking it to stop.
const attemptGrace = 20 * time.Second

// runStaged scans one row whose outputs go to the remote prefix dest. The
// scan publishes into a local staging folder exactly as into a local --out
// (temporary files renamed, the shrink guard, report.failed.json), seeded
// with the livrable's previous report.json and state from dest; what it
// published is then uploaded. A livrable is a success only once uploaded.
func runStaged(ctx context.Context, j *job, cat catalogSource, dest *output.Prefix) int {
	if rc := j.prepare(ctx, cat); rc != exitOK {
		return rc
	}
	fail := func(msg string, err error) int {
		j.log.Error(msg, "livrable", j.livrableName, "storage", j.storageID, "out", dest.String(), "error", err)
		return exitFailed
	}
	staging, err := os.MkdirTemp("", "pcrs-indexer-"+j.storageID+"-*")
	if err != nil {
		return fail("cannot make the staging folder", err)
	}
	defer os.RemoveAll(staging)
	statePath := filepath.Join(staging, output.StateFile)
	settings := *j.settings
	settings.statePath = statePath
	j.settings, j.out = &settings, filepath.Join(staging, "out")
	if err := seed(ctx, dest, j.out, statePath); err != nil {
		return fail("cannot use the output prefix", err)
	}
	j.deliver = func(ctx context.Context) error {
		if err := dest.Publish(ctx, j.out, output.File{Name: output.StateFile, Path: statePath}); err != nil {
			return err
		}
		fmt.Fprintf(j.stdout, "  uploaded to %s\n", dest)
		return nil
	}
	if rc := j.run(ctx); rc != exitOK {
		// The attempt's report (report.failed.json) tells what was not
		// published; SIGTERM may be what cut the upload.
		keepAttempt(ctx, j, dest, statePath, filepath.Join(j.out, indexer.FailedReportFile))
		return rc
	}
	return exitOK
}

// seed checks that dest takes writes, then fetches into the staging folder
// what the scan reads of its previous outputs: report.json (the shrink
// guard, the last success in metrics) and the state (tiles not read again).
func seed(ctx context.Context, dest *output.Prefix, out, statePath string) error {
	if err := dest.Check(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if _, err := dest.Fetch(ctx, indexer.ReportFile, filepath.Join(out, indexer.ReportFile)); err != nil {
		return err
	}
	_, err := dest.Fetch(ctx, output.StateFile, statePath)
	return err
}

// keepAttempt uploads what a failed attempt leaves for the next one, as a
// local --out keeps it: its state (a scan stopped by SIGTERM resumes
// without reading again) and its report, from the local file report, as
// report.failed.json (merge lists the livrable as failed). It goes on for
// a while after ctx is cancelled, SIGTERM being the very case where the
// state matters.
func keepAttempt(ctx context.Context, j *job, dest *output.Prefix, statePath, report string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptGrace)
	defer cancel()
	for _, f := range []output.File{{Name: output.StateFile, Path: statePath}, {Name: indexer.FailedReportFile, Path: report}} {
		if _, err := os.Stat(f.Path); err != nil {
			continue // the scan did not get that far
		}
		if err := dest.Upload(ctx, f.Name, f.Path); err != nil {
			j.log.Error("cannot upload the failed attempt's "+f.Name, "livrable", j.livrableName, "storage", j.storageID, "out", dest.String(), "error", err)
		}
	}
}

// chooseShard takes --shard, else the Indexed Job's variables, else 0/1.
func chooseShard(flagValue string) (batch.Shard, error) {
	if flagValue != "" {
		return batch.ParseShard(flagValue)
	}
	s, ok, err := batch.ShardFromEnv(os.Getenv)
	if err != nil || ok {
		return s, err
	}
	return batch.Shard{Index: 0, Count: 1}, nil
}

// resolve reads a manifest's relative paths from the manifest's folder.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// cachedCatalog loads each catalog once for all the rows naming it.
func cachedCatalog() catalogSource {
	var mu sync.Mutex
	type loaded struct {
		c   *catalog.Catalog
		err error
	}
	cache := map[string]loaded{}
	return func(ctx context.Context, loc string) (*catalog.Catalog, error) {
		mu.Lock()
		defer mu.Unlock()
		if l, ok := cache[loc]; ok {
			return l.c, l.err
		}
		c, err := catalog.Load(ctx, loc, nil)
		cache[loc] = loaded{c, err}
		return c, err
	}
}

func mergeCommand(args []string, stdout, stderr io.Writer) int {
	c := newCommand("merge", "--out OUT SHARD_OUT...", "Builds the national outputs (livrables, dalles, report) from the outputs batch wrote, without reading any tile again. OUT and each SHARD_OUT are a local folder or an s3:// prefix; remote shards are downloaded to temporary files first.")
	out := c.fs.String("out", "", "local folder or s3://bucket/prefix receiving the national outputs (required)")
	var formats formatList
	c.fs.Var(&formats, "format", "encodings of the national dalles and livrables: geojson (default), fgb, gpkg; repeatable or comma-separated")
	s3Endpoint := c.fs.String("s3-endpoint", "", "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)")
	s3PathStyle := c.fs.Bool("s3-path-style", false, "S3 path-style addressing (most S3-compatible stores)")
	retries := c.fs.Int("retries", storage.DefaultRetry.Attempts-1, "retries of a failed storage request (exponential backoff with jitter)")
	timeout := c.fs.Duration("request-timeout", storage.DefaultRetry.Timeout, "time limit of one storage request (an upload gets one more second per MiB)")
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) == 0:
		return c.usageError(stderr, errors.New("want at least one SHARD_OUT"))
	case *out == "":
		return c.usageError(stderr, errors.New("--out is required"))
	case *retries < 0 || *timeout <= 0:
		return c.usageError(stderr, errors.New("--retries must be at least 0 and --request-timeout positive"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := storage.Options{S3Endpoint: *s3Endpoint, S3PathStyle: *s3PathStyle}
	retry := storage.RetryPolicy{Attempts: *retries + 1, Base: storage.DefaultRetry.Base, Max: storage.DefaultRetry.Max, Timeout: *timeout}
	open := func(ctx context.Context, loc string) (*output.Prefix, error) {
		return output.Open(ctx, loc, opts, retry)
	}
	if err := batch.MergeTo(ctx, *out, positional, formats, open); err != nil {
		if errors.Is(err, storage.ErrUnsupported) {
			return c.usageError(stderr, err)
		}
		fmt.Fprintf(stderr, "pcrs-indexer merge: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "national outputs written to %s\n", storage.Redact(*out))
	return exitOK
}
