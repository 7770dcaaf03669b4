package service

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// loadPage loads url in headless Chromium, waits until the page's data
// attributes satisfy cond (a ready flag: no sleep), and returns its DOM
// then, with the browser for more.
func loadPage(t *testing.T, url, cond string) (string, *browser) {
	t.Helper()
	b := newBrowser(t)
	b.open(url)
	b.dataset(cond)
	var dom string
	b.eval(`document.documentElement.outerHTML`, &dom)
	return dom, b
}

// dataAttr is a data attribute of <body> in a dumped DOM.
func dataAttr(dom, name string) string {
	m := regexp.MustCompile(`<body[^>]*\sdata-` + regexp.QuoteMeta(name) + `="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// visibleText is what a person reads: the DOM without tags, attributes,
// scripts and styles.
func visibleText(dom string) string {
	dom = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`).ReplaceAllString(dom, " ")
	return html.UnescapeString(regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(dom, " "))
}

// The API's machine codes: none is ever shown as text.
var machineCodes = []string{"idle", "queued", "scanning", "failed", "empty", "corrupt", "not_georeferenced", "no_crs", "misplaced", "unreachable",
	"off_grid", "overlap", "duplicate", "name_mismatch", "resolution", "mixed", "size_outlier", "missing"}

func checkNoMachineCode(t *testing.T, dom string) {
	t.Helper()
	text := visibleText(dom)
	for _, code := range machineCodes {
		if regexp.MustCompile(`(?i)(^|[^\pL_])` + code + `($|[^\pL_])`).MatchString(text) {
			t.Errorf("the page shows the machine code %q as text", code)
		}
	}
}

