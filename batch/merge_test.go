package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/indexer"
)

const emptyCollection = `{"type":"FeatureCollection","features":[]}`

// writeLivrable writes a livrable's published folder under shard, with
// report as its report.json.
func writeLivrable(t *testing.T, shard, id, report string) string {
	t.Helper()
	dir := filepath.Join(shard, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{indexer.ReportFile: report, indexer.DallesFile: emptyCollection, indexer.LivrablesFile: emptyCollection} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeBrokenReport writes into dir the report.json of a delivery whose n
// tiles are all problems, indented as the indexer writes it, one problem in
// four placed by its header, and returns its size.
func writeBrokenReport(t *testing.T, dir string, n int) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, indexer.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<16)
	fmt.Fprintf(bw, `{
  "source": "s3://pcrs/livraison/",
  "startedAt": "2025-03-01T08:00:00Z",
  "finishedAt": "2025-03-01T09:00:00Z",
  "durationSeconds": 3600.5,
  "counts": {
    "objects": %d,
    "tiles": %d,
    "readable": 0,
    "reused": 0,
    "problems": %d
  },
  "io": {
    "requests": %d,
    "bytes": 0,
    "retries": 0,
    "requestsPerTile": 1,
    "bytesPerTile": 0
  },
  "problems": [`, n, n, n, n)
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		if i%4 == 0 {
			x := 2 + float64(i%1000)/1000
			fmt.Fprintf(bw, `
    {
      "path": "dalles/%07d.tif",
      "reason": "corrupt",
      "detail": "the transfer stopped at byte %d of %d",
      "geometry": {
        "type": "Polygon",
        "coordinates": [[[%g, 48.1], [%g, 48.1], [%g, 48.2], [%g, 48.2], [%g, 48.1]]]
      }
    }`, i, 1000+i, 50000+i, x, x+0.001, x+0.001, x, x)
		} else {
			fmt.Fprintf(bw, `
    {
      "path": "dalles/%07d.tif",
      "reason": "empty",
      "detail": "0 bytes"
    }`, i)
		}
	}
	fmt.Fprintf(bw, `
  ],
  "problemsByReason": {
    "corrupt": %d,
    "empty": %d
  },
  "areaKm2": 0,
  "epsg": {},
  "warnings": [],
  "warningsByKind": {}
}
`, (n+3)/4, n-(n+3)/4)
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// liveHeapWriter counts what is written and, every `every` bytes, collects
// the garbage and keeps the largest live heap seen: the memory a streamed
// write holds while it writes, without timing anything.
type liveHeapWriter struct {
	every, written, next int64
	peak                 uint64
}

