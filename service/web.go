package service

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The map page and its assets are embedded in the binary: Leaflet and
// FlatGeobuf come from npm at build time (`make web` copies them into
// web/dist), so nothing is fetched from a CDN at run time. Only the
// basemaps' tiles come from elsewhere, from the hosts the operator set.
//
//go:embed web/index.html web/app.js web/app.css web/dist
var webFS embed.FS

var assetTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".png": "image/png",
}

// mapAssets are what the page cannot work without.
var mapAssets = []string{"web/dist/leaflet.js", "web/dist/flatgeobuf-geojson.min.js"}

func (s *Service) mapPage(w http.ResponseWriter, _ *http.Request) {
	s.page(w, "", false)
}

// deliveryPage is one storage's page, to bookmark and share: the map
// zoomed to its delivery alone, its problems, warnings and missing tiles.
// With the storage's share key (?cle=…) it also lists a download link per
// problem tile; with a key that is not, or no longer, the storage's, it
// answers 403 and says so.
func (s *Service) deliveryPage(w http.ResponseWriter, r *http.Request) {
	rec, err := s.get(r.PathValue("id"))
	if errors.Is(err, errNotFound) {
		errorPage(w, http.StatusNotFound, "Livraison introuvable",
			"Aucune livraison n'a cet identifiant : vérifiez le lien, ou demandez-en un nouveau à l'administrateur du service.", "")
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	shared := r.URL.Query().Has("cle")
	if shared && s.checkShareKey(rec, r.URL.Query().Get("cle")) != nil {
		errorPage(w, http.StatusForbidden, "Lien de partage invalide", "C"+strings.TrimPrefix(shareMessage, "c")+
			" La page de la livraison, sans les téléchargements, reste ouverte à tous.", "/livraisons/"+url.PathEscape(rec.ID))
		return
	}
	s.page(w, rec.ID, shared)
}

// page serves the map page: every storage, or one (storageID) with its
// download links when shared.
func (s *Service) page(w http.ResponseWriter, storageID string, shared bool) {
	for _, a := range mapAssets {
		if _, err := fs.Stat(webFS, a); err != nil {
			http.Error(w, "the map's assets were not built into this binary: run `make build`", http.StatusServiceUnavailable)
			return
		}
	}
	page, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	basemaps := s.cfg.Basemaps
	if basemaps == nil {
		basemaps = []Basemap{}
	}
	layers, err := json.Marshal(basemaps)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if shared {
		h.Set("Cache-Control", "no-store") // its address holds a key
	}
	h.Set("Content-Security-Policy", "default-src 'self'; img-src "+imgSources(basemaps)+"; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// A share page's address holds its key: no basemap server may see it.
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write([]byte(strings.NewReplacer(
		"{{BASEMAPS}}", html.EscapeString(string(layers)),
		"{{STORAGE}}", html.EscapeString(storageID),
		"{{SHARED}}", strconv.FormatBool(shared),
	).Replace(string(page))))
}

// errorPage answers a page that cannot be shown, saying why in French;
// delivery, when not "", is the delivery's public page.
func errorPage(w http.ResponseWriter, status int, title, message, delivery string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	links := `<a href="/">Carte des livraisons</a>`
	if delivery != "" {
		links = `<a href="` + html.EscapeString(delivery) + `">Page publique de la livraison</a> · ` + links
	}
	_, _ = fmt.Fprintf(w, `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>%s — pcrs-indexer</title><link rel="stylesheet" href="/assets/app.css"></head>
<body class="message-page"><main><h1>%s</h1><p>%s</p><p>%s</p></main></body></html>
`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(message), links)
}

// webAsset is an embedded asset ready to serve: its strong ETag (from its
// content) and, for text, a gzip copy made once.
type webAsset struct {
	plain, gz []byte
	etag      string
	ctype     string
}

var (
	webAssetsMu sync.Mutex
	webAssets   = map[string]*webAsset{}
	// assetsModTime stands for the embedded files' modification time (embed
	// keeps none): If-Modified-Since works within one run, ETags across.
	assetsModTime = time.Now()
)

func loadAsset(name string) *webAsset {
	webAssetsMu.Lock()
	defer webAssetsMu.Unlock()
	if a, ok := webAssets[name]; ok {
		return a
	}
	ctype, ok := assetTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "/") {
		return nil
	}
	for _, dir := range []string{"web/", "web/dist/"} {
		b, err := webFS.ReadFile(dir + name)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		a := &webAsset{plain: b, etag: hex.EncodeToString(sum[:16]), ctype: ctype}
		if strings.HasPrefix(ctype, "text/") {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(b)
			_ = zw.Close()
			a.gz = buf.Bytes()
		}
		webAssets[name] = a
		return a
	}
	webAssets[name] = nil
	return nil
}

// asset serves the page's scripts, styles and icons: gzip-compressed when
// the client accepts it (a ranged request gets the plain bytes), with a
// strong ETag, revalidated on each load (304 when unchanged).
func (s *Service) asset(w http.ResponseWriter, r *http.Request) {
	a := loadAsset(r.PathValue("name"))
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.gz == nil {
		h.Set("ETag", `"`+a.etag+`"`)
		http.ServeContent(w, r, "", assetsModTime, bytes.NewReader(a.plain))
		return
	}
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("Range") != "" || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("ETag", `"`+a.etag+`"`)
		http.ServeContent(w, r, "", assetsModTime, bytes.NewReader(a.plain))
		return
	}
	etag := `"` + a.etag + `-gz"`
	h.Set("ETag", etag)
	if etagListed(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Length", strconv.Itoa(len(a.gz)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.gz)
	}
}

// etagListed says whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 has it for If-None-Match) or is "*".
func etagListed(header, etag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || part == etag {
			return true
		}
	}
	return false
}
