package catalog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/livrable"
)

const (
	aude  = "6a1b0a7e-1d2c-4b5e-8f9a-000000000001"
	autre = "6a1b0a7e-1d2c-4b5e-8f9a-000000000002"
)

// exports are fixture files in the published structure (column order of
// the national follow-up's documentation), written untidily: BOM, CRLF,
// quoted commas, quotes and newlines, empty values, accents, an extra
// column (geometrie), and two projects with a livrable of the same name.
func exports() map[string]string {
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	return map[string]string{
		"projets.csv": "\ufeff" + crlf(`id_projet,nom,regime,nature,budget,statut,investigation_date,convention_signee_date,marche_public_en_cours_date,prod_en_cours_date,controle_en_cours_date,realise_date,disponible_date,obsolete_date,geometrie
`+aude+`,"PCRS de l'Aude, ""image""",production,mixte,1200000,disponible,2019-01-10,2019-06-01,,2021-03-02,2021-11-15,2022-05-01T00:00:00.000Z,2023-05-10,,"MULTIPOLYGON(((2 43,3 43,3 44,2 44,2 43)))"
`+autre+`,Hérault,production,image,,prod_en_cours,,,,2024-02-01,,,,,
6a1b0a7e-1d2c-4b5e-8f9a-000000000003,Projet sans statut connu,production,image,,livre,,,,,,,,,
`),
		"livrables.csv": crlf(`ref_projet,nom_projet,nom,nature,date_livraison,licence,diffusion,diffusion_url,diffusion_layer,stockage,stockage_public,avancement,recouvr_lat,recouvr_lon,focale,cout,publication,crs,compression
` + aude + `,"PCRS de l'Aude, ""image""",Ortho 2022,pcrs_image,2022-05-01,ouvert_lo,wms,"https://geo.example.org/wms?SERVICE=WMS&LAYERS=a,b",pcrs_aude,http,true,100,30,60,120,50000,,,
` + autre + `,Hérault,Ortho 2022,pcrs_image,,ferme,,,,,,,,,,,,,
` + aude + `,"PCRS de l'Aude, ""image""","Vecteur
2023",pcrs_vecteur,,ouvert_lo,,,,,,,,,,,,,
`),
		"subventions.csv": crlf(`ref_projet,nom_projet,nom,nature,montant,echeance
` + aude + `,x,FEDER 2021,feder,10000,2023-01-01
` + aude + `,x,Région,region,5000,
` + aude + `,x,FEDER bis,feder,2000,
` + autre + `,y,Autre,cepr,1,
`),
		"tours-de-table.csv": crlf(`ref_projet,nom_projet,nom_acteur,siren_acteur,interlocuteur,mail,telephone,role,finance_part_perc,finance_part_euro
` + aude + `,x,SYADEN,200000000,"Dupont, Jean",a@b.fr,,aplc,50,
` + aude + `,x,Département de l'Aude,220000000,,,,financeur,30,
` + aude + `,x,SYADEN,200000000,,,,porteur,,
`),
	}
}

func writeExports(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestJoin(t *testing.T) {
	dir := writeExports(t, exports())
	srv := httptest.NewServer(http.StripPrefix("/data/", http.FileServer(http.Dir(dir))))
	defer srv.Close()
	for _, location := range []string{dir, srv.URL + "/data/", srv.URL + "/data"} {
		t.Run(location, func(t *testing.T) {
			c, err := Load(context.Background(), location, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			a, err := c.Attributes(aude, "Ortho 2022")
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct{ name, got, want string }{
				{"projet", a.Projet, aude},
				{"nom", a.Nom, "Ortho 2022"},
				{"calendrier", a.CalendrierCode(), "01"},
				{"dateActualite", a.DateActualiteValue(), "2023-05-10"},
				{"realise date from a timestamp", a.Dates["realise"], "2022-05-01"},
				{"licence", a.Licence, "ouvert_lo"},
				{"diffusion", a.Diffusion, "wms"},
				{"diffusionUrl", a.DiffusionURL, "https://geo.example.org/wms?SERVICE=WMS&LAYERS=a,b"},
				{"diffusionLayer", a.DiffusionLayer, "pcrs_aude"},
				{"subventions", strings.Join(a.Subventions, "|"), "feder|region"},
				{"acteurs", strings.Join(a.Acteurs, "|"), "SYADEN|Département de l'Aude"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if a.RecouvrLat == nil || *a.RecouvrLat != 30 || *a.RecouvrLon != 60 || *a.Focale != 120 {
				t.Errorf("numbers: %v %v %v", a.RecouvrLat, a.RecouvrLon, a.Focale)
			}
			// Same livrable name, other project: its own values, empties as nil.
			b, err := c.Attributes(autre, "Ortho 2022")
			if err != nil {
				t.Fatal(err)
			}
			if b.Licence != "ferme" || b.CalendrierCode() != "02" || b.DateActualiteValue() != "2024-02-01" || b.Focale != nil || len(b.Acteurs) != 0 || strings.Join(b.Subventions, "") != "cepr" {
				t.Errorf("other project: %+v", b)
			}
			// A livrable name with a newline inside quotes.
			if _, err := c.Attributes(aude, "Vecteur\n2023"); err != nil {
				t.Errorf("quoted newline: %v", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(map[string]string)
		projet  string
		nom     string
		is      error
		mention []string
	}{
		{"missing file", func(f map[string]string) { delete(f, "subventions.csv") }, aude, "Ortho 2022", os.ErrNotExist, []string{"subventions.csv"}},
		{"missing column", func(f map[string]string) {
			f["livrables.csv"] = strings.Replace(f["livrables.csv"], "diffusion_layer", "couche", 1)
		}, aude, "Ortho 2022", nil, []string{"livrables.csv", "diffusion_layer"}},
		{"unknown project", nil, "00000000-0000-0000-0000-000000000000", "Ortho 2022", ErrUnknownProject, []string{"00000000-0000-0000-0000-000000000000"}},
		{"unknown livrable", nil, aude, "Ortho 2030", ErrUnknownLivrable, []string{"Ortho 2030", "Ortho 2022"}},
		{"project without livrables", nil, "6a1b0a7e-1d2c-4b5e-8f9a-000000000003", "x", ErrUnknownLivrable, []string{"x", "none"}},
		{"unknown status of a known livrable", func(f map[string]string) {
			f["livrables.csv"] += "6a1b0a7e-1d2c-4b5e-8f9a-000000000003,p,L,pcrs_image,,,,,,,,,,,,,,,\r\n"
		}, "6a1b0a7e-1d2c-4b5e-8f9a-000000000003", "L", livrable.ErrUnknownStatus, []string{"livre"}},
		{"bad number", func(f map[string]string) {
			f["livrables.csv"] = strings.Replace(f["livrables.csv"], ",30,60,120,", ",trente,60,120,", 1)
		}, aude, "Ortho 2022", nil, []string{"recouvr_lat", "trente"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := exports()
			if tt.edit != nil {
				tt.edit(files)
			}
			c, err := Load(context.Background(), writeExports(t, files), nil)
			if err == nil {
				_, err = c.Attributes(tt.projet, tt.nom)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not name %q", err, m)
				}
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Load(context.Background(), srv.URL+"/data/", srv.Client())
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want the 404 named", err)
	}
}
