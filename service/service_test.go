package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/prometheus/client_golang/prometheus"
)

const adminToken = "admin-token-for-tests"

// tileServer serves a small storage through a web server's listings,
// behind basic auth with password.
func tileServer(t *testing.T, password string) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	for i := range 3 {
		tile := tilegen.Tile{EPSG: 2154, X: 700000 + float64(i)*200, Y: 6600200}
		if err := tile.Write(filepath.Join(dir, "dalles", fmt.Sprintf("t%d.tif", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A transfer cut short: a problem the map can still place.
	cut := filepath.Join(dir, "dalles", "coupee.tif")
	if err := (tilegen.Tile{EPSG: 2154, X: 700600, Y: 6600200, Width: 1000, Creation: []string{"COMPRESS=LZW"}}).Write(cut); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cut); err != nil || tilegen.Truncate(cut, fi.Size()/2) != nil {
		t.Fatal("cannot truncate the fixture")
	}
	fs := http.StripPrefix("/tiles/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); pw != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, dir
}

// newService runs a service; setup runs before its scheduler starts (to
// set hooks or records).
func newService(t *testing.T, cfg Config, setup ...func(*Service)) (*Service, *httptest.Server, context.CancelFunc) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Registry == nil {
		cfg.Registry = backends.Registry()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	api := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		api.Close()
		cancel()
		<-done
		s.Close()
	})
	return s, api, cancel
}

func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func TestRegisterScanServe(t *testing.T) {
	const password = "owner-pw-5e1b"
	tiles, _ := tileServer(t, password)
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	reg := fmt.Sprintf(`{"url": %q, "name": "Aude", "credentials": {"password": %q}, "livrable": {"projet": "p-1", "licence": "ouvert_lo"}, "interval": "1h"}`,
		strings.Replace(tiles.URL, "http://", "http://owner@", 1)+"/tiles/", password)

	if code, _ := call(t, "POST", api.URL+"/storages", "", reg); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := call(t, "POST", api.URL+"/storages", "wrong", reg); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, reg)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	// The same location again — another login, the host in capitals, no
	// trailing slash — is refused with the existing storage's id.
	again := fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`,
		strings.TrimSuffix(strings.Replace(strings.ToUpper(tiles.URL), "HTTP://", "http://other@", 1)+"/tiles/", "/"), password)
	if code, raw := call(t, "POST", api.URL+"/storages", adminToken, again); code != http.StatusConflict || !strings.Contains(string(raw), `"id":"`+created.ID+`"`) {
		t.Errorf("a duplicate registration: %d %s, want 409 naming %s", code, raw, created.ID)
	}

	var v view
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, raw = call(t, "GET", api.URL+"/storages/"+created.ID, "", "")
		_ = json.Unmarshal(raw, &v)
		if v.LastSuccess != nil || v.LastError != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.LastSuccess == nil || v.LastCounts == nil || v.LastCounts.Readable != 3 || v.Status != "idle" {
		t.Fatalf("after the first scan: %s", raw)
	}
	if strings.Contains(string(raw), password) {
		t.Error("the API returned the password")
	}

	for path, want := range map[string]int{"/storages/" + created.ID + "/dalles.geojson": 3, "/storages/" + created.ID + "/livrables.geojson": 1, "/dalles.geojson": 3, "/livrables.geojson": 1} {
		code, raw := call(t, "GET", api.URL+path, "", "")
		var fc struct {
			Features []struct {
				Properties map[string]any `json:"properties"`
			} `json:"features"`
		}
		if code != http.StatusOK || json.Unmarshal(raw, &fc) != nil || len(fc.Features) != want {
			t.Errorf("%s: %d, %d features (want %d)", path, code, len(fc.Features), want)
			continue
		}
		if strings.Contains(string(raw), password) {
			t.Errorf("%s leaks the password", path)
		}
		if fc.Features[0].Properties["licence"] != "ouvert_lo" {
			t.Errorf("%s: attributes not applied: %v", path, fc.Features[0].Properties)
		}
	}
	if code, raw := call(t, "GET", api.URL+"/storages/"+created.ID+"/report", "", ""); code != http.StatusOK || !bytes.Contains(raw, []byte(`"readable": 3`)) {
		t.Errorf("report: %d %s", code, raw)
	}
	if code, _ := call(t, "POST", api.URL+"/storages/"+created.ID+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Errorf("scan request: %d", code)
	}
	code, raw = call(t, "GET", api.URL+"/metrics", "", "")
	if code != http.StatusOK || !bytes.Contains(raw, []byte("pcrs_indexer_tiles_total")) {
		t.Errorf("metrics: %d", code)
	}
	// Recorded before the storage's record says the scan succeeded.
	for _, series := range []string{
		`pcrs_indexer_last_success_timestamp_seconds{storage="` + created.ID + `"}`,
		`pcrs_indexer_scans_total{outcome="success",storage="` + created.ID + `"} `,
		`pcrs_indexer_readable_tiles{storage="` + created.ID + `"} 3`,
	} {
		if !bytes.Contains(raw, []byte(series)) {
			t.Errorf("metrics lack %s", series)
		}
	}
	promtoolCheck(t, raw)
	if code, raw := call(t, "GET", api.URL+"/openapi.json", "", ""); code != http.StatusOK || !json.Valid(raw) {
		t.Errorf("openapi: %d", code)
	}
	if code, _ := call(t, "DELETE", api.URL+"/storages/"+created.ID, adminToken, ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(t, "GET", api.URL+"/storages/"+created.ID, "", ""); code != http.StatusNotFound {
		t.Errorf("after delete: %d", code)
	}
	if _, raw := call(t, "GET", api.URL+"/metrics", "", ""); bytes.Contains(raw, []byte(`storage="`+created.ID+`"`)) {
		t.Error("a deleted storage keeps its series")
	}
}

// TestMetricsSurviveRestart: a storage's last success and attempt are
// exposed again after a restart, from its record, so that staleness alerts
// neither fire nor go quiet because the service restarted.
func TestMetricsSurviveRestart(t *testing.T) {
	data := t.TempDir()
	success := time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC)
	attempt := success.Add(time.Hour)
	open := func() (*Service, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		s, err := New(Config{DataDir: data, Registry: backends.Registry(), Registerer: reg, Gatherer: reg})
		if err != nil {
			t.Fatal(err)
		}
		return s, reg
	}
	s, _ := open()
	if err := s.put(&Record{ID: "st1", URL: "https://example.test/tiles/", LastSuccess: &success, LastAttempt: &attempt}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, reg := open()
	defer s.Close()
	want := map[string]float64{
		"pcrs_indexer_last_success_timestamp_seconds": float64(success.Unix()),
		"pcrs_indexer_last_attempt_timestamp_seconds": float64(attempt.Unix()),
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		v, ok := want[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == "st1" && m.GetGauge().GetValue() == v {
				delete(want, f.GetName())
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("not restored: %v", want)
	}
}

// promtoolCheck runs Prometheus's own linter on an exposition.
func promtoolCheck(t *testing.T, exposition []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `make test` (it installs Debian's prometheus package)")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	_, api, _ := newService(t, Config{AllowPrivateNetworks: true})
	if code, _ := call(t, "POST", api.URL+"/storages", "anything", `{"url": "https://example.org/"}`); code != http.StatusForbidden {
		t.Errorf("admin call without a configured token: %d, want 403", code)
	}
	if code, _ := call(t, "GET", api.URL+"/healthz", "", ""); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
}

func TestRefusals(t *testing.T) {
	tiles, dir := tileServer(t, "")
	_, api, _ := newService(t, Config{AdminToken: adminToken})
	tests := map[string]string{
		"loopback":   fmt.Sprintf(`{"url": %q}`, tiles.URL+"/tiles/"),
		"private":    `{"url": "http://10.1.2.3/tiles/"}`,
		"link-local": `{"url": "http://169.254.169.254/latest/"}`,
		"file":       fmt.Sprintf(`{"url": "file://%s"}`, dir),
		"bad field":  `{"url": "https://example.org/", "pasword": "x"}`,
		"interval":   `{"url": "https://example.org/", "interval": "5s"}`,
		"too big":    `{"url": "https://example.org/", "name": "` + strings.Repeat("x", 100<<10) + `"}`,
	}
	for name, body := range tests {
		if code, raw := call(t, "POST", api.URL+"/storages", adminToken, body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, code, raw)
		}
	}
}

func TestDownloadToken(t *testing.T) {
	tiles, dir := tileServer(t, "")
	s, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true})
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q}`, tiles.URL+"/tiles/"))
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	_, raw = call(t, "POST", api.URL+"/storages/"+created.ID+"/download-token", adminToken, "")
	var tok struct{ Token string }
	_ = json.Unmarshal(raw, &tok)
	want, _ := os.ReadFile(filepath.Join(dir, "dalles/t1.tif"))
	file := api.URL + "/storages/" + created.ID + "/files/dalles/t1.tif?token=" + tok.Token

	if code, body := call(t, "GET", file, "", ""); code != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("download: %d, %d bytes of %d", code, len(body), len(want))
	}
	req, _ := http.NewRequest("GET", file, nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[100:200]) {
		t.Errorf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	expired := s.signToken(created.ID, time.Now().Add(-time.Minute))
	other := s.signToken("another-storage", time.Now().Add(time.Hour))
	for name, token := range map[string]string{"none": "", "garbage": "abc.def", "expired": expired, "other storage": other, "tampered": tok.Token[:len(tok.Token)-2] + "AA"} {
		u := api.URL + "/storages/" + created.ID + "/files/dalles/t1.tif?token=" + token
		if code, _ := call(t, "GET", u, "", ""); code != http.StatusForbidden {
			t.Errorf("%s token: %d, want 403", name, code)
		}
	}
}

