package service

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// holeTiles writes a delivery with a hole: a 3 × 3 grid of 200 m GDAL
// tiles named after their upper-left corner in hectometres
// (dalles/PCRS_7000_66002.tif…), the centre one missing, and one more tile
// east of the grid cut short (a problem the map places). It returns the
// folder.
func holeTiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for row := range 3 {
		for col := range 3 {
			if row == 1 && col == 1 {
				continue // the hole
			}
			x, y := 700000+200*col, 6600200+200*row
			tile := tilegen.Tile{EPSG: 2154, X: float64(x), Y: float64(y)}
			if err := tile.Write(filepath.Join(dir, "dalles", fmt.Sprintf("PCRS_%04d_%05d.tif", x/100, y/100))); err != nil {
				t.Fatal(err)
			}
		}
	}
	cut := filepath.Join(dir, cutTile)
	if err := (tilegen.Tile{EPSG: 2154, X: 700600, Y: 6600200, Width: 1000, Creation: []string{"COMPRESS=LZW"}}).Write(cut); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cut); err != nil || tilegen.Truncate(cut, fi.Size()/2) != nil {
		t.Fatal("cannot truncate the fixture")
	}
	return dir
}

// The hole fixture's problem tile and its missing tile (a box from
// 700200, 6600200 to 700400, 6600400 in Lambert-93).
const (
	cutTile  = "dalles/PCRS_7006_66002.tif"
	holeName = "dalles/PCRS_7002_66004.tif"
)

// holeDelivery runs a service (admin token, private networks allowed)
// with the hole fixture registered as "Aude 2024" behind a web server,
// scanned once; setup runs before the service starts. It returns the
// API, the storage's id and the tiles' folder.
func holeDelivery(t *testing.T, setup ...func(*Service)) (*httptest.Server, string, string) {
	t.Helper()
	dir := holeTiles(t)
	files := httptest.NewServer(http.StripPrefix("/tiles/", http.FileServer(http.Dir(dir))))
	t.Cleanup(files.Close)
	api, id := deliveryAt(t, files.URL+"/tiles/", setup...)
	return api, id, dir
}

