package livrable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCalendrier(t *testing.T) {
	for statut, want := range map[string]string{
		"investigation": "03", "convention_signee": "03", "marche_public_en_cours": "03",
		"prod_en_cours": "02", "controle_en_cours": "02",
		"realise": "01", "disponible": "01", "obsolete": "01",
	} {
		if got, err := Calendrier(statut); err != nil || got != want {
			t.Errorf("Calendrier(%q) = %q, %v; want %q", statut, got, err, want)
		}
	}
	if _, err := Calendrier("livre"); !errors.Is(err, ErrUnknownStatus) || !strings.Contains(err.Error(), "livre") {
		t.Errorf("unknown status: err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yml := write("a.yaml", `
projet: 6f3b3c1e-8a43-4c1e-9a8e-0d3c1b2a4f5e
nom: Aude 2023
statut: disponible
dates: {prod_en_cours: 2022-03-01, disponible: 2023-05-10}
licence: ouvert_etalab
focale: 100.5
recouvrLat: 30
recouvrLon: 60
subventions: [feder, region]
acteurs: [SYADEN, IGN]
diffusion: wms
diffusionUrl: https://example.org/wms
diffusionLayer: pcrs
`)
	a, err := Load(yml)
	if err != nil {
		t.Fatal(err)
	}
	if a.CalendrierCode() != "01" || a.DateActualiteValue() != "2023-05-10" || *a.Focale != 100.5 || len(a.Acteurs) != 2 {
		t.Errorf("unexpected %+v", a)
	}
	js := write("a.json", `{"projet": "x", "statut": "prod_en_cours", "dates": {"prod_en_cours": "2024-01-02"}}`)
	if a, err := Load(js); err != nil || a.CalendrierCode() != "02" || a.DateActualiteValue() != "2024-01-02" {
		t.Errorf("JSON: %+v, %v", a, err)
	}
	for name, content := range map[string]string{
		"typo.yaml":   "license: x\n",
		"status.yaml": "statut: finished\n",
		"date.yaml":   "statut: realise\ndates: {realise: 10/05/2023}\n",
	} {
		if _, err := Load(write(name, content)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}

func TestMerge(t *testing.T) {
	f := 100.0
	base := &Attributes{Projet: "p", Licence: "a", Focale: &f, Dates: map[string]string{"realise": "2020-01-01"}}
	over := &Attributes{Licence: "b", Dates: map[string]string{"disponible": "2021-01-01"}}
	m := Merge(base, over)
	if m.Projet != "p" || m.Licence != "b" || *m.Focale != 100 || len(m.Dates) != 2 {
		t.Errorf("merge: %+v", m)
	}
	if base.Licence != "a" {
		t.Error("merge modified its input")
	}
}
