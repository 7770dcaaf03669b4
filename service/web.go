package service

import (
	"embed"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The map page and its assets are embedded in the binary: Leaflet comes
// from npm at build time (`make web` copies it into web/dist), so nothing
// is fetched from a CDN at run time.
//
//go:embed web/index.html web/app.js web/app.css web/dist
var webFS embed.FS

var assetTypes = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

func (s *Service) mapPage(w http.ResponseWriter, _ *http.Request) {
	if _, err := fs.Stat(webFS, "web/dist/leaflet.js"); err != nil {
		http.Error(w, "the map's assets were not built into this binary: run `make build`", http.StatusServiceUnavailable)
		return
	}
	page, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'")
	_, _ = w.Write([]byte(strings.Replace(string(page), "{{BASEMAP}}", html.EscapeString(s.cfg.Basemap), 1)))
}

func (s *Service) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctype, ok := assetTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	for _, dir := range []string{"web/", "web/dist/"} {
		if b, err := webFS.ReadFile(dir + name); err == nil {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "public, max-age=3600")
			_, _ = w.Write(b)
			return
		}
	}
	http.NotFound(w, r)
}
