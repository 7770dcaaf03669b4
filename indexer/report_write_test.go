package indexer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// TestReportStreamsAsEncoded: report.json written with its problems given
// one at a time is byte for byte what encoding the whole report gives,
// with no problem, one, and several (an HTML-looking detail, a placed
// tile, a name needing escapes).
func TestReportStreamsAsEncoded(t *testing.T) {
	problems := []ProblemEntry{
		{Path: "dalles/a.tif", Reason: ReasonCorrupt, Detail: "<b>&\"quoted\"</b>", Geometry: polygonGeometry(orb.Polygon{{{1, 2}, {3, 2}, {3, 4}, {1, 2}}})},
		{Path: "dalles/r\u00e9seau.tif", RawPath: "dalles/r%E9seau.tif", Reason: ReasonUnreachable, Detail: "503"},
		{Path: "z.jp2", Reason: ReasonEmpty},
	}
	for n := range len(problems) + 1 {
		r := Report{Source: "s3://b/p", StartedAt: time.Unix(0, 0).UTC(), Counts: Counts{Problems: n}, ProblemsByReason: map[string]int{"corrupt": 1},
			EPSG: map[string]int{"EPSG:2154": 3}, Warnings: []WarningEntry{}, Skipped: []SkippedEntry{{Path: "x", Detail: "y"}}}
		r.Problems = problems[:n]
		var want bytes.Buffer
		if err := indented(&want, "").Encode(&r); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		streamed := r
		streamed.Problems = nil
		if err := writeReport(&got, &streamed, func(fn func(p *ProblemEntry) error) error {
			for i := range n {
				if err := fn(&problems[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%d problems streamed:\n%s\nencoded whole:\n%s", n, got.Bytes(), want.Bytes())
		}
		var back Report
		if err := json.Unmarshal(got.Bytes(), &back); err != nil || len(back.Problems) != n {
			t.Errorf("%d problems streamed read back as %d: %v", n, len(back.Problems), err)
		}
	}
}

// TestShrinkCheckReadsCountsOnly: before publishing, the outputs' report
// is read for its counts; a report listing 50,000 placed problems (34
// MB) must not be decoded whole for them (that allocated 4 bytes per byte
// of report), and the verdict stays the same.
func TestShrinkCheckReadsCountsOnly(t *testing.T) {
	dir := t.TempDir()
	const problems = 50_000
	prev := Report{Counts: Counts{Readable: 1000, Problems: problems}, FinishedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f, err := os.Create(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	p := ProblemEntry{Reason: ReasonCorrupt, Detail: "TIFF block 0,0 of band 1 declares 5934 bytes at byte 472, ending at byte 6406, but the object holds 6306 bytes: transfer cut short",
		Geometry: polygonGeometry(orb.Polygon{{{2.1, 48.1}, {2.2, 48.1}, {2.2, 48.2}, {2.1, 48.2}, {2.1, 48.1}}})}
	err = writeReport(f, &prev, func(fn func(p *ProblemEntry) error) error {
		for i := range problems {
			p.Path = fmt.Sprintf("dalles/%07d.tif", i)
			if err := fn(&p); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = checkShrink(dir, &Result{Report: Report{Counts: Counts{Readable: 10}}})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrShrunk) {
		t.Errorf("10 readable tiles against 1,000: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("reading the counts of a %d-byte report allocated %d bytes", st.Size(), alloc)
	}
	if err := checkShrink(dir, &Result{Report: Report{Counts: Counts{Readable: 500}}}); err != nil {
		t.Errorf("500 readable tiles against 1,000: %v", err)
	}
	if got := PublishedAt(dir); !got.Equal(prev.FinishedAt) {
		t.Errorf("published at %v, want %v", got, prev.FinishedAt)
	}
}

// TestReportFieldAfterProblems: a field after the problems is still found
// (they are skipped a token at a time); a missing one or a report that is
// not an object is an error.
func TestReportFieldAfterProblems(t *testing.T) {
	var epsg map[string]int
	if err := reportField(strings.NewReader(`{"problems": [{"a": [1, {"b": "}"}]}, []], "epsg": {"EPSG:2154": 3}}`), "epsg", &epsg); err != nil || epsg["EPSG:2154"] != 3 {
		t.Errorf("epsg after the problems: %v, %v", epsg, err)
	}
	var c Counts
	if err := reportField(strings.NewReader(`{"problems": []}`), "counts", &c); !errors.Is(err, errNoField) {
		t.Errorf("no counts: %v", err)
	}
	if err := reportField(strings.NewReader(`[{"counts": {}}]`), "counts", &c); err == nil {
		t.Error("an array read as a report")
	}
}
