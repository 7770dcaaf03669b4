package batch

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/vector"
)

// ErrMerge is a set of shard outputs that cannot be merged.
var ErrMerge = errors.New("cannot merge")

// livrableDir is one livrable's published outputs in a shard's folder.
type livrableDir struct{ id, dir string }

// findLivrables lists the livrable folders (those holding a published
// report.json) of the shard folders, sorted by id so that the merge does
// not depend on which shard scanned what.
func findLivrables(shardDirs []string) ([]livrableDir, error) {
	byID := map[string]string{}
	for _, sd := range shardDirs {
		entries, err := os.ReadDir(sd)
		if err != nil {
			return nil, fmt.Errorf("%w: shard folder: %w", ErrMerge, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			dir := filepath.Join(sd, e.Name())
			if _, err := os.Stat(filepath.Join(dir, indexer.ReportFile)); err != nil {
				continue // never published: only report.failed.json
			}
			if prev, dup := byID[e.Name()]; dup {
				return nil, fmt.Errorf("%w: livrable %s is in both %s and %s", ErrMerge, e.Name(), prev, dir)
			}
			byID[e.Name()] = dir
		}
	}
	out := make([]livrableDir, 0, len(byID))
	for id, dir := range byID {
		out = append(out, livrableDir{id, dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// Merge writes into out the national outputs of the shards' livrables:
// livrables.geojson (one feature per livrable), dalles.geojson (every tile,
// streamed: memory does not grow with the number of tiles) and report.json
// (totals and each livrable's report). Each livrable's footprint was
// unioned once by its shard: one storage is one livrable, so the merge
// never re-reads a tile nor unions again.
//
// formats selects the encodings of dalles and livrables (GeoJSON when
// empty); FlatGeobuf and GeoPackage also get the problems as a layer.
func Merge(out string, shardDirs []string, formats []vector.Format) error {
	livs, err := findLivrables(shardDirs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if len(formats) == 0 {
		formats = []vector.Format{vector.GeoJSON}
	}
	// The GeoJSON is what the other encodings are made from: written
	// beside them under a temporary name unless asked for.
	keepGeoJSON := slices.Contains(formats, vector.GeoJSON)
	work, err := os.MkdirTemp(out, ".merge-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dalles, livrables, problems := filepath.Join(work, indexer.DallesFile), filepath.Join(work, indexer.LivrablesFile), filepath.Join(work, "problemes.geojson")
	steps := []struct {
		path  string
		write func(io.Writer) error
	}{
		{dalles, func(w io.Writer) error { return concatFeatures(w, livs, indexer.DallesFile) }},
		{livrables, func(w io.Writer) error { return concatFeatures(w, livs, indexer.LivrablesFile) }},
		{problems, func(w io.Writer) error { return mergeProblems(w, livs) }},
		{filepath.Join(work, indexer.ReportFile), func(w io.Writer) error { return mergeReports(w, livs) }},
	}
	for _, s := range steps {
		if err := indexer.WriteAtomically(s.path, s.write); err != nil {
			return err
		}
	}
	if err := indexer.WriteFormats(out, formats, dalles, livrables, problems); err != nil {
		return err
	}
	publish := []string{indexer.ReportFile}
	if keepGeoJSON {
		publish = append([]string{indexer.DallesFile, indexer.LivrablesFile}, publish...)
	}
	for _, name := range publish {
		if err := os.Rename(filepath.Join(work, name), filepath.Join(out, name)); err != nil {
			return err
		}
	}
	return nil
}

// mergeProblems writes every livrable's problems as one layer, each named
// with its livrable: one livrable's report in memory at a time.
func mergeProblems(w io.Writer, livs []livrableDir) error {
	return indexer.WriteProblems(w, func(fn func(p *indexer.ProblemEntry, livrable string) error) error {
		for _, l := range livs {
			var one indexer.Report
			if _, err := readReport(l, &one); err != nil {
				return err
			}
			for i := range one.Problems {
				if err := fn(&one.Problems[i], l.id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// readReport decodes a livrable's report.json into r and returns it raw.
func readReport(l livrableDir, r *indexer.Report) (json.RawMessage, error) {
	raw, err := os.ReadFile(filepath.Join(l.dir, indexer.ReportFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMerge, err)
	}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMerge, filepath.Join(l.dir, indexer.ReportFile), err)
	}
	return raw, nil
}

// concatFeatures streams the features of every livrable's file into one
// FeatureCollection, one feature a line.
func concatFeatures(w io.Writer, livs []livrableDir, name string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(`{"type":"FeatureCollection","features":[`); err != nil {
		return err
	}
	first := true
	for _, l := range livs {
		err := eachFeature(filepath.Join(l.dir, name), func(f json.RawMessage) error {
			if !first {
				if err := bw.WriteByte(','); err != nil {
					return err
				}
			}
			first = false
			if err := bw.WriteByte('\n'); err != nil {
				return err
			}
			_, err := bw.Write(f)
			return err
		})
		if err != nil {
			return err
		}
	}
	if _, err := bw.WriteString("\n]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// eachFeature decodes a FeatureCollection one feature at a time.
func eachFeature(path string, fn func(json.RawMessage) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMerge, err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrMerge, path, why) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad("not a GeoJSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return bad(err.Error())
		}
		if key != "features" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err.Error())
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return bad("features is not an array")
		}
		for dec.More() {
			var feat json.RawMessage
			if err := dec.Decode(&feat); err != nil {
				return bad(err.Error())
			}
			if err := fn(feat); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err.Error())
		}
	}
	return nil
}

// Report is the national report.json.
type Report struct {
	Counts           indexer.Counts   `json:"counts"`
	ProblemsByReason map[string]int   `json:"problemsByReason"`
	Livrables        []LivrableReport `json:"livrables"`
	// Failed lists the livrables whose last scan failed: their last good
	// outputs are the ones merged.
	Failed []string `json:"failedLastAttempt"`
}

// LivrableReport is one livrable's report.json with its id.
type LivrableReport struct {
	ID     string          `json:"id"`
	Report json.RawMessage `json:"report"`
}

func mergeReports(w io.Writer, livs []livrableDir) error {
	r := Report{ProblemsByReason: map[string]int{}, Livrables: []LivrableReport{}, Failed: []string{}}
	for _, l := range livs {
		var one indexer.Report
		raw, err := readReport(l, &one)
		if err != nil {
			return err
		}
		c := &r.Counts
		c.Objects += one.Counts.Objects
		c.Tiles += one.Counts.Tiles
		c.Readable += one.Counts.Readable
		c.Reused += one.Counts.Reused
		c.Problems += one.Counts.Problems
		for reason, n := range one.ProblemsByReason {
			r.ProblemsByReason[reason] += n
		}
		r.Livrables = append(r.Livrables, LivrableReport{ID: l.id, Report: json.RawMessage(raw)})
		if _, err := os.Stat(filepath.Join(l.dir, indexer.FailedReportFile)); err == nil {
			r.Failed = append(r.Failed, l.id)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
