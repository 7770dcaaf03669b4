package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestExitCodes(t *testing.T) {
	storageDir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154}).Write(filepath.Join(storageDir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	badAttrs := filepath.Join(t.TempDir(), "attrs.yaml")
	if err := os.WriteFile(badAttrs, []byte("statut: fini\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, exitUsage, "Usage"},
		{"unknown command", []string{"index"}, exitUsage, "unknown command"},
		{"no source", []string{"scan"}, exitUsage, "usage"},
		{"bad flag", []string{"scan", "--nope", storageDir}, exitUsage, "not defined"},
		{"bad attributes", []string{"scan", "--attributes", badAttrs, storageDir}, exitUsage, "fini"},
		{"unknown scheme", []string{"scan", "gopher://h/x"}, exitUsage, "gopher"},
		{"missing folder", []string{"scan", "--out", out, filepath.Join(storageDir, "nope")}, exitFailed, "nope"},
		{"scan", []string{"scan", "--out", out, "--name", "essai", storageDir}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.stderr)
			}
		})
	}
	var report struct {
		Counts struct{ Readable int } `json:"counts"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &report); err != nil || report.Counts.Readable != 1 {
		t.Errorf("report: %s", raw)
	}
}

// TestSecretsRedacted: a password in SOURCE never reaches logs or outputs.
func TestSecretsRedacted(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run([]string{"scan", "--out", t.TempDir(), "ftp://user:hunter2@127.0.0.1:1/x"}, &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
		t.Errorf("password leaked:\n%s%s", stdout.String(), stderr.String())
	}
}

// TestCatalogJoin: --catalog fills the outputs; --attributes overrides it.
func TestCatalogJoin(t *testing.T) {
	const id = "11111111-2222-3333-4444-555555555555"
	cat := t.TempDir()
	files := map[string]string{
		"projets.csv":        "id_projet,nom,regime,nature,budget,statut,investigation_date,convention_signee_date,marche_public_en_cours_date,prod_en_cours_date,controle_en_cours_date,realise_date,disponible_date,obsolete_date\n" + id + ",Aude,production,image,,controle_en_cours,,,,2024-01-01,2024-06-30,,,\n",
		"livrables.csv":      "ref_projet,nom_projet,nom,nature,date_livraison,licence,diffusion,diffusion_url,diffusion_layer,stockage,stockage_public,avancement,recouvr_lat,recouvr_lon,focale,cout,publication,crs,compression\n" + id + ",Aude,Ortho,pcrs_image,,ouvert_lo,wmts,https://w.example.org,couche,,,,20,40,100,,,,\n",
		"subventions.csv":    "ref_projet,nom_projet,nom,nature,montant,echeance\n" + id + ",Aude,F,feder,1,\n",
		"tours-de-table.csv": "ref_projet,nom_projet,nom_acteur,siren_acteur,interlocuteur,mail,telephone,role,finance_part_perc,finance_part_euro\n" + id + ",Aude,SYADEN,,,,,aplc,,\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(cat, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	override := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(override, []byte("licence: ferme\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	storageDir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154}).Write(filepath.Join(storageDir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"scan", "--out", out, "--catalog", cat, "--projet", id, "--livrable", "Ortho", "--attributes", override, storageDir}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var fc struct {
		Features []struct {
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, "livrables.geojson"))
	if err := json.Unmarshal(raw, &fc); err != nil {
		t.Fatal(err)
	}
	p := fc.Features[0].Properties
	want := map[string]any{"nom": "Ortho", "initiative": id, "calendrier": "02", "dateActualite": "2024-06-30", "licence": "ferme",
		"diffusion": "wmts", "diffusionUrl": "https://w.example.org", "diffusionLayer": "couche", "recouvrLat": 20.0, "recouvrLon": 40.0, "focale": 100.0}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("livrable %s = %v, want %v", k, p[k], v)
		}
	}
	raw, _ = os.ReadFile(filepath.Join(out, "dalles.geojson"))
	if err := json.Unmarshal(raw, &fc); err != nil {
		t.Fatal(err)
	}
	d := fc.Features[0].Properties
	if d["idPCRS"] != id || d["licence"] != "ferme" || d["focale"] != 100.0 {
		t.Errorf("tile attributes: %v", d)
	}
	// Unknown livrable: a usage error naming it.
	stderr.Reset()
	args = []string{"scan", "--out", out, "--catalog", cat, "--projet", id, "--livrable", "Nope", storageDir}
	if code := run(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "Nope") {
		t.Errorf("unknown livrable: exit %d, %s", code, stderr.String())
	}
}

// TestStorageDownKeepsOutputsAndSecrets: a storage that fails every read
// after the listing ends with exit 1, its tiles unreachable, the previous
// outputs untouched; and no password shows anywhere.
func TestStorageDownKeepsOutputsAndSecrets(t *testing.T) {
	const urlSecret, envSecret = "url-pw-7f3a9", "env-pw-c41d2"
	storageDir := t.TempDir()
	for i, name := range []string{"a.tif", "b.tif"} {
		if err := (tilegen.Tile{EPSG: 2154, X: 700000 + float64(i)*200, Y: 6600200}).Write(filepath.Join(storageDir, "dalles", name)); err != nil {
			t.Fatal(err)
		}
	}
	var down atomic.Bool
	fileServer := http.StripPrefix("/tiles/", http.FileServer(http.Dir(storageDir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); pw != envSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if down.Load() && r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			http.Error(w, "backend down", http.StatusBadGateway)
			return
		}
		fileServer.ServeHTTP(w, r)
	}))
	defer srv.Close()
	t.Setenv("PCRS_INDEXER_PASSWORD", envSecret)
	source := strings.Replace(srv.URL, "http://", "http://owner:"+urlSecret+"@", 1) + "/tiles/"
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"scan", "--out", out, "--retries", "2", source}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("first scan: exit %d\n%s", code, stderr.String())
	}
	before := map[string][]byte{}
	for _, f := range []string{"dalles.geojson", "livrables.geojson", "report.json"} {
		before[f], _ = os.ReadFile(filepath.Join(out, f))
	}

	down.Store(true)
	if code := run(args, &stdout, &stderr); code != exitFailed {
		t.Fatalf("storage down: exit %d, want %d\n%s", code, exitFailed, stderr.String())
	}
	for f, content := range before {
		if now, _ := os.ReadFile(filepath.Join(out, f)); !bytes.Equal(now, content) {
			t.Errorf("%s changed by the failed scan", f)
		}
	}
	var failed struct {
		Counts   struct{ Problems int } `json:"counts"`
		Problems []struct{ Reason, Detail string }
	}
	raw, err := os.ReadFile(filepath.Join(out, "report.failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &failed); err != nil || failed.Counts.Problems != 2 || failed.Problems[0].Reason != "unreachable" || !strings.Contains(failed.Problems[0].Detail, "502") {
		t.Errorf("failed report: %s", raw)
	}

	// The password never shows: not in logs, summaries, reports or outputs.
	everything := stdout.String() + stderr.String()
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		everything += string(b)
	}
	for _, secret := range []string{urlSecret, envSecret} {
		if strings.Contains(everything, secret) {
			t.Errorf("secret %q leaked", secret)
		}
	}
	// On the web a lone userinfo may be a token: all of it goes.
	if !strings.Contains(everything, "://REDACTED@") || strings.Contains(everything, "owner") {
		t.Errorf("the source should show redacted, as http://REDACTED@…")
	}
}

// TestMain lets a test run the command in a child process, to kill it.
func TestMain(m *testing.M) {
	if args := os.Getenv("PCRS_INDEXER_TEST_ARGS"); args != "" {
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestStoppedScanResumes: a scan stopped half-way — by SIGTERM, or by
// SIGKILL with no chance to clean up — leaves a state file that opens, and
// the next scan reads only what the first had not.
func TestStoppedScanResumes(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) { stoppedScanResumes(t, sig) })
	}
}

func stoppedScanResumes(t *testing.T, sig syscall.Signal) {
	storageDir := t.TempDir()
	master := filepath.Join(t.TempDir(), "m.tif")
	if err := (tilegen.Tile{EPSG: 2154}).Write(master); err != nil {
		t.Fatal(err)
	}
	const tiles = 30
	if err := os.MkdirAll(filepath.Join(storageDir, "dalles"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range tiles {
		if err := os.Link(master, filepath.Join(storageDir, "dalles", fmt.Sprintf("t%02d.tif", i))); err != nil {
			t.Fatal(err)
		}
	}
	var reads atomic.Int32
	fileServer := http.StripPrefix("/tiles/", http.FileServer(http.Dir(storageDir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" && r.Method == http.MethodGet {
			reads.Add(1)
			time.Sleep(40 * time.Millisecond)
		}
		fileServer.ServeHTTP(w, r)
	}))
	defer srv.Close()
	stateFile := filepath.Join(t.TempDir(), "state.db")
	out := t.TempDir()
	args := []string{"scan", "--state", stateFile, "--concurrency", "2", "--out", out, srv.URL + "/tiles/"}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PCRS_INDEXER_TEST_ARGS="+strings.Join(args, "\x1f"))
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for reads.Load() < 12 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	before := reads.Load()
	if before < 12 || before >= tiles {
		t.Fatalf("stopped after %d reads: the test needs a scan stopped half-way", before)
	}

	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("resumed scan: exit %d\n%s", code, stderr.String())
	}
	var report struct {
		Counts struct{ Readable, Reused int } `json:"counts"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	second := int(reads.Load() - before)
	// Reads in flight at the kill (2 workers), or whose records were not
	// yet committed (one batch), are read again; nothing else is.
	if report.Counts.Readable != tiles || report.Counts.Reused+second != tiles || report.Counts.Reused < int(before)-4 {
		t.Errorf("after %d reads killed: resumed scan reused %d, read %d; readable %d", before, report.Counts.Reused, second, report.Counts.Readable)
	}
	t.Logf("%v after %d reads; the resumed scan reused %d and read %d", sig, before, report.Counts.Reused, second)
}

