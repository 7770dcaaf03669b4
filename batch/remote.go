package batch

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/openpcrs/pcrs-indexer/batch/output"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/vector"
	"golang.org/x/sync/errgroup"
)

// Opener opens a remote prefix (an s3:// output or shard output).
type Opener func(ctx context.Context, location string) (*output.Prefix, error)

// fetchWorkers is how many objects are downloaded at once: each waits a
// round trip, and a national run has thousands of livrables.
const fetchWorkers = 8

// MergeTo is Merge where each shard output, and out, may be a local folder
// or a remote prefix. A remote shard's livrables are downloaded to
// temporary files first (only what the merge reads), so the merge streams
// from disk exactly as it does from local folders and memory does not grow
// with the tiles; a remote out is merged into a temporary folder, then
// published with report.json last.
func MergeTo(ctx context.Context, out string, shards []string, formats []vector.Format, open Opener) error {
	tmp, err := os.MkdirTemp("", "pcrs-indexer-merge-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	target := out
	var dest *output.Prefix
	if output.IsRemote(out) {
		if dest, err = open(ctx, out); err != nil {
			return err
		}
		defer dest.Close()
		// Before any download: a merge must not fetch for an hour to find
		// it cannot publish.
		if err := dest.Check(ctx); err != nil {
			return err
		}
		target = filepath.Join(tmp, "national")
	}
	dirs, err := localShards(ctx, shards, tmp, open)
	if err != nil {
		return err
	}
	if err := Merge(target, dirs, formats); err != nil {
		return err
	}
	if dest != nil {
		return dest.Publish(ctx, target)
	}
	return nil
}

// localShards returns a local folder for each shard output, downloading
// the remote ones below tmp.
func localShards(ctx context.Context, shards []string, tmp string, open Opener) ([]string, error) {
	dirs := make([]string, len(shards))
	for i, s := range shards {
		if !output.IsRemote(s) {
			dirs[i] = s
			continue
		}
		dirs[i] = filepath.Join(tmp, fmt.Sprintf("shard-%d", i))
		src, err := open(ctx, s)
		if err != nil {
			return nil, err
		}
		err = fetchShard(ctx, src, dirs[i])
		src.Close()
		if err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

// mergedFiles are what the merge reads of a published livrable.
var mergedFiles = []string{indexer.ReportFile, indexer.DallesFile, indexer.LivrablesFile}

// fetchShard downloads into dir, one folder per livrable, what the merge
// reads of each published livrable of src (one holding report.json), and
// its failed attempt's report when there is one.
func fetchShard(ctx context.Context, src *output.Prefix, dir string) error {
	byID, err := shardObjects(ctx, src)
	if err != nil {
		return err
	}
	type object struct{ id, name string }
	var todo []object
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		names := byID[id]
		if !names[indexer.ReportFile] {
			continue // never published: only report.failed.json
		}
		for _, name := range mergedFiles {
			if !names[name] {
				return fmt.Errorf("%w: %s holds %s but no %s", ErrMerge, src.Sub(id), indexer.ReportFile, name)
			}
			todo = append(todo, object{id, name})
		}
		if names[indexer.FailedReportFile] {
			todo = append(todo, object{id, indexer.FailedReportFile})
		}
		if err := os.MkdirAll(filepath.Join(dir, id), 0o755); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchWorkers)
	for _, o := range todo {
		g.Go(func() error {
			found, err := src.Sub(o.id).Fetch(ctx, o.name, filepath.Join(dir, o.id, o.name))
			if err == nil && !found {
				err = fmt.Errorf("%w: %s%s was listed, then gone", ErrMerge, src.Sub(o.id), o.name)
			}
			return err
		})
	}
	return g.Wait()
}

// shardObjects lists src's livrable folders (one level below it) and the
// names each holds.
func shardObjects(ctx context.Context, src *output.Prefix) (map[string]map[string]bool, error) {
	names, err := src.Names(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMerge, err)
	}
	byID := map[string]map[string]bool{}
	for _, n := range names {
		id, name, ok := strings.Cut(n, "/")
		// The folder becomes a local one: it must be one plain name.
		if !ok || strings.Contains(name, "/") || !filepath.IsLocal(id) || strings.ContainsAny(id, `\:`) || strings.HasPrefix(id, ".") {
			continue
		}
		if byID[id] == nil {
			byID[id] = map[string]bool{}
		}
		byID[id][name] = true
	}
	return byID, nil
}