// TestScheduleSurvivesRestart: storages and their schedule live in the
// data folder.
func TestScheduleSurvivesRestart(t *testing.T) {
	tiles, _ := tileServer(t, "")
	data := t.TempDir()
	cfg := Config{DataDir: data, AdminToken: adminToken, AllowPrivateNetworks: true, Registry: backends.Registry()}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(s.Handler())
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "interval": "6h"}`, tiles.URL+"/tiles/"))
	api.Close()
	s.Close()
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	records, err := s2.list()
	if err != nil || len(records) != 1 || records[0].Interval != 6*time.Hour {
		t.Fatalf("after restart: %+v, %v", records, err)
	}
	if v := s2.view(records[0]); v.Status != "queued" {
		t.Errorf("a storage never scanned is %q after a restart, want queued", v.Status)
	}
}

// TestRegisterFromCatalog: a registration naming a projet/livrable pair
// gets its attributes from the PCRS exports; given ones override them.
func TestRegisterFromCatalog(t *testing.T) {
	const id = "11111111-2222-3333-4444-555555555555"
	cat := t.TempDir()
	files := map[string]string{
		"projets.csv":        "id_projet,nom,regime,nature,budget,statut,investigation_date,convention_signee_date,marche_public_en_cours_date,prod_en_cours_date,controle_en_cours_date,realise_date,disponible_date,obsolete_date\n" + id + ",Aude,production,image,,disponible,,,,,,,2024-05-01,\n",
		"livrables.csv":      "ref_projet,nom_projet,nom,nature,date_livraison,licence,diffusion,diffusion_url,diffusion_layer,stockage,stockage_public,avancement,recouvr_lat,recouvr_lon,focale,cout,publication,crs,compression\n" + id + ",Aude,Ortho,pcrs_image,,ouvert_lo,,,,,,,,,,,,,\n",
		"subventions.csv":    "ref_projet,nom_projet,nom,nature,montant,echeance\n",
		"tours-de-table.csv": "ref_projet,nom_projet,nom_acteur,siren_acteur,interlocuteur,mail,telephone,role,finance_part_perc,finance_part_euro\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(cat, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tiles, _ := tileServer(t, "")
	s, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, Catalog: cat})
	body := fmt.Sprintf(`{"url": %q, "catalog": {"projet": %q, "livrable": "Ortho"}, "livrable": {"focale": 120}}`, tiles.URL+"/tiles/", id)
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, body)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	rec, err := s.get(created.ID)
	if err != nil {
		t.Fatal(err)
	}
	a := rec.Livrable
	if rec.Name != "Ortho" || a == nil || a.Projet != id || a.Licence != "ouvert_lo" || a.CalendrierCode() != "01" || a.Focale == nil || *a.Focale != 120 {
		t.Errorf("joined attributes: name %q, %+v", rec.Name, a)
	}
	bad := fmt.Sprintf(`{"url": %q, "catalog": {"projet": %q, "livrable": "Nope"}}`, tiles.URL+"/tiles/", id)
	if code, raw := call(t, "POST", api.URL+"/storages", adminToken, bad); code != http.StatusBadRequest || !strings.Contains(string(raw), "Nope") {
		t.Errorf("unknown livrable: %d %s", code, raw)
	}
}

// TestUnreachableStorageRefused: a registration is checked by connecting.
func TestUnreachableStorageRefused(t *testing.T) {
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "credentials": {"password": "pw-9d2c"}}`, url+"/tiles/"))
	if code != http.StatusUnprocessableEntity || strings.Contains(string(raw), "pw-9d2c") {
		t.Errorf("unreachable storage: %d %s, want 422", code, raw)
	}
	if _, raw := call(t, "GET", api.URL+"/storages", "", ""); string(bytes.TrimSpace(raw)) != "[]" {
		t.Errorf("a refused storage was kept: %s", raw)
	}
}
