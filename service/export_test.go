package service

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hostileNames are tile names a spreadsheet could take for formulas, or
// that a naive CSV writer would split.
var hostileNames = []string{
	`=HYPERLINK("http://evil.example/","clic").tif`, "+cmd|' /C calc'!A0.tif", "-2+3.tif", "@SUM(A1:A9).tif",
	"\tTAB.tif", "\rCR.tif", "dalles/a;b \"c\"\nd.tif",
}

// TestProblemsCSV: the problems report for a French spreadsheet: a byte
// order mark, ";" between cells, CRLF; the header; one line per problem
// and per warning, in the report's order, each explained in French;
// names that look like formulas defused with a quote (OWASP), names with
// ";", quotes and newlines kept whole; positions as decimal-comma
// numbers (a negative longitude stays a number) in WGS84 and in the
// tiles' CRS; text/csv, an attachment with a file name, gzip on demand.
func TestProblemsCSV(t *testing.T) {
	// West of Greenwich: longitudes are negative.
	g := grid{lon0: -1.7, lat0: 48.1, dx: 0.0025, dy: 0.0018, cols: 4, rows: 3}
	var problems []map[string]any
	for i, name := range hostileNames {
		problems = append(problems, map[string]any{"path": name, "reason": "corrupt", "detail": "=1+1", "geometry": polygon(g.box(i%4, i%3))})
	}
	problems = append(problems, map[string]any{"path": "a/nocrs.tif", "reason": "no_crs"}, map[string]any{"path": "a/x.tif", "reason": "some_future_reason"})
	warnings := []map[string]any{
		{"path": "d/a.tif", "kind": "off_grid", "offset": []float64{0.5, -1.25}, "geometry": polygon(g.box(0, 0))},
		{"path": "d/c.tif", "kind": "overlap", "other": "d/e.tif", "areaM2": 1200, "geometry": polygon(g.box(1, 0))},
		{"kind": "mixed", "counts": map[string]int{"image/tiff": 11, "image/jp2": 1}},
		{"path": "d/PCRS_0912_6250.tif", "kind": "missing", "geometry": polygon(g.box(3, 2))},
	}
	d := newDelivery(t, g, map[string]any{"problems": problems, "warnings": warnings, "epsg": map[string]int{"EPSG:2154": 12}})
	_, api, _ := newService(t, Config{}, func(s *Service) { d.register(t, s, "csv", "Tableur") })

	resp, raw := get(t, api.URL+"/storages/csv/problemes.csv", map[string]string{"Accept-Encoding": "identity"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="problemes-csv.csv"` {
		t.Fatalf("%d, Content-Type %q, Content-Disposition %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	if !bytes.HasPrefix(raw, []byte("\xEF\xBB\xBFdalle;nature;code;explication;")) || !bytes.HasSuffix(raw, []byte("\r\n")) || bytes.Count(raw, []byte("\r\n")) < len(problems)+len(warnings)+1 {
		t.Fatalf("not a BOM, ';' and CRLF: %.200q", raw)
	}
	rows := readCSV(t, raw)
	wantHeader := []string{"dalle", "nature", "code", "explication", "longitude", "latitude", "x", "y", "crs", "dalles voisines attendues", "détail technique"}
	if !slices.Equal(rows[0], wantHeader) {
		t.Errorf("header %q, want %q", rows[0], wantHeader)
	}
	if len(rows) != 1+len(problems)+len(warnings) {
		t.Fatalf("%d lines, want 1 + %d problems + %d warnings", len(rows), len(problems), len(warnings))
	}
	for i, name := range hostileNames {
		r := rows[1+i]
		want := name
		if strings.ContainsAny(name[:1], "=+-@\t\r") {
			want = "'" + name
		}
		// A CRLF file has no place for a lone carriage return: Go's
		// writer leaves it out, after the quote that defuses the cell.
		want = strings.ReplaceAll(want, "\r", "")
		if r[0] != want || r[1] != "à corriger" || r[2] != "corrupt" || r[3] != "fichier illisible ou tronqué : renvoyez le fichier complet" || r[10] != "'=1+1" {
			t.Errorf("line %d: %q, want the name %q, defused", i+1, r, want)
		}
		b := g.box(i%4, i%3)
		lon, lat := parseFrNum(t, r[4]), parseFrNum(t, r[5])
		if math.Abs(lon-(b[0]+b[2])/2) > 1e-7 || math.Abs(lat-(b[1]+b[3])/2) > 1e-7 || !strings.HasPrefix(r[4], "-1,") {
			t.Errorf("line %d: centre %q %q, want %v %v (a negative number, not text)", i+1, r[4], r[5], (b[0]+b[2])/2, (b[1]+b[3])/2)
		}
		// Lambert-93 around Rennes.
		x, y := parseFrNum(t, r[6]), parseFrNum(t, r[7])
		if r[8] != "EPSG:2154" || x < 300_000 || x > 400_000 || y < 6_780_000 || y > 6_820_000 || !regexp.MustCompile(`^\d+(,\d)?$`).MatchString(r[6]) {
			t.Errorf("line %d: x %q, y %q, crs %q: want Lambert-93 near Rennes, to the decimetre", i+1, r[6], r[7], r[8])
		}
	}
	byPath := map[string][]string{}
	for _, r := range rows[1:] {
		byPath[r[0]] = r
	}
	for path, want := range map[string][]string{
		"a/nocrs.tif":          {"à corriger", "no_crs", "aucun système de coordonnées : ajoutez le .prj ou réécrivez le GeoTIFF avec EPSG:2154", "", "", "", "", ""},
		"a/x.tif":              {"à corriger", "some_future_reason", "problème non identifié : voyez le rapport", "", "", "", "", ""},
		"d/a.tif":              {"à vérifier", "off_grid", "hors de la grille de la livraison (décalée de 0,5 m en X et -1,25 m en Y) : vérifiez son géoréférencement"},
		"d/c.tif":              {"à vérifier", "overlap", "recouvre 1\u202f200 m² de d/e.tif : l'une des deux est mal placée"},
		"":                     {"à vérifier", "mixed", "la livraison mélange image/tiff (11), image/jp2 (1) : harmonisez-la", "", "", "", "", ""},
		"d/PCRS_0912_6250.tif": {"à vérifier", "missing", "dalle manquante : d/PCRS_0912_6250.tif : livrez-la"},
	} {
		if r := byPath[path]; r == nil || !slices.Equal(r[1:1+len(want)], want) {
			t.Errorf("%q: %q, want %q", path, r, want)
		}
	}

	resp, zipped := get(t, api.URL+"/storages/csv/problemes.csv", map[string]string{"Accept-Encoding": "gzip"})
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if resp.Header.Get("Content-Encoding") != "gzip" || err != nil {
		t.Fatalf("gzip: %q %v", resp.Header.Get("Content-Encoding"), err)
	}
	if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, raw) {
		t.Error("the gzip copy differs")
	}
	if code, _ := call(t, "GET", api.URL+"/storages/nope/problemes.csv", "", ""); code != http.StatusNotFound {
		t.Errorf("an unknown storage: %d, want 404", code)
	}

	// The JSON twin: the same rows, filtered and capped, all counted.
	_, raw = call(t, "GET", api.URL+"/storages/csv/problems?code=corrupt&code=missing&limit=2", "", "")
	var got struct {
		Items  []row
		Counts map[string]int
	}
	if err := json.Unmarshal(raw, &got); err != nil || len(got.Items) != 3 || got.Counts["corrupt"] != len(hostileNames) || got.Counts["missing"] != 1 ||
		got.Items[0].Path != hostileNames[0] || got.Items[2].Code != "missing" || got.Items[2].EPSG != 2154 {
		t.Errorf("problems JSON: %v %.600s", err, raw)
	}
	if code, _ := call(t, "GET", api.URL+"/storages/csv/problems?limit=-1", "", ""); code != http.StatusBadRequest {
		t.Errorf("limit=-1: %d, want 400", code)
	}
}

func parseFrNum(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil {
		t.Errorf("%q is not a number with a decimal comma", s)
	}
	return v
}

// generatedReport is a report.json of n warnings, written as it is read
// (nothing held): what a scan of a large, troubled delivery publishes.
type generatedReport struct {
	n, next int
	buf     bytes.Buffer
	size    int64
}

func (g *generatedReport) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && g.next <= g.n {
		switch {
		case g.next == 0:
			g.buf.WriteString(`{"source":"x","counts":{"tiles":1},"problems":[],"warnings":[`)
		case g.next == g.n:
			g.buf.WriteString(`],"epsg":{"EPSG:2154":1}}`)
		}
		if g.next < g.n {
			if g.next > 0 {
				g.buf.WriteByte(',')
			}
			lon, lat := 2+float64(g.next%400)*0.0025, 45+float64(g.next/400%250)*0.0018
			fmt.Fprintf(&g.buf, `{"path":"dalles/PCRS_%07d.tif","kind":"off_grid","detail":"off the grid by 0.42, -0.3 m","offset":[0.42,-0.3],"geometry":{"type":"Polygon","coordinates":[[[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f]]]}}`,
				g.next, lon, lat, lon+0.0025, lat, lon+0.0025, lat+0.0018, lon, lat+0.0018, lon, lat)
		}
		g.next++
	}
	n, err := g.buf.Read(p)
	g.size += int64(n)
	return n, err
}

func (g *generatedReport) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, fmt.Errorf("only a rewind")
	}
	g.next, g.size = 0, 0
	g.buf.Reset()
	return 0, nil
}

// peakHeap is a writer that samples the live heap (after a collection)
// every sampleEvery bytes written through it.
type peakHeap struct {
	written, nextSample uint64
	peak                uint64
}

const sampleEvery = 1 << 20

func (p *peakHeap) Write(b []byte) (int, error) {
	p.written += uint64(len(b))
	if p.written >= p.nextSample {
		p.nextSample += sampleEvery
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		p.peak = max(p.peak, m.HeapAlloc)
	}
	return len(b), nil
}

// TestProblemsCSVBoundedMemory: the CSV is written as report.json is
// read: a report of 20,000 warnings (about 5.5 MB) goes through with a
// live heap that stays well under the report's size (reading it whole
// first grows it by more than the report).
func TestProblemsCSVBoundedMemory(t *testing.T) {
	const n = 20_000
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	report := &generatedReport{n: n}
	out := &peakHeap{}
	if err := writeProblemsCSV(out, report); err != nil {
		t.Fatal(err)
	}
	grew := float64(out.peak-min(out.peak, base)) / (1 << 20)
	t.Logf("report %.1f MB, CSV %.1f MB, live heap at most %.1f MiB over the start", float64(report.size)/1e6, float64(out.written)/1e6, grew)
	if report.size < 5e6 || out.written < 4e6 {
		t.Fatalf("the report (%d bytes) or the CSV (%d) is smaller than meant", report.size, out.written)
	}
	if grew > 3 {
		t.Errorf("the live heap grew %.1f MiB writing the CSV, want under 3: the report is held in memory", grew)
	}
}
