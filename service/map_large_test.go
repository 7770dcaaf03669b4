package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
)

// grid is a generated delivery: cols × rows tiles of dx × dy degrees from
// (lon0, lat0), tile i at column i%cols, row i/cols. Coordinates are
// rounded to 1e-7° so that what the files hold is exactly what the test
// computes from.
type grid struct {
	lon0, lat0, dx, dy float64
	cols, rows         int
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// box is tile (col, row)'s minX, minY, maxX, maxY.
func (g grid) box(col, row int) [4]float64 {
	return [4]float64{round7(g.lon0 + float64(col)*g.dx), round7(g.lat0 + float64(row)*g.dy),
		round7(g.lon0 + float64(col+1)*g.dx), round7(g.lat0 + float64(row+1)*g.dy)}
}

func (g grid) extent() [4]float64 {
	a, b := g.box(0, 0), g.box(g.cols-1, g.rows-1)
	return [4]float64{a[0], a[1], b[2], b[3]}
}

// within counts the tiles whose box meets rect (edges included, as the
// FlatGeobuf index compares).
func (g grid) within(rect [4]float64) int {
	n := 0
	for row := range g.rows {
		for col := range g.cols {
			b := g.box(col, row)
			if b[0] <= rect[2] && b[2] >= rect[0] && b[1] <= rect[3] && b[3] >= rect[1] {
				n++
			}
		}
	}
	return n
}

func appendRing(buf []byte, b [4]float64) []byte {
	f := func(v float64) []byte { return strconv.AppendFloat(nil, v, 'f', -1, 64) }
	pts := [][2]float64{{b[0], b[1]}, {b[2], b[1]}, {b[2], b[3]}, {b[0], b[3]}, {b[0], b[1]}}
	buf = append(buf, "[["...)
	for i, p := range pts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = append(buf, f(p[0])...)
		buf = append(buf, ',')
		buf = append(buf, f(p[1])...)
		buf = append(buf, ']')
	}
	return append(buf, "]]"...)
}

func polygon(b [4]float64) json.RawMessage {
	return json.RawMessage(append(appendRing([]byte(`{"type":"Polygon","coordinates":`), b), '}'))
}

// dallesGeoJSON writes the grid's tiles as the indexer's dalles.geojson,
// with the same properties (about 1 kB a tile, as a scan writes).
func (g grid) dallesGeoJSON() []byte {
	buf := make([]byte, 0, g.cols*g.rows*1100)
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	for row := range g.rows {
		for col := range g.cols {
			if row > 0 || col > 0 {
				buf = append(buf, ',')
			}
			name := fmt.Sprintf("PCRS_%04d_%04d_5cm_RVB.tif", col, row)
			buf = append(buf, "\n"+`{"type":"Feature","geometry":{"type":"Polygon","coordinates":`...)
			buf = appendRing(buf, g.box(col, row))
			buf = fmt.Appendf(buf, `},"properties":{"nomImage":%q,"idPCRS":"p-large","resolution":5,"typeImage":"image/tiff","tailleFichier":%d,`+
				`"tailleImage":"4000x4000","compression":"JPEG","epsg":"EPSG:2154","bandes":"RVB","open":true,"licence":"ouvert_lo","focale":null,`+
				`"dateAcquisition":"2024-06-01","dateRecette":null,"descriptionElementsQualite":null,"producteur":"Géomètres associés",`+
				`"precisionplanimetriqueCorpsdeRue":null,"precisionplanimetriqueZonesNaturelles":null,"chemin":"dalles/%s","stockage":"https://depot.example.org/pcrs/",`+
				`"location":"/vsicurl/https://depot.example.org/pcrs/dalles/%s"}}`, name, 48_000_000+col+row, name, name)
		}
	}
	return append(buf, "\n]}\n"...)
}

// delivery is a storage's outputs, as a scan publishes them.
type delivery struct {
	grid  grid
	files map[string][]byte
}