// TestMapInChromium loads the map page in headless Chromium against a
// running service that scanned a real (GDAL-written) storage, with two
// basemaps served by a local tile server in the Géoplateforme's WMTS KVP
// form, and checks what it drew: the footprint, the storage in the panel
// in French, the tiles (the page zooms to the livrable, past the tile
// zoom, and reads them from dalles.fgb), the scale bar, and tiles asked
// of the first basemap only, at the page's zoom.
func TestMapInChromium(t *testing.T) {
	chromium(t)
	tiles, dir := tileServer(t, "")
	// The same tile delivered twice: a warning the map draws and explains.
	copyFile(t, filepath.Join(dir, "dalles", "t0.tif"), filepath.Join(dir, "doublons", "t0.tif"))
	base := newBasemapServer(t, false)
	var basemaps []Basemap
	for _, v := range []string{
		"Plan test=" + base.URL + "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=PLAN&STYLE=normal&FORMAT=image/png&TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}",
		"Photos test=" + base.URL + "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=PHOTOS&STYLE=normal&FORMAT=image/jpeg&TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}",
	} {
		b, err := ParseBasemap(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Attribution = IGNAttribution // as the IGN's own layers have it
		basemaps = append(basemaps, b)
	}
	s, _, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, Basemaps: basemaps})
	var tr traffic
	api := newTrafficServer(t, &tr, s)
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "name": "Aude <b>2024</b>"}`, tiles.URL+"/tiles/"))
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, raw = call(t, "GET", api.URL+"/storages/"+created.ID, "", "")
		if strings.Contains(string(raw), `"lastSuccessfulScan":"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful scan: %s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The scan published dalles.fgb, served with ranges.
	req, _ := http.NewRequest("GET", api.URL+"/storages/"+created.ID+"/dalles.fgb", nil)
	req.Header.Set("Range", "bytes=0-7")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		magic, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || string(magic[:3]) != "fgb" {
			t.Fatalf("dalles.fgb, first 8 bytes: %d %q", resp.StatusCode, magic)
		}
	}
	// The page's img-src is exactly the basemaps' host.
	resp, err := http.Get(api.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "; img-src 'self' data: "+base.URL+";") {
		t.Errorf("Content-Security-Policy %q, want img-src 'self' data: %s", csp, base.URL)
	}

	before := tr.snapshot()
	// Ready, and a basemap tile received.
	dom, b := loadPage(t, api.URL+"/", `d.ready === 'true' && Number(d.basemapTiles) > 0`)
	page := tr.since(before)
	// dalles.fgb, as the scan wrote it, is read by the page's FlatGeobuf
	// reader: every tile drawn, no read error.
	for attr, want := range map[string]string{"ready": "true", "footprints": "1", "tiles": "4", "tile-errors": "0", "problems": "1", "warnings": "1", "basemaps": "2"} {
		if got := dataAttr(dom, attr); got != want {
			t.Errorf("data-%s=%q, want %q", attr, got, want)
		}
	}
	if !strings.Contains(dom, `data-storage="`+created.ID+`"`) {
		t.Error("the panel does not list the storage")
	}
	if p := page["/storages/"+created.ID+"/dalles.fgb"]; p.Requests == 0 || p.Ranged != p.Requests {
		t.Errorf("dalles.fgb: %+v, want ranged requests", p)
	}
	if _, ok := page["/storages/"+created.ID+"/dalles.geojson"]; ok {
		t.Error("the page downloaded dalles.geojson")
	}

	// The basemap: tiles of the first layer, at the page's zoom; none of
	// the second until chosen.
	zoom := dataAttr(dom, "zoom")
	var plan, photos int
	for _, r := range base.seen() {
		switch {
		case strings.Contains(r, "LAYER=PLAN") && strings.Contains(r, "TILEMATRIX="+zoom+"&"):
			plan++
		case strings.Contains(r, "LAYER=PHOTOS"):
			photos++
		}
	}
	if plan == 0 || photos != 0 || dataAttr(dom, "basemap-tiles") == "" {
		t.Errorf("basemap: %d tiles of the plan at zoom %s, %d of the photos (want some, none), %s loaded; asked %q", plan, zoom, photos, dataAttr(dom, "basemap-tiles"), base.seen())
	}
	if !strings.Contains(dom, "leaflet-control-layers") || !strings.Contains(visibleText(dom), "Photos test") {
		t.Error("no layer switcher offering the second basemap")
	}
	if !strings.Contains(visibleText(dom), IGNAttribution) {
		t.Errorf("the attribution %q is not shown", IGNAttribution)
	}
	// A metric scale bar.
	if m := regexp.MustCompile(`class="leaflet-control-scale-line"[^>]*>([^<]*)<`).FindStringSubmatch(dom); m == nil || !regexp.MustCompile(`^\d+ k?m$`).MatchString(m[1]) {
		t.Errorf("no metric scale bar: %q", m)
	}

	// What the owner reads is French, with what to do; the API's codes
	// are not shown as text.
	text := visibleText(dom)
	for _, want := range []string{
		"en attente",
		"fichier illisible ou tronqué : renvoyez le fichier complet (1)", "coupee.tif",
		"doublons/t0.tif : même emprise que dalles/t0.tif : dalle livrée deux fois ?",
		"1 point à vérifier (dalles conservées)", "doublons (1)", "1 dalle à corriger",
		"4 dalles lisibles sur 5, 1 à corriger",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the panel lacks %q", want)
		}
	}
	checkNoMachineCode(t, dom)
	// Names are text, never markup.
	if strings.Contains(dom, "<b>2024</b>") || !strings.Contains(dom, "Aude &lt;b&gt;2024&lt;/b&gt;") {
		t.Error("a storage name was rendered as HTML")
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page reported: %q", p)
	}
}

