package indexer

import (
	"bytes"
	"encoding/json"
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
