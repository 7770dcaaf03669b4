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

	"github.com/openpcrs/pcrs-indexer/batch"
	"github.com/openpcrs/pcrs-indexer/catalog"
	"github.com/openpcrs/pcrs-indexer/indexer"
)

func batchCommand(args []string, stdout, stderr io.Writer) int {
	c := newCommand("batch", "[flags] MANIFEST", "Scans this shard's storages of a CSV manifest (columns location, name, attributes, projet, livrable), one after the other, into OUT/<storage id>/. The shard comes from --shard I/N, else from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX and JOB_COMPLETIONS, else 0/1.")
	fs := c.fs
	out := fs.String("out", "", "folder receiving one folder of outputs per livrable (required)")
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
	onTerminal := isTerminal(stderr)
	log := newLogger(stderr, onTerminal, settings.verbose)
	cat := cachedCatalog()
	manifestDir := filepath.Dir(positional[0])
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
		j := &job{source: row.Location, name: row.Name, attributes: resolve(manifestDir, row.Attributes), projet: row.Projet, livrable: row.Livrable,
			metricsFolder: true, stdout: stdout, stderr: stderr, onTerminal: onTerminal,
			log: log.With("line", row.Line), storageOptions: opts, settings: settings}
		j.storageID = indexer.StorageID(row.Location)
		j.out = filepath.Join(*out, j.storageID)
		rc := j.prepare(ctx, cat)
		if rc == exitOK {
			rc = j.run(ctx)
		}
		switch rc {
		case exitOK:
			outcomes[indexer.OutcomeSuccess]++
		default:
			outcomes[indexer.OutcomeFailed]++
			code = exitFailed
		}
	}
	slog.New(slog.NewJSONHandler(stderr, nil)).Info("batch finished", "shard", fmt.Sprintf("%d/%d", shard.Index, shard.Count), "rows", len(rows), "livrables", outcomes)
	return code
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
	c := newCommand("merge", "--out DIR SHARD_OUT...", "Builds the national outputs (livrables, dalles, report) from the folders batch wrote, without reading any tile again.")
	out := c.fs.String("out", "", "folder receiving the national outputs (required)")
	var formats formatList
	c.fs.Var(&formats, "format", "encodings of the national dalles and livrables: geojson (default), fgb, gpkg; repeatable or comma-separated")
	positional, err := c.parse(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		return c.usageError(stderr, err)
	case len(positional) == 0:
		return c.usageError(stderr, errors.New("want at least one SHARD_OUT folder"))
	case *out == "":
		return c.usageError(stderr, errors.New("--out is required"))
	}
	if err := batch.Merge(*out, positional, formats); err != nil {
		fmt.Fprintf(stderr, "pcrs-indexer merge: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "national outputs written to %s\n", *out)
	return exitOK
}