func (w *liveHeapWriter) Write(p []byte) (int, error) {
	w.written += int64(len(p))
	if w.written >= w.next {
		w.next = w.written + w.every
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.peak = max(w.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

// TestMergeMemoryBounded: a livrable whose report.json lists 200,000
// problems (about 30 MB) is merged without holding it: the national report
// allocates a fraction of it in all, the problems layer keeps a fraction
// of it alive while it writes.
func TestMergeMemoryBounded(t *testing.T) {
	const n = 200_000
	shard := t.TempDir()
	dir := filepath.Join(shard, "broken")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	size := writeBrokenReport(t, dir, n)
	livs := []livrableDir{{"broken", dir}}

	t.Run("report", func(t *testing.T) {
		out, err := os.Create(filepath.Join(t.TempDir(), indexer.ReportFile))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err = mergeReports(out, livs)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("report.json of %d bytes: the national report allocated %d bytes (%d allocations)", size, alloc, after.Mallocs-before.Mallocs)
		if alloc > uint64(size)/4 {
			t.Errorf("merging a report.json of %d bytes allocated %d bytes, want under a quarter of it", size, alloc)
		}
		got, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		head := fmt.Sprintf(`{"counts":{"objects":%d,"tiles":%d,"readable":0,"reused":0,"problems":%d},"problemsByReason":{"corrupt":%d,"empty":%d},"livrables":[{"id":"broken","report":{"source":`,
			n, n, n, n/4, n-n/4)
		// Each problem copied, compacted (TestMergeReportAsBefore
		// compares every byte of smaller ones).
		copied := bytes.Count(got, []byte(`{"path":"dalles/`))
		if !bytes.HasPrefix(got, []byte(head)) || !bytes.HasSuffix(got, []byte(`"warningsByKind":{}}}],"failedLastAttempt":[]}`+"\n")) || copied != n {
			t.Errorf("national report of %d bytes, %d problems copied, want %d between %s and its end", len(got), copied, n, head)
		}
	})

	t.Run("problems", func(t *testing.T) {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w := &liveHeapWriter{every: 1 << 22}
		if err := mergeProblems(w, livs); err != nil {
			t.Fatal(err)
		}
		held := int64(w.peak) - int64(before.HeapAlloc)
		t.Logf("report.json of %d bytes: the problems layer (%d bytes) held at most %d bytes more than before", size, w.written, held)
		if w.written < size/2 {
			t.Fatalf("the problems layer is %d bytes, too little for %d problems", w.written, n)
		}
		if held > size/4 {
			t.Errorf("writing the problems of a report.json of %d bytes held %d bytes, want under a quarter of it", size, held)
		}
	})
}

// mergedTheOldWay is the national report.json, and the problems layer, as
// merge wrote them when it read every report whole: what the streamed merge
// must give, byte for byte.
func mergedTheOldWay(t *testing.T, livs []livrableDir) (report, problems []byte) {
	t.Helper()
	r := Report{ProblemsByReason: map[string]int{}, Livrables: []LivrableReport{}, Failed: []string{}}
	var all []indexer.ProblemEntry
	var of []string
	for _, l := range livs {
		raw, err := os.ReadFile(filepath.Join(l.dir, indexer.ReportFile))
		if err != nil {
			t.Fatal(err)
		}
		var one indexer.Report
		if err := json.Unmarshal(raw, &one); err != nil {
			t.Fatal(err)
		}
		c := &r.Counts
		c.Objects, c.Tiles, c.Readable, c.Reused, c.Problems = c.Objects+one.Counts.Objects, c.Tiles+one.Counts.Tiles,
			c.Readable+one.Counts.Readable, c.Reused+one.Counts.Reused, c.Problems+one.Counts.Problems
		for reason, n := range one.ProblemsByReason {
			r.ProblemsByReason[reason] += n
		}
		r.Livrables = append(r.Livrables, LivrableReport{ID: l.id, Report: raw})
		if _, err := os.Stat(filepath.Join(l.dir, indexer.FailedReportFile)); err == nil {
			r.Failed = append(r.Failed, l.id)
		}
		for _, p := range one.Problems {
			all, of = append(all, p), append(of, l.id)
		}
	}
	var rep, prob bytes.Buffer
	enc := json.NewEncoder(&rep)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	err := indexer.WriteProblems(&prob, func(fn func(p *indexer.ProblemEntry, livrable string) error) error {
		for i := range all {
			if err := fn(&all[i], of[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Bytes(), prob.Bytes()
}

// TestMergeReportAsBefore: the streamed national report.json and problems
// layer are byte for byte what merge wrote when it held every report, and
// each livrable's report in it is its report.json compacted, whatever its
// spacing, escapes or numbers.
func TestMergeReportAsBefore(t *testing.T) {
	shard, failedShard := t.TempDir(), t.TempDir()
	writeLivrable(t, shard, "aaaa", `{"counts":{"objects":1,"tiles":1,"readable":1}}`)
	writeLivrable(t, shard, "a&b<c>é", "{}")
	writeLivrable(t, shard, "cccc", "\t{ \"source\" : \"s3://b/x y/\\u00e9\\\"<&>\\\\\" ,\r\n"+
		"  \"counts\": {\"objects\": 4, \"tiles\": 3, \"readable\": 1, \"reused\": 1, \"problems\": 2},\n"+
		"  \"problems\": [\n    {\"path\": \"a { b ] c.tif\", \"rawPath\": \"a%E9.tif\", \"reason\": \"empty\", \"detail\": \"\u2028 \\t\"},\n"+
		"    {\"path\": \"z.tif\", \"reason\": \"corrupt\", \"detail\": \"cut\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[1e0, -0.5], [2.50, 3], [1, 1E-2], [1e0, -0.5]]]}}\n  ],\n"+
		"  \"problemsByReason\": {\"empty\": 1, \"corrupt\": 1},\n  \"epsg\": {\"2154\": 3},\n"+
		"  \"warnings\": [ ], \"warningsByKind\": { }, \"skipped\": [{\"path\": \"loop/\", \"why\": null, \"ok\": [true, false]}]\n}\n\n")
	dir := writeLivrable(t, failedShard, "dddd", "{\n  \"counts\": {\n    \"objects\": 2,\n    \"tiles\": 2,\n    \"readable\": 1,\n    \"problems\": 1\n  },\n"+
		"  \"problems\": [\n    {\n      \"path\": \"vide.jp2\",\n      \"reason\": \"empty\",\n      \"detail\": \"0 bytes\"\n    }\n  ],\n"+
		"  \"problemsByReason\": {\n    \"empty\": 1,\n    \"no_crs\": 0\n  },\n  \"problems2\": null\n}\n")
	if err := os.WriteFile(filepath.Join(dir, indexer.FailedReportFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	shards := []string{shard, failedShard}
	livs, err := findLivrables(shards)
	if err != nil {
		t.Fatal(err)
	}
	wantReport, wantProblems := mergedTheOldWay(t, livs)

	out := filepath.Join(t.TempDir(), "national")
	if err := Merge(out, shards, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, indexer.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantReport) {
		t.Errorf("national report.json:\n%s\nwant, as before:\n%s", got, wantReport)
	}
	var r Report
	if err := json.Unmarshal(got, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Livrables) != len(livs) {
		t.Fatalf("%d livrable reports, want %d", len(r.Livrables), len(livs))
	}
	for i, l := range livs {
		raw, err := os.ReadFile(filepath.Join(l.dir, indexer.ReportFile))
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		if r.Livrables[i].ID != l.id || !bytes.Equal(r.Livrables[i].Report, compact.Bytes()) {
			t.Errorf("livrable %d: %s %s, want %s %s", i, r.Livrables[i].ID, r.Livrables[i].Report, l.id, compact.Bytes())
		}
	}

	var problems bytes.Buffer
	if err := mergeProblems(&problems, livs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(problems.Bytes(), wantProblems) {
		t.Errorf("problems layer:\n%s\nwant, as before:\n%s", problems.Bytes(), wantProblems)
	}
}

// TestMergeRefusesBadReport: a report.json that is not one JSON object,
// wherever the fault stands in it (past the problems included), fails the
// merge naming its livrable and file, and publishes no national report.
func TestMergeRefusesBadReport(t *testing.T) {
	valid := `{"counts": {"objects": 1, "problems": 1}, "problems": [{"path": "a.tif", "reason": "empty", "detail": ""}], "epsg": {"2154": 1}, "warnings": []}`
	for _, c := range []struct{ name, report string }{
		{"empty", ""},
		{"truncated in problems", valid[:strings.Index(valid, `"reason"`)]},
		{"truncated at the end", valid[:len(valid)-1]},
		{"bad element", strings.Replace(valid, `"detail": ""`, `"detail": "" "x": 1`, 1)},
		{"bad past problems", strings.Replace(valid, `"warnings": []`, `"warnings": [,]`, 1)},
		{"bad key", strings.Replace(valid, `"epsg": {"2154": 1}`, `"epsg": {2154: 1}`, 1)},
		{"unclosed string", strings.Replace(valid, `"warnings": []}`, `"warnings": ["]}`, 1)},
		{"trailing data", valid + " {}"},
		{"trailing garbage", valid + " x"},
		{"two objects", valid + valid},
		{"array", "[" + valid + "]"},
		{"problems not an array", `{"problems": {}}`},
		{"counts not an object", `{"counts": [1]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			shard := t.TempDir()
			writeLivrable(t, shard, "good", valid)
			dir := writeLivrable(t, shard, "zbad", c.report)
			out := filepath.Join(t.TempDir(), "national")
			err := Merge(out, []string{shard}, nil)
			path := filepath.Join(dir, indexer.ReportFile)
			if !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), "livrable zbad") || !strings.Contains(err.Error(), path) {
				t.Errorf("merge: %v, want %v naming livrable zbad and %s", err, ErrMerge, path)
			}
			if _, err := os.Stat(filepath.Join(out, indexer.ReportFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("national report.json published beside a bad report (%v)", err)
			}
			if json.Valid([]byte(c.report)) {
				return
			}
			// Merge meets the fault in the problems first; the copy into
			// the national report must not let invalid JSON through either.
			livs, err := findLivrables([]string{shard})
			if err != nil {
				t.Fatal(err)
			}
			if err := mergeReports(io.Discard, livs); !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), "livrable zbad") {
				t.Errorf("national report: %v, want %v naming livrable zbad", err, ErrMerge)
			}
		})
	}
}