// deliveryAt is holeDelivery over the listing at location.
func deliveryAt(t *testing.T, location string, setup ...func(*Service)) (*httptest.Server, string) {
	t.Helper()
	ended := make(chan string, 4)
	setup = append(setup, func(s *Service) { s.hooks.ended = func(id string) { ended <- id } })
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true}, setup...)
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "name": "Aude 2024"}`, location))
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	select {
	case id := <-ended:
		if id != created.ID {
			t.Fatalf("scan of %s ended, want %s", id, created.ID)
		}
	case <-time.After(time.Minute):
		t.Fatal("no scan in a minute")
	}
	return api, created.ID
}

// reportBox is the WGS84 box of the first entry of report.json's list
// (problems or warnings) whose path is path, from the report itself.
func reportBox(t *testing.T, report []byte, list, path string) [4]float64 {
	t.Helper()
	var rep map[string]json.RawMessage
	var entries []struct {
		Path     string
		Geometry struct{ Coordinates any }
	}
	if err := json.Unmarshal(report, &rep); err != nil || json.Unmarshal(rep[list], &entries) != nil {
		t.Fatalf("report.json: %v", err)
	}
	for _, e := range entries {
		if e.Path == path {
			if pts := points(e.Geometry.Coordinates); len(pts) > 0 {
				return bounds(pts)
			}
		}
	}
	t.Fatalf("report.json's %s have no %s placed: %.500s", list, path, report)
	return [4]float64{}
}

// TestDeliveryPageInChromium opens a delivery's page by its address in
// headless Chromium, after a real scan of a delivery with a hole: that
// storage alone (another is registered), in French; the hole listed with
// its expected name, its box in Lambert-93 and the four tiles expected
// around it, a click zooming the map onto it; the CSV report linked, each
// of its sentences said on the page too. No download link without the
// share key; with it, one per problem tile, which downloads the tile,
// while its token opens no other file.
func TestDeliveryPageInChromium(t *testing.T) {
	chromium(t)
	other := newDelivery(t, grid{lon0: 2.3, lat0: 43.2, dx: 0.0025, dy: 0.0018, cols: 2, rows: 2}, map[string]any{})
	api, id, dir := holeDelivery(t, func(s *Service) { other.register(t, s, "autre", "Autre livraison") })
	_, report := call(t, "GET", api.URL+"/storages/"+id+"/report", "", "")

	dom, b := loadPage(t, api.URL+"/livraisons/"+id, `d.ready === 'true'`)
	for attr, want := range map[string]string{"storage": id, "footprints": "1", "problems": "1", "warnings": "1", "holes": "1", "download-links": ""} {
		if got := dataAttr(dom, attr); got != want {
			t.Errorf("data-%s=%q, want %q", attr, got, want)
		}
	}
	var text string
	b.eval(`document.getElementById('panel').innerText`, &text)
	for _, want := range []string{
		"Aude 2024", "en attente", "8 dalles lisibles sur 9, 1 à corriger",
		"1 dalle à corriger", "fichier illisible ou tronqué : renvoyez le fichier complet (1)\n" + cutTile,
		"Dalles manquantes (1)", "dalle manquante : " + holeName + " : livrez-la",
		"X de 700\u202f200 à 700\u202f400 m, Y de 6\u202f600\u202f200 à 6\u202f600\u202f400 m (EPSG:2154)",
		"dalles voisines attendues : à l'ouest dalles/PCRS_7000_66004.tif, à l'est dalles/PCRS_7004_66004.tif, au sud dalles/PCRS_7002_66002.tif, au nord dalles/PCRS_7002_66006.tif",
		"Télécharger le rapport (CSV, pour un tableur)", "Carte de toutes les livraisons",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(text, "Autre livraison") || strings.Contains(text, "télécharger") {
		t.Errorf("the page shows another storage or a download link without the share key:\n%s", text)
	}
	checkNoMachineCode(t, dom)
	var csvHref string
	b.eval(`document.querySelector('a.csv').getAttribute('href')`, &csvHref)
	if csvHref != "/storages/"+id+"/problemes.csv" {
		t.Errorf("CSV link %q", csvHref)
	}
	// What the CSV says of each row, the page says too.
	_, raw := call(t, "GET", api.URL+csvHref, "", "")
	rows := readCSV(t, raw)
	if len(rows) != 3 {
		t.Fatalf("CSV: %d lines, want a header, the problem and the hole: %q", len(rows), rows)
	}
	for _, r := range rows[1:] {
		if !strings.Contains(text, r[3]) {
			t.Errorf("the CSV says %q, the page does not", r[3])
		}
	}

	// A click on the hole zooms the map onto it.
	hole := reportBox(t, report, "warnings", holeName)
	ds := b.dataset(`true`)
	b.eval(`(() => { document.querySelector('section.missing li.hole').click(); return true; })()`, nil)
	ds = b.dataset(`Number(d.view) > ` + ds["view"])
	if v := parseBox(t, ds["viewBbox"]); ds["zoom"] != "18" || v[0] > hole[0] || v[1] > hole[1] || v[2] < hole[2] || v[3] < hole[3] {
		t.Errorf("after a click on the hole: zoom %s, view %v, want zoom 18 around %v", ds["zoom"], v, hole)
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page reported: %q", p)
	}

	// Shared: a download link per problem tile, for that tile only.
	code, raw := call(t, "POST", api.URL+"/storages/"+id+"/share", adminToken, "")
	var share struct{ Key, Path, URL string }
	if err := json.Unmarshal(raw, &share); code != http.StatusOK || err != nil || share.URL != api.URL+share.Path {
		t.Fatalf("share: %d %s", code, raw)
	}
	b.open(api.URL + share.Path)
	ds = b.dataset(`d.ready === 'true'`)
	if ds["downloadLinks"] != "1" || ds["shared"] != "true" {
		t.Fatalf("shared page: %s download links (want 1), shared %q", ds["downloadLinks"], ds["shared"])
	}
	var href string
	b.eval(`document.querySelector('a.download').getAttribute('href')`, &href)
	want, err := os.ReadFile(filepath.Join(dir, cutTile))
	if err != nil {
		t.Fatal(err)
	}
	if code, got := call(t, "GET", api.URL+href, "", ""); code != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("the download link %s: %d, %d bytes, want the tile's %d", href, code, len(got), len(want))
	}
	elsewhere := strings.Replace(href, "/files/"+cutTile+"?", "/files/dalles/PCRS_7000_66002.tif?", 1)
	if code, got := call(t, "GET", api.URL+elsewhere, "", ""); elsewhere == href || code != http.StatusForbidden || !strings.Contains(string(got), CodeDownloadTokenInvalid) {
		t.Errorf("the link's token for another file: %d %s, want 403", code, got)
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the shared page reported: %q", p)
	}
}

// readCSV parses a problems report: a byte order mark, then ";"-separated
// lines ended by CRLF.
func readCSV(t *testing.T, raw []byte) [][]string {
	t.Helper()
	body, ok := bytes.CutPrefix(raw, []byte("\uFEFF"))
	if !ok {
		t.Fatalf("no byte order mark: %.40q", raw)
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	return rows
}

// TestCSVSaysWhatThePageSays: for a report with every reason and kind,
// numbers that round on a tie, fields absent or odd, each sentence of the
// CSV report is on the delivery's page, word for word: the service
// (Go) and the page (JavaScript) explain alike.
func TestCSVSaysWhatThePageSays(t *testing.T) {
	chromium(t)
	g := grid{lon0: 2.3, lat0: 43.2, dx: 0.0025, dy: 0.0018, cols: 4, rows: 3}
	box := func(c, r int) json.RawMessage { return polygon(g.box(c, r)) }
	var problems []map[string]any
	for _, r := range []string{"empty", "corrupt", "not_georeferenced", "no_crs", "misplaced", "unreachable", "some_future_reason"} {
		problems = append(problems, map[string]any{"path": "p/" + r + ".tif", "reason": r})
	}
	d := newDelivery(t, g, map[string]any{
		"problems": problems,
		"warnings": []map[string]any{
			{"path": "d/a.tif", "kind": "off_grid", "offset": []float64{0.5, -1.25}, "geometry": box(0, 0)},
			{"path": "d/b.tif", "kind": "off_grid", "offset": []float64{-0.001, 1.005}},
			{"path": "d/b2.tif", "kind": "off_grid", "offset": "nope"},
			{"path": "d/c.tif", "kind": "overlap", "other": "d/e.tif", "areaM2": 1200.5, "geometry": box(1, 0)},
			{"path": "d/c2.tif", "kind": "overlap"},
			{"path": "d/dup.tif", "kind": "duplicate", "other": "d/orig.tif"},
			{"path": "d/f.tif", "kind": "name_mismatch", "expected": "PCRS_1_2.tif", "geometry": box(1, 1)},
			{"path": "d/f2.tif", "kind": "name_mismatch"},
			{"path": "d/g.tif", "kind": "size_outlier", "ratio": 0.01005, "geometry": box(2, 1)},
			{"path": "d/h.tif", "kind": "resolution", "geometry": box(2, 2)},
			{"kind": "mixed", "counts": json.RawMessage(`{"image/jp2": 1, "LZW": 5, "image/tiff": 5, "2154": 5, "10": 5}`)},
			{"kind": "mixed", "counts": map[string]int{}},
			{"kind": "missing", "expected": "PCRS_0912_6250.tif", "geometry": box(3, 2)},
			{"kind": "missing", "path": "d/PCRS_0913_6250.tif"},
			{"kind": "missing"},
			{"kind": "some_future_kind", "path": "d/z.tif"},
		},
	})
	_, api, _ := newService(t, Config{}, func(s *Service) { d.register(t, s, "w", "Toutes sortes") })
	b := newBrowser(t)
	b.open(api.URL + "/livraisons/w")
	b.dataset(`d.ready === 'true'`)
	var text string
	b.eval(`document.getElementById('panel').innerText`, &text)
	_, raw := call(t, "GET", api.URL+"/storages/w/problemes.csv", "", "")
	rows := readCSV(t, raw)
	if len(rows) != 1+7+16 {
		t.Fatalf("%d lines, want 24", len(rows))
	}
	for _, r := range rows[1:] {
		if !strings.Contains(text, r[3]) {
			t.Errorf("the CSV says %q (%s), the page does not", r[3], r[2])
		}
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page reported: %q", p)
	}
	if t.Failed() {
		t.Logf("the page says:\n%s", text)
	}
}
