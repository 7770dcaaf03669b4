package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/storage/local"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The planted delivery: a 6 x 6 grid of 200 m GeoTIFF tiles at 50 cm in
// Lambert-93, named by their upper-left corner in hectometres, with one
// of each defect an owner receives from a contractor.
const (
	plantX0, plantY0 = 651000.0, 6226000.0 // the grid's lower-left corner
	plantSize        = 6
)

func plantName(c, r int) string {
	return fmt.Sprintf("PCRS_%04d_%05d.tif", int(plantX0)/100+2*c, int(plantY0)/100+2*(r+1))
}

func plantDelivery(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	healthy := tilegen.Tile{EPSG: 2154, Width: 400, Texture: "noise", Creation: []string{"COMPRESS=JPEG", "TILED=YES"}}
	type planted struct {
		path string
		tile tilegen.Tile
	}
	var files []planted
	missing := map[[2]int]bool{{2, 2}: true, {3, 2}: true, {2, 3}: true}
	for c := range plantSize {
		for r := range plantSize {
			if missing[[2]int{c, r}] {
				continue
			}
			tile := healthy
			tile.X, tile.Y = plantX0+200*float64(c), plantY0+200*float64(r+1)
			path := "dalles/" + plantName(c, r)
			switch [2]int{c, r} {
			case [2]int{4, 4}: // shifted 50 m east, onto its neighbour
				tile.X += 50
			case [2]int{0, 0}: // 1 m pixels among 50 cm ones, the same 200 m
				tile.Width = 200
			case [2]int{5, 5}: // a JPEG 2000 among GeoTIFFs
				tile.Driver, tile.Creation = "JP2OpenJPEG", []string{"QUALITY=20"}
				path = strings.TrimSuffix(path, ".tif") + ".jp2"
			case [2]int{1, 4}: // a blank tile: tiny beside its peers
				tile.Texture = "uniform"
			case [2]int{5, 0}: // delivered under its neighbour's name
				path = "dalles/livraison2/" + plantName(4, 0)
			case [2]int{1, 1}: // delivered twice
				files = append(files, planted{"doublons/" + plantName(1, 1), tile})
			}
			files = append(files, planted{path, tile})
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	for i, f := range files {
		wg.Go(func() { errs[i] = f.tile.Write(filepath.Join(dir, filepath.FromSlash(f.path))) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Each planted defect gets its warning, and nothing else is warned about:
// every warning below is explained by one defect.
func TestPlantedDefects(t *testing.T) {
	dir := plantDelivery(t)
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "planted"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	r := res.Report
	if r.Counts.Readable != 34 || r.Counts.Problems != 0 {
		t.Fatalf("counts %+v, problems %+v: want 34 readable tiles", r.Counts, problemsOf(t, res))
	}
	var got []string
	for _, w := range r.Warnings {
		got = append(got, fmt.Sprintf("%s %s %s", w.Kind, w.Path, w.Other))
		if w.Detail == "" {
			t.Errorf("%s %s: no detail", w.Kind, w.Path)
		}
	}
	d := func(c, r int) string { return "dalles/" + plantName(c, r) }
	want := []string{
		// The shifted tile is off the grid, and covers part of its east
		// neighbour.
		"off_grid " + d(4, 4) + " ",
		"overlap " + d(4, 4) + " " + d(5, 4),
		// The copy is blamed, not the first delivery.
		"duplicate doublons/" + plantName(1, 1) + " " + d(1, 1),
		// The tile named after its neighbour.
		"name_mismatch dalles/livraison2/" + plantName(4, 0) + " ",
		"resolution " + d(0, 0) + " ",
		// One JPEG 2000 makes the delivery mix formats and compressions.
		"mixed  ",
		"mixed  ",
		"size_outlier " + d(1, 4) + " ",
		// The three holes, named as the delivery's pattern predicts.
		"missing dalles/" + plantName(2, 2) + " ",
		"missing dalles/" + plantName(2, 3) + " ",
		"missing dalles/" + plantName(3, 2) + " ",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for kind, n := range map[string]int{"off_grid": 1, "overlap": 1, "duplicate": 1, "name_mismatch": 1, "resolution": 1, "mixed": 2, "size_outlier": 1, "missing": 3} {
		if r.WarningsByKind[kind] != n {
			t.Errorf("warningsByKind[%s] = %d, want %d", kind, r.WarningsByKind[kind], n)
		}
	}
	for _, w := range r.Warnings {
		switch w.Kind {
		case "overlap":
			if w.AreaM2 < 9999 || w.AreaM2 > 10001 {
				t.Errorf("overlap of %v m², want 50 m x 200 m", w.AreaM2)
			}
		case "off_grid":
			if w.Offset == nil || w.Offset[0] != 50 || w.Offset[1] != 0 {
				t.Errorf("off_grid offset %v, want [50 0]", w.Offset)
			}
		case "name_mismatch":
			if w.Expected != plantName(5, 0) {
				t.Errorf("name_mismatch expects %q, want %q", w.Expected, plantName(5, 0))
			}
		}
		if w.Kind != "mixed" && w.Geometry == nil {
			t.Errorf("%s %s: no geometry to draw", w.Kind, w.Path)
		}
		// report.json also places it in the tiles' own CRS.
		var placed struct {
			EPSG int         `json:"epsg"`
			Box  *[4]float64 `json:"box"`
		}
		raw, _ := json.Marshal(w)
		_ = json.Unmarshal(raw, &placed)
		if w.Kind != "mixed" && (placed.EPSG != 2154 || placed.Box == nil || placed.Box[2] <= placed.Box[0] || placed.Box[3] <= placed.Box[1]) {
			t.Errorf("%s %s: report.json places it at EPSG:%d %v", w.Kind, w.Path, placed.EPSG, placed.Box)
		}
		if w.Kind == "missing" && placed.Box != nil && (placed.Box[2]-placed.Box[0] != 200 || placed.Box[3]-placed.Box[1] != 200) {
			t.Errorf("missing cell %s: box %v, want a 200 m cell", w.Path, placed.Box)
		}
	}
	// A warned tile stays in the dalles.
	if r.Counts.Readable != len(tilesOf(t, res)) {
		t.Errorf("%d readable, %d tiles", r.Counts.Readable, len(tilesOf(t, res)))
	}
}

// The last successful scan's warnings are exposed by kind, per storage,
// and go with a deleted storage.
func TestWarningsMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := indexer.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.ScanFinished("abc", indexer.OutcomeSuccess, now, now, &indexer.Report{WarningsByKind: map[string]int{"missing": 3, "overlap": 0}})
	want := `
# HELP pcrs_indexer_warnings What the storage's last successful scan found wrong with its readable tiles as a delivery, by kind (off_grid, overlap, duplicate, name_mismatch, resolution, mixed, size_outlier, missing).
# TYPE pcrs_indexer_warnings gauge
pcrs_indexer_warnings{kind="missing",storage="abc"} 3
pcrs_indexer_warnings{kind="overlap",storage="abc"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pcrs_indexer_warnings"); err != nil {
		t.Error(err)
	}
	m.Forget("abc")
	if n, err := testutil.GatherAndCount(reg, "pcrs_indexer_warnings"); err != nil || n != 0 {
		t.Errorf("%d warning series after the storage was deleted (%v)", n, err)
	}
}