// TestMapWithoutBasemap: with --basemap none the page draws on a plain
// background, asks no tile of anyone, and its img-src names no host; with
// a tile server failing every tile, the page works all the same and says
// the background is unavailable.
func TestMapWithoutBasemap(t *testing.T) {
	chromium(t)
	d := newDelivery(t, grid{lon0: 2.3, lat0: 43.2, dx: 0.0025, dy: 0.0018, cols: 4, rows: 3}, map[string]any{
		// An older report: no warnings, no geometry, an unknown reason.
		"problems": []map[string]any{{"path": "dalles/vide.tif", "reason": "empty", "detail": "zero bytes"}, {"path": "dalles/x.tif", "reason": "some_future_reason"}},
	})
	down := newBasemapServer(t, true)
	failing, err := ParseBasemap("Plan=" + down.URL + "/{z}/{x}/{y}.png")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		basemaps []Basemap
		imgSrc   string
	}{
		{"none", nil, "img-src 'self' data:;"},
		{"failing", []Basemap{failing}, "img-src 'self' data: " + down.URL + ";"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, api, _ := newService(t, Config{Basemaps: c.basemaps}, func(s *Service) { d.register(t, s, "petite", "Petite livraison") })
			resp, err := http.Get(api.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, c.imgSrc) {
				t.Errorf("Content-Security-Policy %q, want %q", csp, c.imgSrc)
			}
			hits := down.hits.Load()
			ready := `d.ready === 'true'`
			if c.basemaps != nil {
				ready += ` && Number(d.basemapErrors) >= 3`
			}
			dom, b := loadPage(t, api.URL+"/", ready)
			for attr, want := range map[string]string{"ready": "true", "footprints": "1", "tiles": "12", "tile-errors": "0", "basemaps": fmt.Sprint(len(c.basemaps))} {
				if got := dataAttr(dom, attr); got != want {
					t.Errorf("data-%s=%q, want %q", attr, got, want)
				}
			}
			text := visibleText(dom)
			for _, want := range []string{"dalle vide : renvoyez le fichier (1)", "dalles/vide.tif", "problème non identifié : voyez le rapport (1)", "dalles/x.tif", "2 dalles à corriger"} {
				if !strings.Contains(text, want) {
					t.Errorf("the panel lacks %q", want)
				}
			}
			if strings.Contains(text, "point à vérifier") || strings.Contains(text, "points à vérifier") {
				t.Error("warnings listed from a report without any")
			}
			checkNoMachineCode(t, dom)
			switch c.name {
			case "none":
				if strings.Contains(dom, "leaflet-tile ") || down.hits.Load() != hits {
					t.Error("tiles asked for without a basemap")
				}
			case "failing":
				if down.hits.Load() == hits || !strings.Contains(text, "Fond de carte « Plan » indisponible : la carte reste utilisable sans.") {
					t.Errorf("failing tiles: %d asked, notice shown: %v", down.hits.Load()-hits, strings.Contains(text, "indisponible"))
				}
			}
			if p := b.pageProblems(); len(p) > 0 {
				t.Errorf("the page reported: %q", p)
			}
		})
	}
}

