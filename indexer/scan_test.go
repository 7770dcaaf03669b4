package indexer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/local"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkt"
	"github.com/paulmach/orb/planar"
	"github.com/prometheus/client_golang/prometheus"
)

const x0, y0 = 652000.0, 6232200.0

// buildStorage writes a 4 x 3 grid of 200 m tiles with one missing (a
// hole... on the border it is a notch, so the grid is 4 x 3 with the centre
// (1,1) missing), an island, two tiles with the same name in two folders,
// and one tile for each problem reason.
func buildStorage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w := func(key string, tile tilegen.Tile) {
		t.Helper()
		if err := tile.Write(filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
	}
	for c := range 4 {
		for r := range 3 {
			if c == 1 && r == 1 {
				continue
			}
			x, y := x0+float64(c)*200, y0-float64(r)*200
			key := fmt.Sprintf("dalles/%d_%d.jp2", c, r)
			tile := tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: x, Y: y, Creation: []string{"QUALITY=30"}}
			if c == 3 {
				key = fmt.Sprintf("dalles/%d_%d.TIF", c, r)
				tile = tilegen.Tile{EPSG: 2154, X: x, Y: y, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}
			}
			w(key, tile)
		}
	}
	// Island, with the same file name as a grid tile.
	w("ilot/0_0.jp2", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: x0 + 2000, Y: y0, Creation: []string{"QUALITY=30"}})
	raw := map[string]string{"dalles/vide.jp2": "", "dalles/page.jp2": tilegen.HTMLErrorPage, "LISEZMOI.txt": "bonjour"}
	for k, v := range raw {
		if err := tilegen.WriteFile(filepath.Join(dir, k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	w("dalles/sans-crs.tif", tilegen.Tile{X: x0, Y: y0})
	w("dalles/sans-georef.tif", tilegen.Tile{NoGeoTransform: true})
	cut := filepath.Join(dir, "dalles/coupee.tif")
	w("dalles/coupee.tif", tilegen.Tile{EPSG: 2154, Width: 1000, Creation: []string{"COMPRESS=LZW"}})
	fi, _ := os.Stat(cut)
	if err := tilegen.Truncate(cut, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	return dir
}

type featureCollection struct {
	Type     string `json:"type"`
	Features []struct {
		Geometry struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
		Properties map[string]any `json:"properties"`
	} `json:"features"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func scan(t *testing.T, dir string, attrs *livrable.Attributes, reg prometheus.Registerer) (*indexer.Result, error) {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := indexer.Config{Storage: st, Location: dir, Backend: "file", Name: "aude", Attributes: attrs, Concurrency: 4}
	if reg != nil {
		m, err := indexer.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Metrics = m
	}
	return indexer.Scan(context.Background(), cfg)
}

func TestScanEndToEnd(t *testing.T) {
	dir := buildStorage(t)
	focale := 100.0
	attrs := &livrable.Attributes{Projet: "0e5e2c4c-7c4b-4c8e-9f3d-111111111111", Statut: "disponible",
		Dates: map[string]string{"disponible": "2024-03-01", "realise": "2023-11-02"}, Licence: "ouvert_etalab", Focale: &focale,
		Subventions: []string{"feder"}, Acteurs: []string{"SYADEN"}, DiffusionURL: "https://example.org/wms"}
	reg := prometheus.NewRegistry()
	res, err := scan(t, dir, attrs, reg)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}

	var report indexer.Report
	readJSON(t, filepath.Join(out, indexer.ReportFile), &report)
	wantCounts := indexer.Counts{Objects: 18, Tiles: 17, Readable: 12, Problems: 5}
	if report.Counts != wantCounts {
		t.Errorf("counts %+v, want %+v", report.Counts, wantCounts)
	}
	wantReasons := map[string]string{
		"dalles/vide.jp2": "empty", "dalles/page.jp2": "corrupt", "dalles/coupee.tif": "corrupt",
		"dalles/sans-crs.tif": "no_crs", "dalles/sans-georef.tif": "not_georeferenced",
	}
	got := map[string]string{}
	for _, p := range report.Problems {
		got[p.Path] = p.Reason
		if p.Detail == "" {
			t.Errorf("%s: empty detail", p.Path)
		}
	}
	for path, reason := range wantReasons {
		if got[path] != reason {
			t.Errorf("%s: reason %q, want %q", path, got[path], reason)
		}
	}
	// A tile whose header was read before the cut is placed, for maps;
	// a tile without georeferencing cannot be.
	for _, p := range report.Problems {
		if placed := p.Geometry != nil; placed != (p.Path == "dalles/coupee.tif") {
			t.Errorf("%s: placed = %v", p.Path, placed)
		}
	}
	// The header of every non-empty tile fits in one block: one read each
	// for 16 tiles, plus one request per folder listed (root, dalles, ilot).
	if want := int64(3 + 16); report.IO.Requests != want {
		t.Errorf("%d storage requests, want %d", report.IO.Requests, want)
	}
	if math := report.AreaKm2; math != 0.48 {
		t.Errorf("area %v km², want 0.48 (12 tiles of 4 ha)", math)
	}

	var dalles featureCollection
	readJSON(t, filepath.Join(out, indexer.DallesFile), &dalles)
	if len(dalles.Features) != 12 {
		t.Fatalf("%d tiles in dalles.geojson, want 12", len(dalles.Features))
	}
	byPath := map[string]map[string]any{}
	for _, f := range dalles.Features {
		byPath[f.Properties["chemin"].(string)] = f.Properties
	}
	if byPath["dalles/0_0.jp2"] == nil || byPath["ilot/0_0.jp2"] == nil {
		t.Errorf("two tiles named 0_0.jp2 in two folders must both appear: %v", keys(byPath))
	}
	tif := byPath["dalles/3_0.TIF"]
	want := map[string]any{
		"nomImage": "3_0.TIF", "idPCRS": attrs.Projet, "resolution": 50.0, "typeImage": "image/tiff",
		"tailleImage": "400x400", "compression": "JPEG", "epsg": "EPSG:2154", "bandes": "Red(Byte)/Green(Byte)/Blue(Byte)",
		"open": true, "licence": "ouvert_etalab", "focale": 100.0, "dateAcquisition": nil, "dateRecette": nil,
		"descriptionElementsQualite": nil, "producteur": nil, "precisionplanimetriqueCorpsdeRue": nil,
		"precisionplanimetriqueZonesNaturelles": nil,
	}
	for k, v := range want {
		if fmt.Sprint(tif[k]) != fmt.Sprint(v) {
			t.Errorf("dalles/3_0.TIF %s = %v, want %v", k, tif[k], v)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, "dalles/3_0.TIF"))
	if tif["tailleFichier"] != float64(fi.Size()) {
		t.Errorf("tailleFichier %v, want %d", tif["tailleFichier"], fi.Size())
	}
	if byPath["dalles/0_0.jp2"]["compression"] != "LOSSY" || byPath["dalles/0_0.jp2"]["typeImage"] != "image/jp2" {
		t.Errorf("jp2 tile: %v", byPath["dalles/0_0.jp2"])
	}

	var livrables featureCollection
	readJSON(t, filepath.Join(out, indexer.LivrablesFile), &livrables)
	if len(livrables.Features) != 1 {
		t.Fatalf("%d livrables, want 1", len(livrables.Features))
	}
	lf := livrables.Features[0]
	wantL := map[string]any{
		"initiative": attrs.Projet, "calendrier": "01", "dateActualite": "2024-03-01", "nom": "aude",
		"format": nil, "compression": nil, "epsg": "EPSG:2154", "licence": "ouvert_etalab", "focale": 100.0,
		"subventions": []any{"feder"}, "acteurs": []any{"SYADEN"}, "diffusionUrl": "https://example.org/wms",
		"recouvrLat": nil, "diffusion": nil,
	}
	for k, v := range wantL {
		if fmt.Sprint(lf.Properties[k]) != fmt.Sprint(v) {
			t.Errorf("livrable %s = %v, want %v", k, lf.Properties[k], v)
		}
	}
	var taille int64
	for _, f := range dalles.Features {
		taille += int64(f.Properties["tailleFichier"].(float64))
	}
	if lf.Properties["taille"] != float64(taille) {
		t.Errorf("taille %v, want the readable tiles' %d bytes", lf.Properties["taille"], taille)
	}
	var mp orb.MultiPolygon
	if lf.Geometry.Type != "MultiPolygon" || json.Unmarshal(lf.Geometry.Coordinates, &mp) != nil {
		t.Fatalf("livrable geometry %s, want a MultiPolygon", lf.Geometry.Type)
	}
	if len(mp) != 2 || len(mp[0]) != 2 || len(mp[1]) != 1 {
		t.Errorf("want the grid with one hole and the island, got %d polygons", len(mp))
	}
	assertValid(t, mp)
	// Every tile lies inside the outline, to the rounding.
	for _, f := range dalles.Features {
		var poly orb.Polygon
		if err := json.Unmarshal(f.Geometry.Coordinates, &poly); err != nil {
			t.Fatal(err)
		}
		for _, pt := range poly[0] {
			if !planar.MultiPolygonContains(mp, pt) && !nearBoundary(mp, pt) {
				t.Errorf("%s: corner %v outside the livrable outline", f.Properties["chemin"], pt)
			}
		}
	}

	// Metrics count the same as the report.
	if n := counterValue(t, reg, "pcrs_indexer_tiles_total", "", "readable"); n != 12 {
		t.Errorf("readable tiles metric %v, want 12", n)
	}
	// Labels sort by name: backend, op, outcome.
	if n := counterValue(t, reg, "pcrs_indexer_storage_requests_total", "file", "read", "ok"); n != 16 {
		t.Errorf("read requests metric %v, want 16", n)
	}
}

// counterValue reads one counter from reg by its label values.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for i, lp := range m.Label {
				if i < len(labels) && lp.GetValue() != labels[i] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func TestMixedCRS(t *testing.T) {
	dir := t.TempDir()
	tiles := map[string]tilegen.Tile{
		"l93.tif":  {EPSG: 2154, X: 700000, Y: 6600200},
		"cc46.tif": {EPSG: 3946, X: 1700200, Y: 5200200},
	}
	for k, tl := range tiles {
		if err := tl.Write(filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}
	var livrables featureCollection
	readJSON(t, filepath.Join(out, indexer.LivrablesFile), &livrables)
	lf := livrables.Features[0]
	if lf.Properties["epsg"] != nil {
		t.Errorf("epsg %v, want null for two CRSs", lf.Properties["epsg"])
	}
	if lf.Properties["format"] != "image/tiff" {
		t.Errorf("format %v, want image/tiff", lf.Properties["format"])
	}
	var mp orb.MultiPolygon
	switch lf.Geometry.Type {
	case "Polygon":
		var p orb.Polygon
		err = json.Unmarshal(lf.Geometry.Coordinates, &p)
		mp = orb.MultiPolygon{p}
	case "MultiPolygon":
		err = json.Unmarshal(lf.Geometry.Coordinates, &mp)
	default:
		t.Fatalf("geometry %s", lf.Geometry.Type)
	}
	if err != nil || len(mp) == 0 {
		t.Fatalf("no footprint: %v", err)
	}
	assertValid(t, mp)
}

// TestRotatedTile: a tile with a rotated geotransform joins the outline
// through the general union, the others through the exact one.
func TestRotatedTile(t *testing.T) {
	dir := t.TempDir()
	tiles := map[string]tilegen.Tile{
		"a.tif":       {EPSG: 2154, X: 700000, Y: 6600200},
		"b.tif":       {EPSG: 2154, X: 700200, Y: 6600200},
		"rotated.tif": {EPSG: 2154, X: 700400, Y: 6600200, Rotation: -0.01},
	}
	for k, tl := range tiles {
		if err := tl.Write(filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Counts.Readable != 3 {
		t.Fatalf("readable %d, want 3: %+v", res.Report.Counts.Readable, problemsOf(t, res))
	}
	mp := res.Outline.WGS84
	if len(mp) != 1 {
		t.Fatalf("%d polygons, want the rotated tile merged with its neighbours", len(mp))
	}
	assertValid(t, mp)
	// The rotated tile's far corner (pixel 400,400) is in the outline.
	if area := res.Report.AreaKm2; area < 0.08 || area > 0.13 {
		t.Errorf("area %v km², want about 0.12", area)
	}
}

// flaky fails every read, as a storage that went down after listing.
type flaky struct {
	storage.Storage
	reads int
}

func (f *flaky) ReadAt(context.Context, string, []byte, int64) (int, error) {
	f.reads++
	return 0, storage.Transient(errors.New("503 Service Unavailable"))
}

func TestFailedScanKeepsPreviousOutputs(t *testing.T) {
	dir := buildStorage(t)
	out := t.TempDir()
	good, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := indexer.Publish(out, good); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)

	st, _ := local.New(dir)
	down := &flaky{Storage: st}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: down, Location: dir, Name: "aude", Concurrency: 1,
		Retry: storage.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}})
	if !errors.Is(err, indexer.ErrIncomplete) || res == nil {
		t.Fatalf("err = %v, want ErrIncomplete with a result", err)
	}
	// The zero-byte tile needs no read: 16 tiles, 3 attempts each.
	if down.reads != 16*3 {
		t.Errorf("%d reads, want 16 tiles x 3 attempts", down.reads)
	}
	if n := res.Report.ProblemsByReason[indexer.ReasonUnreachable]; n != 16 {
		t.Errorf("%d unreachable, want 16", n)
	}
	if err := indexer.PublishFailed(out, res); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, out)
	for name, content := range before {
		if after[name] != content {
			t.Errorf("%s changed by a failed scan", name)
		}
	}
	if _, ok := after[indexer.FailedReportFile]; !ok {
		t.Error("no report of the failed attempt")
	}

	// A publication that fails half-way (the third file cannot be
	// encoded, after two were written) leaves the previous outputs too.
	good.Report.AreaKm2 = math.NaN()
	if err := indexer.Publish(out, good); err == nil {
		t.Fatal("publishing a report that cannot be encoded succeeded")
	}
	after = snapshot(t, out)
	for name, content := range before {
		if after[name] != content {
			t.Errorf("%s changed by a failed publication", name)
		}
	}
	for name := range after {
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("temporary file %s left behind", name)
		}
	}
}

func TestListingFailure(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = indexer.Scan(context.Background(), indexer.Config{Storage: brokenList{st}, Location: "/x", Retry: storage.RetryPolicy{Attempts: 1}})
	if err == nil || errors.Is(err, indexer.ErrIncomplete) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want the listing error", err)
	}
}

type brokenList struct{ storage.Storage }

func (brokenList) List(context.Context, string) (storage.Page, error) {
	return storage.Page{}, errors.New("permission denied")
}

func TestMaxObjects(t *testing.T) {
	dir := buildStorage(t)
	st, _ := local.New(dir)
	_, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, MaxObjects: 10})
	if !errors.Is(err, indexer.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestCancelledScan(t *testing.T) {
	dir := buildStorage(t)
	st, _ := local.New(dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := indexer.Scan(ctx, indexer.Config{Storage: st, Location: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func assertValid(t *testing.T, mp orb.MultiPolygon) {
	t.Helper()
	if ok, err := footprint.Valid(mp); err != nil || !ok {
		t.Errorf("invalid geometry (%v): %s", err, wkt.MarshalString(mp))
	}
	for _, p := range mp {
		for i, r := range p {
			if (i == 0) != (r.Orientation() == orb.CCW) {
				t.Errorf("ring %d orientation %v breaks RFC 7946", i, r.Orientation())
			}
		}
	}
}

func nearBoundary(mp orb.MultiPolygon, pt orb.Point) bool {
	for _, p := range mp {
		for _, r := range p {
			for i := 0; i+1 < len(r); i++ {
				if planar.DistanceFromSegment(r[i], r[i+1], pt) <= 2e-7 {
					return true
				}
			}
		}
	}
	return false
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestUnusableSidecar: a sidecar the walk lists but cannot use (a link out
// of the storage) makes its tile unreachable, since GDAL in place would
// read it; the storage will never address it, so the scan is not
// incomplete, and the sidecar is reported as skipped.
func TestUnusableSidecar(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	for i, name := range []string{"avec.tif", "sans.tif"} {
		if err := (tilegen.Tile{EPSG: 2154, X: x0 + float64(i)*200, Y: y0}).Write(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	aux := filepath.Join(outside, "avec.tif.aux.xml")
	if err := os.WriteFile(aux, []byte("<PAMDataset></PAMDataset>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(aux, filepath.Join(dir, "avec.tif.aux.xml")); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "x"})
	if err != nil {
		t.Fatalf("a sidecar out of the root failed the scan: %v", err)
	}
	r := res.Report
	r.Problems = problemsOf(t, res)
	if r.Counts.Objects != 3 || r.Counts.Readable != 1 || len(r.Problems) != 1 || r.Problems[0].Path != "avec.tif" || r.Problems[0].Reason != indexer.ReasonUnreachable {
		t.Errorf("counts %+v, problems %+v: want avec.tif unreachable, sans.tif readable", r.Counts, r.Problems)
	}
	if len(r.Skipped) != 1 || r.Skipped[0].Path != "avec.tif.aux.xml" {
		t.Errorf("skipped %+v, want the sidecar", r.Skipped)
	}
}

// TestMisplacedTile: a Lambert-93 tile whose header says EPSG:4326 is set
// aside as misplaced by the union, never published at longitude 770549;
// the report, the dalles and the metrics agree on it.
func TestMisplacedTile(t *testing.T) {
	dir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154, X: x0, Y: y0}).Write(filepath.Join(dir, "bonne.tif")); err != nil {
		t.Fatal(err)
	}
	if err := (tilegen.Tile{EPSG: 4326, X: x0 + 200, Y: y0}).Write(filepath.Join(dir, "egaree.tif")); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := indexer.NewJobMetrics(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "x", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	r.Problems = problemsOf(t, res)
	if r.Counts.Readable != 1 || len(r.Problems) != 1 || r.Problems[0].Path != "egaree.tif" || r.Problems[0].Reason != indexer.ReasonMisplaced || r.ProblemsByReason[indexer.ReasonMisplaced] != 1 {
		t.Fatalf("counts %+v, problems %+v: want egaree.tif misplaced", r.Counts, r.Problems)
	}
	for _, tile := range tilesOf(t, res) {
		if tile.Object.Key == "egaree.tif" && tile.Header != nil {
			t.Error("the misplaced tile keeps its header: it would be published")
		}
	}
	if n := counterValue(t, reg, "pcrs_indexer_tiles_total", "misplaced", "problem"); n != 1 {
		t.Errorf("misplaced tiles metric %v, want 1", n)
	}
	if n := counterValue(t, reg, "pcrs_indexer_tiles_total", "", "readable"); n != 1 {
		t.Errorf("readable tiles metric %v, want 1 (the misplaced tile counted readable?)", n)
	}
}

// tilesOf reads a result's tiles back from disk, sorted by path.
func tilesOf(t testing.TB, res *indexer.Result) []indexer.Tile {
	t.Helper()
	var tiles []indexer.Tile
	if err := res.EachTile(func(tile *indexer.Tile) error { tiles = append(tiles, *tile); return nil }); err != nil {
		t.Fatal(err)
	}
	return tiles
}

// gatedListing lists the tiles of a local folder like S3 (flat pages in
// key order), and holds its last page back until a tile has been read: a
// scan that waited for the whole listing before reading would never end.
type gatedListing struct {
	storage.Storage
	keys     []string
	read     chan struct{}
	readOnce sync.Once
}

func (g *gatedListing) ListsInOrder() bool { return true }

func (g *gatedListing) List(ctx context.Context, cursor string) (storage.Page, error) {
	half := len(g.keys) / 2
	page := storage.Page{}
	from, to := 0, half
	if cursor != "" {
		select {
		case <-g.read:
		case <-ctx.Done():
			return storage.Page{}, fmt.Errorf("no tile was read while the listing waited: %w", ctx.Err())
		}
		from, to = half, len(g.keys)
	} else {
		page.Next = "rest"
	}
	for _, k := range g.keys[from:to] {
		o, err := g.Storage.Stat(ctx, k)
		if err != nil {
			return storage.Page{}, err
		}
		page.Objects = append(page.Objects, o)
	}
	return page, nil
}

func (g *gatedListing) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	g.readOnce.Do(func() { close(g.read) })
	return g.Storage.ReadAt(ctx, key, p, off)
}

func TestReadsWhileListing(t *testing.T) {
	dir := buildStorage(t)
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := storage.Walk(context.Background(), st, func(o storage.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	g := &gatedListing{Storage: st, keys: keys, read: make(chan struct{})}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: g, Location: dir, Name: "x", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	want, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if res.Report.Counts != want.Report.Counts || !reflect.DeepEqual(problemsOf(t, res), problemsOf(t, want)) {
		t.Errorf("read while listing: %+v %+v\nafter a whole listing: %+v %+v", res.Report.Counts, problemsOf(t, res), want.Report.Counts, problemsOf(t, want))
	}
}

// TestNamesNotUTF8: a storage naming its files in Windows-1252 gets its
// names written readably in every output (not U+FFFD): a tile, a problem,
// and a warning whose sentence quotes the name (a copy in another folder).
func TestNamesNotUTF8(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "livr\xe9") // the folder, and the livrable named after it
	good, broken := "r\xe9seau.tif", "cass\xe9.tif"
	for _, name := range []string{good, "copie/" + good} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (tilegen.Tile{EPSG: 2154, X: x0, Y: y0}).Write(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, broken), []byte("II*\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Backend: "file", Name: "livr\xe9"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}
	var dalles, livrables featureCollection
	readJSON(t, filepath.Join(out, indexer.DallesFile), &dalles)
	readJSON(t, filepath.Join(out, indexer.LivrablesFile), &livrables)
	wantStorage := filepath.Join(filepath.Dir(dir), "livré")
	if len(livrables.Features) != 1 || livrables.Features[0].Properties["nom"] != "livré" || livrables.Features[0].Properties["stockage"] != wantStorage {
		t.Errorf("livrables.geojson names the livrable %v on %v, want livré on %s", livrables.Features[0].Properties["nom"], livrables.Features[0].Properties["stockage"], wantStorage)
	}
	if res.Report.Source != wantStorage || dalles.Features[0].Properties["stockage"] != wantStorage {
		t.Errorf("report source %q, dalles stockage %v; want %s", res.Report.Source, dalles.Features[0].Properties["stockage"], wantStorage)
	}
	var chemins []any
	for _, f := range dalles.Features {
		chemins = append(chemins, f.Properties["chemin"])
		if f.Properties["location"] != nil {
			t.Errorf("%v: a location JSON cannot name: %v", f.Properties["chemin"], f.Properties["location"])
		}
	}
	if !slices.Equal(chemins, []any{"copie/réseau.tif", "réseau.tif"}) {
		t.Errorf("chemins %q", chemins)
	}
	r := res.Report
	r.Problems = problemsOf(t, res)
	if len(r.Problems) != 1 || r.Problems[0].Path != "cassé.tif" || r.Problems[0].RawPath != "cass%E9.tif" {
		t.Errorf("problems: %+v, want cassé.tif from the key cass%%E9.tif", r.Problems)
	}
	report, err := os.ReadFile(filepath.Join(out, indexer.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), `"cassé.tif"`) || strings.Contains(string(report), `\ufffd`) || strings.Contains(string(report), "\uFFFD") {
		t.Errorf("report.json does not name cassé.tif readably:\n%s", report)
	}
	if len(r.Warnings) != 1 || r.Warnings[0].Kind != "duplicate" || !strings.Contains(r.Warnings[0].Detail, "réseau.tif") {
		t.Errorf("warnings: %+v", r.Warnings)
	}
}

// problemsOf reads a scan's problems back, as report.json lists them.
func problemsOf(tb testing.TB, res *indexer.Result) []indexer.ProblemEntry {
	tb.Helper()
	out := []indexer.ProblemEntry{}
	if err := res.EachProblem(func(p *indexer.ProblemEntry) error {
		out = append(out, *p)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}
