package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/tilegen"
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