// newDelivery generates a delivery's outputs: dalles.geojson and its
// dalles.fgb with its spatial index (ogr2ogr), livrables.geojson
// and a report with problems and warnings of every kind.
func newDelivery(t testing.TB, g grid, report map[string]any) *delivery {
	t.Helper()
	d := &delivery{grid: g, files: map[string][]byte{}}
	d.files[indexer.DallesFile] = g.dallesGeoJSON()
	tmp, err := os.MkdirTemp("", "pcrs-map-fixture-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, indexer.DallesFile)
	if err := os.WriteFile(src, d.files[indexer.DallesFile], 0o600); err != nil {
		t.Fatal(err)
	}
	// GDAL's writer, the format's reference, as a scan's dalles.fgb is
	// meant to be read; TestMapInChromium reads one a scan wrote.
	out, err := exec.Command("ogr2ogr", "-f", "FlatGeobuf", "-lco", "SPATIAL_INDEX=YES", "-nln", "dalles", "-a_srs", "EPSG:4326", "-nlt", "PROMOTE_TO_MULTI",
		filepath.Join(tmp, indexer.DallesFGBFile), src).CombinedOutput()
	if err != nil {
		t.Fatalf("ogr2ogr: %v\n%s", err, out)
	}
	if d.files[indexer.DallesFGBFile], err = os.ReadFile(filepath.Join(tmp, indexer.DallesFGBFile)); err != nil {
		t.Fatal(err)
	}
	e := g.extent()
	d.files[indexer.LivrablesFile] = []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[` +
		string(appendRing(nil, e)) + `]},"properties":{"nom":"Grande livraison","nbDalles":` + strconv.Itoa(g.cols*g.rows) + `,"epsg":"EPSG:2154"}}]}`)
	raw, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	d.files[indexer.ReportFile] = raw
	return d
}

// register records a storage whose last scan published d, as the service
// would have, before the service starts.
func (d *delivery) register(t testing.TB, s *Service, id, name string) {
	t.Helper()
	now := time.Now().UTC()
	n := d.grid.cols * d.grid.rows
	rec := &Record{ID: id, URL: "https://depot.example.org/" + id + "/", Name: name, Interval: 24 * time.Hour,
		Created: now, NextScan: now.Add(24 * time.Hour), LastSuccess: &now, LastAttempt: &now,
		LastCounts: &Counts{Tiles: n + 300, Readable: n, Problems: 300}}
	if err := s.put(rec); err != nil {
		t.Fatal(err)
	}
	dir := s.outDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range d.files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// largeGrid is a 100,000-tile delivery of 200 m tiles (400 × 250, about
// 80 × 50 km).
var largeGrid = grid{lon0: 2.0, lat0: 45.0, dx: 0.0025, dy: 0.0018, cols: 400, rows: 250}

// largeReport has problems of every reason and warnings of every kind,
// as many as a large troubled delivery could.
func largeReport(g grid) map[string]any {
	reasons := []string{"empty", "corrupt", "not_georeferenced", "no_crs", "misplaced", "unreachable"}
	var problems []map[string]any
	byReason := map[string]int{}
	for i := range 300 {
		r := reasons[i%len(reasons)]
		p := map[string]any{"path": fmt.Sprintf("dalles/PROBLEME_%03d.tif", i), "reason": r, "detail": "TIFFReadDirectory: IO error during reading"}
		if r != "not_georeferenced" && r != "no_crs" && r != "unreachable" {
			p["geometry"] = polygon(g.box(i*7%g.cols, i*13%g.rows))
		}
		problems = append(problems, p)
		byReason[r]++
	}
	var warnings []map[string]any
	byKind := map[string]int{"off_grid": 1000, "overlap": 100, "duplicate": 20, "name_mismatch": 50, "resolution": 10, "mixed": 1, "size_outlier": 30, "missing": 200}
	add := func(kind string, i int, w map[string]any) {
		w["kind"] = kind
		if _, ok := w["path"]; !ok {
			w["path"] = fmt.Sprintf("dalles/PCRS_%04d_%04d_5cm_RVB.tif", i%g.cols, i/g.cols%g.rows)
		}
		w["detail"] = "technical detail"
		warnings = append(warnings, w)
	}
	for kind, n := range byKind {
		for i := range n {
			b := g.box((i*37+len(kind))%g.cols, (i*11)%g.rows)
			switch kind {
			case "off_grid":
				add(kind, i, map[string]any{"offset": []float64{0.42, -0.3}, "geometry": polygon(b)})
			case "overlap":
				add(kind, i, map[string]any{"other": "dalles/VOISINE.tif", "areaM2": 1250.5, "geometry": polygon(b)})
			case "duplicate":
				add(kind, i, map[string]any{"other": "doublons/COPIE.tif", "geometry": polygon(b)})
			case "name_mismatch":
				add(kind, i, map[string]any{"expected": "PCRS_0001_0002_5cm_RVB.tif", "geometry": polygon(b)})
			case "resolution", "size_outlier":
				add(kind, i, map[string]any{"ratio": 0.08, "geometry": polygon(b)})
			case "mixed":
				add(kind, i, map[string]any{"path": "", "counts": map[string]int{"image/tiff": 99_990, "image/jp2": 10}})
			case "missing":
				add(kind, i, map[string]any{"path": "", "expected": fmt.Sprintf("PCRS_%04d_%04d_5cm_RVB.tif", i, i), "geometry": polygon(b)})
			}
		}
	}
	n := g.cols * g.rows
	return map[string]any{"source": "https://depot.example.org/pcrs/", "counts": map[string]int{"tiles": n + 300, "readable": n, "problems": 300},
		"problems": problems, "problemsByReason": byReason, "warnings": warnings, "warningsByKind": byKind}
}

var largeFixture struct {
	once sync.Once
	d    *delivery
}

// largeDelivery is the 100,000-tile delivery, generated once per test
// binary.
func largeDelivery(t testing.TB) *delivery {
	largeFixture.once.Do(func() { largeFixture.d = newDelivery(t, largeGrid, largeReport(largeGrid)) })
	if largeFixture.d == nil {
		t.Fatal("the large delivery could not be generated")
	}
	return largeFixture.d
}

// traffic counts what a server sent, per path: requests, ranged ones,
// body bytes (as sent: compressed when compressed).
type traffic struct {
	mu    sync.Mutex
	paths map[string]*pathTraffic
}

type pathTraffic struct {
	Requests, Ranged, Bytes int64
	Statuses                map[int]int
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (tr *traffic) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.paths == nil {
			tr.paths = map[string]*pathTraffic{}
		}
		p := tr.paths[r.URL.Path]
		if p == nil {
			p = &pathTraffic{Statuses: map[int]int{}}
			tr.paths[r.URL.Path] = p
		}
		p.Requests++
		if r.Header.Get("Range") != "" {
			p.Ranged++
		}
		p.Bytes += cw.n
		p.Statuses[cw.status]++
	})
}

// since is the traffic after before, per path.
func (tr *traffic) since(before map[string]pathTraffic) map[string]pathTraffic {
	now := tr.snapshot()
	out := map[string]pathTraffic{}
	for path, p := range now {
		b := before[path]
		d := pathTraffic{Requests: p.Requests - b.Requests, Ranged: p.Ranged - b.Ranged, Bytes: p.Bytes - b.Bytes, Statuses: map[int]int{}}
		for code, n := range p.Statuses {
			if n -= b.Statuses[code]; n != 0 {
				d.Statuses[code] = n
			}
		}
		if d.Requests != 0 {
			out[path] = d
		}
	}
	return out
}

func (tr *traffic) snapshot() map[string]pathTraffic {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]pathTraffic{}
	for path, p := range tr.paths {
		c := *p
		c.Statuses = map[int]int{}
		for k, v := range p.Statuses {
			c.Statuses[k] = v
		}
		out[path] = c
	}
	return out
}

// newTrafficServer serves s's API, counting what it sends.
func newTrafficServer(t testing.TB, tr *traffic, s *Service) *httptest.Server {
	srv := httptest.NewServer(tr.handler(s.Handler()))
	t.Cleanup(srv.Close)
	return srv
}

func totalBytes(m map[string]pathTraffic) (n int64) {
	for _, p := range m {
		n += p.Bytes
	}
	return n
}

// basemapServer is a tile server on 127.0.0.1 answering any tile with a
// small PNG (or failing them all), counting the requests per path.
type basemapServer struct {
	*httptest.Server
	hits     atomic.Int64
	mu       sync.Mutex
	requests []string
}

func newBasemapServer(t testing.TB, fail bool) *basemapServer {
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = 0xee
	}
	img.Set(0, 0, color.Black)
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	b := &basemapServer{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.mu.Lock()
		b.requests = append(b.requests, r.URL.RequestURI())
		b.mu.Unlock()
		if fail {
			http.Error(w, "tile server down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *basemapServer) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func parseBox(t testing.TB, s string) [4]float64 {
	t.Helper()
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		t.Fatalf("not a box: %q", s)
	}
	var b [4]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			t.Fatalf("not a box: %q", s)
		}
		b[i] = v
	}
	return b
}

// TestMapLargeDeliveryByView: a 100,000-tile delivery (dalles.geojson
// of 80 MB, dalles.fgb of 58 MB) loads its first view for a few hundred kB, never
// downloading the tiles whole; zoomed to 14 on a corner, the page holds
// exactly the tiles of its view, read by HTTP ranges from dalles.fgb.
func TestMapLargeDeliveryByView(t *testing.T) {
	d := largeDelivery(t)
	tiles := newBasemapServer(t, false)
	bm, err := ParseBasemap("Plan test=" + tiles.URL + "/plan/{z}/{x}/{y}.png")
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := newService(t, Config{Basemaps: []Basemap{bm}}, func(s *Service) { d.register(t, s, "grande", "Grande livraison") })
	var tr traffic
	srv := newTrafficServer(t, &tr, s)
	t.Logf("dalles.geojson %.1f MB, dalles.fgb %.1f MB, report.json %.1f MB",
		float64(len(d.files[indexer.DallesFile]))/1e6, float64(len(d.files[indexer.DallesFGBFile]))/1e6, float64(len(d.files[indexer.ReportFile]))/1e6)

	b := newBrowser(t)
	b.open(srv.URL + "/")
	// Ready, and a basemap tile drawn: the page asks for them as it
	// becomes ready, not before.
	ds := b.dataset(`d.ready === 'true' && Number(d.basemapTiles) > 0`)
	first := tr.snapshot()
	sent := totalBytes(first)
	t.Logf("first view: zoom %s, %.2f MB sent by the service in %d paths, ready in %s ms, %d basemap tiles asked", ds["zoom"], float64(sent)/1e6, len(first), ds["readyMs"], tiles.hits.Load())
	if sent >= 5e6 {
		t.Errorf("the first view cost %d bytes, want under 5 MB: %+v", sent, first)
	}
	if p, ok := first["/storages/grande/dalles.geojson"]; ok {
		t.Errorf("the page downloaded dalles.geojson whole: %+v", p)
	}
	if z, _ := strconv.Atoi(ds["zoom"]); z >= 14 || ds["tiles"] != "0" {
		t.Errorf("first view at zoom %s with %s tiles: want the whole delivery, below zoom 14, no tile", ds["zoom"], ds["tiles"])
	}
	if ds["footprints"] != "1" || ds["problems"] != "150" || ds["warnings"] != "1410" {
		t.Errorf("drawn: %s footprints, %s problems, %s warnings; want 1, 150, 1410", ds["footprints"], ds["problems"], ds["warnings"])
	}
	if tiles.hits.Load() == 0 {
		t.Error("the basemap was never asked for a tile")
	}

	// Zoomed to 14 on the delivery's south-west corner.
	e := d.grid.extent()
	before := tr.snapshot()
	b.eval(fmt.Sprintf(`location.hash = '#14/%f/%f'`, e[1], e[0]), nil)
	ds = b.dataset(`d.zoom === '14' && Number(d.view) > ` + ds["view"])
	step := tr.since(before)
	view := parseBox(t, ds["viewBbox"])
	want := d.grid.within(view)
	got, _ := strconv.Atoi(ds["tiles"])
	t.Logf("zoom 14 on the corner: %d tiles in the view of %d, %d bytes in %+v, update %s ms", got, d.grid.cols*d.grid.rows, totalBytes(step), step, ds["updateMs"])
	if got != want || want == 0 || want > 2000 {
		t.Errorf("%d tiles loaded, want the %d of the view %v", got, want, view)
	}
	if loaded := parseBox(t, ds["tilesBbox"]); loaded[0] < view[0]-d.grid.dx || loaded[1] < view[1]-d.grid.dy || loaded[2] > view[2]+d.grid.dx || loaded[3] > view[3]+d.grid.dy {
		t.Errorf("tiles loaded over %v, outside the view %v", loaded, view)
	}
	fgb := step["/storages/grande/dalles.fgb"]
	if fgb.Requests == 0 || fgb.Ranged != fgb.Requests || fgb.Statuses[http.StatusPartialContent] != int(fgb.Requests) {
		t.Errorf("dalles.fgb: %+v, want ranged requests only, answered 206", fgb)
	}
	if fgb.Bytes > int64(len(d.files[indexer.DallesFGBFile]))/10 || totalBytes(step) > 2e6 {
		t.Errorf("the zoom step fetched %d bytes of dalles.fgb (%d in all), want a small part of its %d", fgb.Bytes, totalBytes(step), len(d.files[indexer.DallesFGBFile]))
	}
	if _, ok := step["/storages/grande/dalles.geojson"]; ok {
		t.Error("the zoom step downloaded dalles.geojson")
	}

	// Panned away, the tiles that left the view are dropped.
	b.eval(fmt.Sprintf(`location.hash = '#14/%f/%f'`, e[1]+(view[3]-view[1]), e[0]+(view[2]-view[0])), nil)
	ds = b.dataset(`Number(d.view) > ` + ds["view"])
	view = parseBox(t, ds["viewBbox"])
	if got, _ := strconv.Atoi(ds["tiles"]); got != d.grid.within(view) {
		t.Errorf("after a pan: %d tiles loaded, want the %d of the view", got, d.grid.within(view))
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page reported: %q", p)
	}
}