// TestMapWarningsInFrench: every warning kind reads as a French sentence
// from its structured fields, robust to fields absent; missing cells are
// listed by their expected name and a click zooms to one.
func TestMapWarningsInFrench(t *testing.T) {
	g := grid{lon0: 2.3, lat0: 43.2, dx: 0.0025, dy: 0.0018, cols: 4, rows: 3}
	box := func(c, r int) json.RawMessage { return polygon(g.box(c, r)) }
	d := newDelivery(t, g, map[string]any{
		"problems": []map[string]any{
			{"path": "a/nogeo.tif", "reason": "not_georeferenced"}, {"path": "a/nocrs.tif", "reason": "no_crs"},
			{"path": "a/loin.tif", "reason": "misplaced", "geometry": box(0, 0)}, {"path": "a/refus.tif", "reason": "unreachable"},
			// A geometry no one can draw, and no problem at all: still a page.
			{"path": "a/casse.tif", "reason": "corrupt", "geometry": map[string]any{"type": "Polygon", "coordinates": "nope"}}, nil,
		},
		"warnings": []map[string]any{
			{"path": "d/a.tif", "kind": "off_grid", "offset": []float64{0.5, -1.25}, "geometry": box(0, 0)},
			{"path": "d/b.tif", "kind": "off_grid"},
			{"path": "d/c.tif", "kind": "overlap", "other": "d/e.tif", "areaM2": 1200, "geometry": box(1, 0)},
			{"path": "d/f.tif", "kind": "name_mismatch", "expected": "PCRS_1_2.tif", "geometry": box(1, 1)},
			{"path": "d/g.tif", "kind": "size_outlier", "ratio": 0.05, "geometry": box(2, 1)},
			{"path": "d/h.tif", "kind": "resolution", "geometry": box(2, 2)},
			{"kind": "mixed", "counts": map[string]int{"image/tiff": 11, "image/jp2": 1}},
			{"kind": "missing", "expected": "PCRS_0912_6250.tif", "geometry": box(3, 2)},
			{"kind": "some_future_kind", "path": "d/z.tif"},
		},
		"warningsByKind": map[string]int{"duplicate": 3, "off_grid": 2, "overlap": 1, "name_mismatch": 1, "size_outlier": 1, "resolution": 1, "mixed": 1, "missing": 1},
	})
	_, api, _ := newService(t, Config{}, func(s *Service) { d.register(t, s, "w", "Avertissements") })
	b := newBrowser(t)
	b.open(api.URL + "/")
	ds := b.dataset(`d.ready === 'true'`)
	if ds["warnings"] != "6" || ds["problems"] != "1" {
		t.Errorf("drawn: %s warnings, %s problems; want 6 (those with a geometry), 1", ds["warnings"], ds["problems"])
	}
	var text string
	b.eval(`document.getElementById('panel').innerText`, &text)
	for _, want := range []string{
		"aucun géoréférencement : ajoutez le fichier de calage (.tfw/.j2w) ou réécrivez la dalle avec son géoréférencement (1)\na/nogeo.tif",
		"aucun système de coordonnées : ajoutez le .prj ou réécrivez le GeoTIFF avec EPSG:2154 (1)\na/nocrs.tif",
		"dalle placée hors de sa zone : vérifiez le code EPSG (1)\na/loin.tif",
		"le stockage n'a pas servi le fichier : vérifiez les droits et relancez (1)\na/refus.tif", "5 dalles à corriger",
		"fichier illisible ou tronqué : renvoyez le fichier complet (1)\na/casse.tif", "doublons (3)\n… et 3 autres dans le rapport",
		"d/a.tif : hors de la grille de la livraison (décalée de 0,5 m en X et -1,25 m en Y) : vérifiez son géoréférencement",
		"d/b.tif : hors de la grille de la livraison : vérifiez son géoréférencement",
		"d/c.tif : recouvre 1\u202f200 m² de d/e.tif : l'une des deux est mal placée",
		"d/f.tif : son nom ne correspond pas à sa position (attendu : PCRS_1_2.tif) : renommez-la ou corrigez son géoréférencement",
		"d/g.tif : beaucoup plus petite que ses voisines (5 % de la médiane) : dalle en grande partie vide ?",
		"d/h.tif : résolution différente du reste de la livraison : vérifiez la dalle",
		"la livraison mélange image/tiff (11), image/jp2 (1) : harmonisez-la",
		"dalle manquante : PCRS_0912_6250.tif : livrez-la",
		"d/z.tif : à vérifier : voyez le rapport",
		"dalles manquantes (1)", "12 points à vérifier (dalles conservées)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the panel lacks %q", want)
		}
	}
	for _, code := range machineCodes {
		if regexp.MustCompile(`(^|[^\pL_])` + code + `($|[^\pL_])`).MatchString(text) {
			t.Errorf("the panel shows the machine code %q", code)
		}
	}
	// A click on the missing cell zooms to it.
	view := ds["view"]
	b.eval(`(() => { const li = [...document.querySelectorAll('.warnings-missing li.zoomable')][0]; li.click(); return true; })()`, nil)
	ds = b.dataset(`Number(d.view) > ` + view)
	cell, v := g.box(3, 2), parseBox(t, ds["viewBbox"])
	if ds["zoom"] != "18" || v[0] > cell[0] || v[1] > cell[1] || v[2] < cell[2] || v[3] < cell[3] {
		t.Errorf("after a click on the missing cell: zoom %s, view %v, want zoom 18 around %v", ds["zoom"], v, cell)
	}
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page reported: %q", p)
	}
}

