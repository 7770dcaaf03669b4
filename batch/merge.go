package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/jsonstream"
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
// livrables.geojson (one feature per livrable), dalles.geojson (every tile)
// and report.json (totals and each livrable's report), streamed: memory
// grows neither with the tiles nor with the problems the livrables'
// reports list. Each livrable's footprint was unioned once by its shard:
// one storage is one livrable, so the merge never re-reads a tile nor
// unions again.
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
// with its livrable: one problem in memory at a time, as a broken delivery
// lists every tile.
func mergeProblems(w io.Writer, livs []livrableDir) error {
	return indexer.WriteProblems(w, func(fn func(p *indexer.ProblemEntry, livrable string) error) error {
		var p indexer.ProblemEntry
		for _, l := range livs {
			// The writer's error is no fault of the livrable's report.
			var werr error
			err := readReport(l, nil, func(dec *json.Decoder, key string) (bool, error) {
				if key != "problems" {
					return false, nil
				}
				return true, eachElement(dec, key, func() error {
					p = indexer.ProblemEntry{} // Decode keeps the fields a problem leaves out
					if err := dec.Decode(&p); err != nil {
						return err
					}
					werr = fn(&p, l.id)
					return werr
				})
			})
			if werr != nil {
				return werr
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
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

// Report is the national report.json, which mergeReports writes field by
// field, in this order.
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

// mergeReports writes the national Report. A livrable's report lists
// every problem tile (hundreds of MB for a broken delivery), so none is
// held: a first read sums the totals, which come first, then each report
// is copied from its file into the livrables list.
func mergeReports(w io.Writer, livs []livrableDir) error {
	sum := Report{ProblemsByReason: map[string]int{}, Failed: []string{}}
	each := make([]totals, len(livs))
	for i, l := range livs {
		t, err := readTotals(l, nil)
		if err != nil {
			return err
		}
		each[i] = t
		c := &sum.Counts
		c.Objects += t.counts.Objects
		c.Tiles += t.counts.Tiles
		c.Readable += t.counts.Readable
		c.Reused += t.counts.Reused
		c.Problems += t.counts.Problems
		for reason, n := range t.byReason {
			sum.ProblemsByReason[reason] += n
		}
		if _, err := os.Stat(filepath.Join(l.dir, indexer.FailedReportFile)); err == nil {
			sum.Failed = append(sum.Failed, l.id)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// put writes s, then v as the encoder of the whole Report did (keys
	// sorted, no HTML escaping), which the output must stay byte for byte.
	put := func(s string, v any) error {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			return err
		}
		bw.WriteString(s)
		_, err := bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		return err
	}
	if err := put(`{"counts":`, sum.Counts); err != nil {
		return err
	}
	if err := put(`,"problemsByReason":`, sum.ProblemsByReason); err != nil {
		return err
	}
	bw.WriteString(`,"livrables":[`)
	for i, l := range livs {
		sep := `{"id":`
		if i > 0 {
			sep = `,{"id":`
		}
		if err := put(sep, l.id); err != nil {
			return err
		}
		bw.WriteString(`,"report":`)
		c := compactor{w: bw}
		t, err := readTotals(l, &c)
		if c.err != nil {
			return c.err
		}
		if err != nil {
			return err
		}
		// Copied from a second opening: a report replaced in between
		// would contradict the totals already written.
		if !t.equal(each[i]) {
			return fmt.Errorf("%w: livrable %s: %s changed during the merge", ErrMerge, l.id, filepath.Join(l.dir, indexer.ReportFile))
		}
		bw.WriteByte('}')
	}
	if err := put(`],"failedLastAttempt":`, sum.Failed); err != nil {
		return err
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// totals are what the national report sums of a livrable's report.
type totals struct {
	counts   indexer.Counts
	byReason map[string]int
}

func (t totals) equal(o totals) bool {
	return t.counts == o.counts && maps.Equal(t.byReason, o.byReason)
}

// readTotals reads the totals of the report of l, passing its bytes to
// tee when not nil.
func readTotals(l livrableDir, tee io.Writer) (totals, error) {
	var t totals
	err := readReport(l, tee, func(dec *json.Decoder, key string) (bool, error) {
		switch key {
		case "counts":
			return true, dec.Decode(&t.counts)
		case "problemsByReason":
			return true, dec.Decode(&t.byReason)
		}
		return false, nil
	})
	return t, err
}

// readReport reads the report.json of l with walkReport, passing its bytes
// to tee when not nil.
func readReport(l livrableDir, tee io.Writer, member func(dec *json.Decoder, key string) (bool, error)) error {
	path := filepath.Join(l.dir, indexer.ReportFile)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: livrable %s: %w", ErrMerge, l.id, err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<16)
	if tee != nil {
		r = io.TeeReader(r, tee)
	}
	if err := walkReport(r, member); err != nil {
		return fmt.Errorf("%w: livrable %s: %s: %w", ErrMerge, l.id, path, err)
	}
	return nil
}

// walkReport reads from r one JSON object, member by member: member decodes
// the value of key from dec and says so, or leaves it to be skipped. It
// fails unless r holds exactly one valid JSON object, read to its end, so
// that whatever copied r's bytes copied one JSON document.
func walkReport(r io.Reader, member func(dec *json.Decoder, key string) (bool, error)) error {
	dec := json.NewDecoder(r)
	err := func() error {
		if t, err := dec.Token(); err != nil {
			return err
		} else if t != json.Delim('{') {
			return errors.New("not a JSON object")
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := key.(string) // Token checks that a key is a string
			if done, err := member(dec, k); err != nil {
				return err
			} else if !done {
				if err := jsonstream.Skip(dec); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if t, err := dec.Token(); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("%v after the object", t)
			}
			return err
		}
		return nil
	}()
	if err == io.EOF {
		// Token's, at the end of a report cut short.
		err = io.ErrUnexpectedEOF
	}
	return err
}

// eachElement calls fn, which decodes from dec, for each element of the
// array dec is at, the value of key; null is an empty array, as for
// json.Unmarshal.
func eachElement(dec *json.Decoder, key string, fn func() error) error {
	t, err := dec.Token()
	if err != nil || t == nil {
		return err
	}
	if t != json.Delim('[') {
		return fmt.Errorf("%s is not an array", key)
	}
	for dec.More() {
		if err := fn(); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// compactor writes the JSON it is given without the whitespace between
// tokens, as encoding/json compacts a json.RawMessage: the national report
// has always held each livrable's indented report compacted.
type compactor struct {
	w        io.Writer
	inString bool
	escaped  bool
	err      error // the writer's, kept apart from the report's errors
}

func (c *compactor) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	start := 0
	for i, b := range p {
		switch {
		case c.escaped:
			c.escaped = false
		case c.inString:
			if b == '\\' {
				c.escaped = true
			} else if b == '"' {
				c.inString = false
			}
		case b == '"':
			c.inString = true
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			if start < i {
				if _, c.err = c.w.Write(p[start:i]); c.err != nil {
					return 0, c.err
				}
			}
			start = i + 1
		}
	}
	if start < len(p) {
		_, c.err = c.w.Write(p[start:])
	}
	return len(p), c.err
}
