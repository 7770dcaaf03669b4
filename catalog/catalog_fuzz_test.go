package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/livrable"
)

// FuzzCatalog loads four hostile exports from a folder, as Load reads
// them from a folder or a URL, and joins every livrable they name. A
// catalog is refused as ErrInvalid, or each table keeps only its required
// columns, trimmed, with no more rows than lines nor bytes than the file;
// and each join either fails the same way every time, or gives
// attributes that pass livrable's own Validate, can be published (the
// outputs are JSON), name the project and livrable asked, and list
// distinct non-empty subventions and acteurs. A join is asked several
// times: the same catalog must always give the same answer, error
// included.
func FuzzCatalog(f *testing.F) {
	base := exports()
	add := func(edit func(map[string]string)) {
		files := exports()
		if edit != nil {
			edit(files)
		}
		f.Add([]byte(files["projets.csv"]), []byte(files["livrables.csv"]), []byte(files["subventions.csv"]), []byte(files["tours-de-table.csv"]))
	}
	add(nil)
	add(func(m map[string]string) {
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], ",30,60,120,", ",trente,60,120,", 1)
	})
	add(func(m map[string]string) {
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], ",30,60,120,", ",\"30,5\",0x1p-2,1e308,", 1)
	})
	add(func(m map[string]string) {
		// Words a number parser may take for one (NaN, Inf).
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], ",30,60,120,", ",30,60,nano,", 1)
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], "Hérault,Ortho 2022,pcrs_image,,ferme,,,,,,,,", "Hérault,Ortho 2022,pcrs_image,,ferme,,,,,,,info,", 1)
	})
	add(func(m map[string]string) {
		m["projets.csv"] = strings.Replace(m["projets.csv"], "2023-05-10", "2023-05-10T23:59:59-12:00", 1)
	})
	add(func(m map[string]string) {
		m["projets.csv"] = strings.Replace(m["projets.csv"], "2023-05-10", "10/05/2023", 1)
	})
	add(func(m map[string]string) {
		m["projets.csv"] = strings.Replace(m["projets.csv"], "2019-01-10", "0000-01-01 00:00:00", 1)
	})
	add(func(m map[string]string) {
		// Two livrables of one project with the same name.
		m["livrables.csv"] += aude + ",x,Ortho 2022,pcrs_image,,,,,,,,,,,,,,,\r\n"
	})
	add(func(m map[string]string) {
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], "ref_projet", " ref_projet ", 1)
		m["subventions.csv"] = "\ufeff\ufeffref_projet,nature\n"
		m["tours-de-table.csv"] = "ref_projet,nom_acteur,ref_projet\n" + aude + ",a,b\n"
	})
	add(func(m map[string]string) {
		m["projets.csv"] = strings.Replace(m["projets.csv"], "disponible,2019", "disponible\x00,2019", 1)
		m["livrables.csv"] = strings.Replace(m["livrables.csv"], "Ortho 2022", "\xff\xfe", 1)
	})
	for _, broken := range []string{"", "\ufeff", "a,b\n", "\"unterminated\n", "x\"y\n", strings.Repeat(",", 500) + "\n"} {
		f.Add([]byte(base["projets.csv"]), []byte(broken), []byte(base["subventions.csv"]), []byte(base["tours-de-table.csv"]))
	}
	// One folder a fuzzing process, its files written over at each input.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, projets, livrables, subventions, tours []byte) {
		raw := map[string][]byte{"projets.csv": projets, "livrables.csv": livrables, "subventions.csv": subventions, "tours-de-table.csv": tours}
		for name, b := range raw {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Load(context.Background(), dir, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("a catalog read but refused without ErrInvalid: %v", err)
			}
			return
		}
		for name, tab := range map[string]table{"projets.csv": c.projets, "livrables.csv": c.livrables, "subventions.csv": c.subventions, "tours-de-table.csv": c.tours} {
			checkTable(t, name, tab, raw[name])
		}
		type ask struct{ projet, nom string }
		var asks []ask
		for _, p := range c.projets.rows {
			for _, l := range c.livrables.rows {
				if l["ref_projet"] == p["id_projet"] && len(asks) < 8 {
					asks = append(asks, ask{p["id_projet"], l["nom"]})
				}
			}
			if len(asks) < 12 {
				asks = append(asks, ask{p["id_projet"], "absent"})
			}
		}
		asks = append(asks, ask{"absent", "absent"})
		for _, q := range asks {
			a, err := c.Attributes(q.projet, q.nom)
			first := describe(a, err)
			// Map order is random: ask a failed join again a few times.
			for range map[bool]int{true: 1, false: 8}[err == nil] {
				if again := describe(c.Attributes(q.projet, q.nom)); again != first {
					t.Fatalf("Attributes(%q, %q) answered %s, then %s", q.projet, q.nom, first, again)
				}
			}
			if err != nil {
				continue
			}
			if err := a.Validate(); err != nil {
				t.Errorf("Attributes(%q, %q) are invalid: %v", q.projet, q.nom, err)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Errorf("Attributes(%q, %q) cannot be published: %v", q.projet, q.nom, err)
			}
			if a.Projet != q.projet || a.Nom != q.nom {
				t.Errorf("Attributes(%q, %q) are those of %q, %q", q.projet, q.nom, a.Projet, a.Nom)
			}
			for what, list := range map[string][]string{"subventions": a.Subventions, "acteurs": a.Acteurs} {
				seen := map[string]bool{}
				for _, s := range list {
					if s == "" || seen[s] {
						t.Errorf("%s %q: empty or repeated %q", what, list, s)
					}
					seen[s] = true
				}
				if list == nil {
					t.Errorf("%s nil", what)
				}
			}
		}
	})
}

// checkTable: the required columns only, trimmed, within the file's bytes
// and lines.
func checkTable(t *testing.T, name string, tab table, raw []byte) {
	t.Helper()
	if lines := bytes.Count(raw, []byte("\n")) + 1; len(tab.rows) > lines {
		t.Errorf("%s: %d rows out of %d lines", name, len(tab.rows), lines)
	}
	total := 0
	for _, row := range tab.rows {
		if len(row) != len(files[name]) {
			t.Errorf("%s: row %q, want the columns %q", name, row, files[name])
		}
		for _, col := range files[name] {
			v, ok := row[col]
			if !ok || strings.TrimSpace(v) != v {
				t.Errorf("%s: column %s %q (present: %v)", name, col, v, ok)
			}
			total += len(v)
		}
	}
	if total > len(raw) {
		t.Errorf("%s: %d bytes of values out of a %d-byte file", name, total, len(raw))
	}
}

// describe prints a join's answer with the numbers' values, not their
// addresses.
func describe(a *livrable.Attributes, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	c := *a
	num := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(math.Float64bits(*p))
	}
	c.Focale, c.RecouvrLat, c.RecouvrLon = nil, nil, nil
	return fmt.Sprintf("%#v %s %s %s", c, num(a.Focale), num(a.RecouvrLat), num(a.RecouvrLon))
}