// TestBasemapFlag: --basemap parsing, defaults and the CSP's img-src.
func TestBasemapFlag(t *testing.T) {
	var f BasemapFlag
	if got := f.Basemaps(); len(got) != 2 || got[0].Attribution != IGNAttribution || !strings.Contains(got[0].URL, "LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2") ||
		!strings.Contains(got[1].URL, "LAYER=ORTHOIMAGERY.ORTHOPHOTOS&FORMAT=image/jpeg") || !strings.Contains(got[0].URL, "FORMAT=image/png") ||
		!strings.HasPrefix(got[0].URL, "https://data.geopf.fr/wmts?") || !strings.Contains(got[0].URL, "TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}") {
		t.Errorf("default basemaps: %+v", got)
	}
	if src := imgSources(DefaultBasemaps()); src != "'self' data: https://data.geopf.fr" {
		t.Errorf("default img-src %q", src)
	}
	if err := f.Set("none"); err != nil || len(f.Basemaps()) != 0 || f.Set("osm=https://tile.openstreetmap.org/{z}/{x}/{y}.png") == nil {
		t.Errorf("none: %v, %+v, and none may not be mixed with others", err, f.Basemaps())
	}
	var g BasemapFlag
	for _, v := range []string{"OSM=https://tile.openstreetmap.org/{z}/{x}/{y}.png", "Local=http://127.0.0.1:8081/tms/{z}/{x}/{-y}.png"} {
		if err := g.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.Basemaps(); len(got) != 2 || got[0].Name != "OSM" || got[0].Attribution != "tile.openstreetmap.org" || got[1].URL != "http://127.0.0.1:8081/tms/{z}/{x}/{-y}.png" {
		t.Errorf("two basemaps: %+v", got)
	}
	if src := imgSources(g.Basemaps()); src != "'self' data: http://127.0.0.1:8081 https://tile.openstreetmap.org" {
		t.Errorf("img-src %q", src)
	}
	for _, bad := range []string{"https://x.org/{z}/{x}/{y}.png", "=https://x.org/{z}/{x}/{y}", "a=ftp://x.org/{z}/{x}/{y}", "a=https://x.org/{z}/{x}.png",
		"a=https://{s}.x.org/{z}/{x}/{y}.png", "a=https://u:p@x.org/{z}/{x}/{y}", "a=/tiles/{z}/{x}/{y}", "OSM=https://x.org/{z}/{x}/{y}",
		// A host that would write its own CSP directive.
		"a=https://x.org;script-src/{z}/{x}/{y}", "a=https://x.org';/{z}/{x}/{y}", "a=https://x.org*/{z}/{x}/{y}", "a=https://-x.org/{z}/{x}/{y}"} {
		if err := g.Set(bad); !errors.Is(err, ErrBasemap) {
			t.Errorf("%q: %v, want ErrBasemap", bad, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWebAssetsGzipETag: the page's scripts go gzip-compressed with a
// strong ETag per representation (304 on If-None-Match), plain to a
// ranged request; icons are served too, nothing else.
func TestWebAssetsGzipETag(t *testing.T) {
	chromium(t) // the assets are embedded
	_, api, _ := newService(t, Config{})
	plain, err := webFS.ReadFile("web/dist/leaflet.js")
	if err != nil {
		t.Fatal(err)
	}
	resp, zipped := get(t, api.URL+"/assets/leaflet.js", map[string]string{"Accept-Encoding": "gzip"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" || len(zipped) > len(plain)/2 {
		t.Fatalf("gzip: %d %q, %d bytes of %d", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, plain) {
		t.Error("the gzip body is not leaflet.js")
	}
	gzTag := resp.Header.Get("ETag")
	resp, body := get(t, api.URL+"/assets/leaflet.js", map[string]string{"Accept-Encoding": "identity"})
	plainTag := resp.Header.Get("ETag")
	if !bytes.Equal(body, plain) || resp.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(gzTag, `"`) || !strings.HasPrefix(plainTag, `"`) || gzTag == plainTag {
		t.Errorf("plain: %d bytes, ETags %q and %q", len(body), gzTag, plainTag)
	}
	for _, c := range []struct{ enc, tag string }{{"gzip", gzTag}, {"identity", plainTag}} {
		if resp, body := get(t, api.URL+"/assets/leaflet.js", map[string]string{"Accept-Encoding": c.enc, "If-None-Match": c.tag}); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match %s: %d, %d bytes", c.tag, resp.StatusCode, len(body))
		}
	}
	if resp, body := get(t, api.URL+"/assets/leaflet.js", map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-9"}); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, plain[:10]) {
		t.Errorf("a range: %d %q", resp.StatusCode, body)
	}
	for name, want := range map[string]int{"layers.png": 200, "flatgeobuf-geojson.min.js": 200, "app.js": 200, "README.txt": 404, "index.html": 404, "..%2fweb.go": 404} {
		if resp, _ := get(t, api.URL+"/assets/"+name, nil); resp.StatusCode != want {
			t.Errorf("/assets/%s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}

// TestMapPlacesProblemAfterRescan: a tile that turns unreadable between
// two scans is drawn where it stood, by the rescan that finds it broken
// and by the next, incremental one that recalls the verdict from the
// state without reading it.
func TestMapPlacesProblemAfterRescan(t *testing.T) {
	chromium(t)
	tiles, dir := tileServer(t, "")
	ended := make(chan string, 4)
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true},
		func(s *Service) { s.hooks.ended = func(id string) { ended <- id } })
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "name": "Aude"}`, tiles.URL+"/tiles/"))
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	scanned := func() {
		t.Helper()
		if id := <-ended; id != created.ID {
			t.Fatalf("scan of %s ended, want %s", id, created.ID)
		}
	}
	rescan := func() {
		t.Helper()
		if code, raw := call(t, "POST", api.URL+"/storages/"+created.ID+"/scan", adminToken, ""); code != http.StatusAccepted {
			t.Fatalf("rescan: %d %s", code, raw)
		}
		scanned()
	}
	scanned()
	if err := os.WriteFile(filepath.Join(dir, "dalles", "t1.tif"), []byte("<html>Erreur 503</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var requests []int
	for i := range 2 {
		rescan()
		_, raw := call(t, "GET", api.URL+"/storages/"+created.ID+"/report", "", "")
		var rep struct {
			Counts struct{ Problems int }
			IO     struct{ Requests int }
		}
		if err := json.Unmarshal(raw, &rep); err != nil || rep.Counts.Problems != 2 {
			t.Fatalf("rescan %d: report %.300s (%v)", i+1, raw, err)
		}
		requests = append(requests, rep.IO.Requests)
		dom, b := loadPage(t, api.URL+"/", `d.ready === 'true'`)
		if got := dataAttr(dom, "problems"); got != "2" {
			t.Errorf("rescan %d: %s problems drawn, want 2 (the tile cut short and the broken one)", i+1, got)
		}
		if !strings.Contains(visibleText(dom), "t1.tif") {
			t.Errorf("rescan %d: the broken tile is not listed", i+1)
		}
		if p := b.pageProblems(); len(p) > 0 {
			t.Errorf("the page reported: %q", p)
		}
	}
	// The first rescan read the broken tile, the second only listed.
	if requests[0] != requests[1]+1 {
		t.Errorf("requests per rescan %v, want the second one fewer (the broken tile recalled)", requests)
	}
}