// TestMetricsFile: --metrics-file writes lint-clean Prometheus text that
// counts the scan.
func TestMetricsFile(t *testing.T) {
	storageDir := t.TempDir()
	for i, name := range []string{"a.tif", "b.tif"} {
		if err := (tilegen.Tile{EPSG: 2154, X: 700000 + float64(i)*200, Y: 6600200}).Write(filepath.Join(storageDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tilegen.WriteFile(filepath.Join(storageDir, "vide.jp2"), nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pcrs.prom")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", t.TempDir(), "--metrics-file", file, storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(bytes.NewReader(raw)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	id := `storage="` + indexer.StorageID(storageDir) + `"`
	for _, want := range []string{
		`pcrs_indexer_tiles_total{reason="",result="readable",` + id + `} 2`,
		`pcrs_indexer_tiles_total{reason="empty",result="problem",` + id + `} 1`,
		`pcrs_indexer_storage_requests_total{backend="file",op="read",outcome="ok",` + id + `} 2`,
		`pcrs_indexer_scan_duration_seconds_count{outcome="success",` + id + `} 1`,
		`pcrs_indexer_scans_total{outcome="success",` + id + `} 1`,
		`pcrs_indexer_last_success_timestamp_seconds{` + id + `}`,
		`pcrs_indexer_build_info{gdal="3.6.2",`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics file lacks %s", want)
		}
	}
}

// TestServeGracefulShutdown: serve answers, and stops cleanly on SIGTERM.
func TestServeGracefulShutdown(t *testing.T) {
	// A reserved port: one merely probed free could go to another test
	// process's listener before the child binds it.
	addr := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	args := []string{"serve", "--listen", addr, "--data", t.TempDir()}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PCRS_INDEXER_TEST_ARGS="+strings.Join(args, "\x1f"), "PCRS_INDEXER_ADMIN_TOKEN=t")
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatalf("serve never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		child.Process.Kill()
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// TestPushgateway: --pushgateway PUTs the scan's metrics, with the
// storage id as instance (a stable label, not the free-text name).
func TestPushgateway(t *testing.T) {
	storageDir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154}).Write(filepath.Join(storageDir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + "\n" + string(body)
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", t.TempDir(), "--name", "aude", "--pushgateway", gw.URL, storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "PUT /metrics/job/pcrs_indexer/instance/"+indexer.StorageID(storageDir)+"\n") || !strings.Contains(req, "pcrs_indexer_tiles_total") {
			t.Errorf("pushed %.200q", req)
		}
	default:
		t.Fatalf("nothing pushed: %s", stderr.String())
	}
}
