package service

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMapInChromium loads the map page in headless Chromium against a
// running service and checks what it drew: the livrable's footprint, the
// storage in the panel, and the tiles (the page zooms to the livrable,
// past the tile zoom).
func TestMapInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run `make test` (it installs Debian's chromium)")
	}
	if _, err := fs.Stat(webFS, "web/dist/leaflet.js"); err != nil {
		t.Fatal("Leaflet is not embedded: run `make web` before the tests")
	}
	tiles, dir := tileServer(t, "")
	// The same tile delivered twice: a warning the map draws and explains.
	copyFile(t, filepath.Join(dir, "dalles", "t0.tif"), filepath.Join(dir, "doublons", "t0.tif"))
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true})
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

	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", api.URL+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	for _, want := range []string{`data-ready="true"`, `data-footprints="1"`, `data-tiles="4"`, `data-problems="1"`, `data-warnings="1"`, `data-storage="` + created.ID + `"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if n := len(regexp.MustCompile(`<path[^>]*class="footprint leaflet-interactive"`).FindAllString(dom, -1)); n != 1 {
		t.Errorf("%d footprint paths drawn, want 1", n)
	}
	if n := len(regexp.MustCompile(`<path[^>]*class="tile leaflet-interactive"`).FindAllString(dom, -1)); n != 4 {
		t.Errorf("%d tile paths drawn, want 4 (a warned tile stays)", n)
	}
	if n := len(regexp.MustCompile(`<path[^>]*class="warning leaflet-interactive"`).FindAllString(dom, -1)); n != 1 {
		t.Errorf("%d warnings drawn, want the duplicate", n)
	}
	if !strings.Contains(dom, "leaflet-control-scale") {
		t.Error("the map has no scale bar")
	}
	// What the owner reads is French, with what to do; the API's codes
	// are not shown as text.
	for _, want := range []string{"doublons/t0.tif : même emprise que dalles/t0.tif : dalle livrée deux fois ?", "coupee.tif : fichier illisible ou tronqué : renvoyez le fichier complet", "à jour", "1 point(s) à vérifier"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the panel lacks %q", want)
		}
	}
	for _, code := range []string{">idle<", ": corrupt", ": duplicate", ">duplicate"} {
		if strings.Contains(dom, code) {
			t.Errorf("the page shows the machine code %q", code)
		}
	}
	if n := len(regexp.MustCompile(`<path[^>]*class="problem leaflet-interactive"`).FindAllString(dom, -1)); n != 1 {
		t.Errorf("%d problem tiles drawn, want the one cut short", n)
	}
	if !strings.Contains(dom, "coupee.tif") {
		t.Error("the panel does not list the problem tile")
	}
	// Names are text, never markup.
	if strings.Contains(dom, "<b>2024</b>") || !strings.Contains(dom, "Aude &lt;b&gt;2024&lt;/b&gt;") {
		t.Error("a storage name was rendered as HTML")
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
