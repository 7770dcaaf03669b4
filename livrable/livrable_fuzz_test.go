package livrable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// FuzzLoad reads an attributes file (YAML or JSON) as a hostile one.
// Either Load refuses it, with an error naming the file, or: the
// attributes pass Validate again, their calendrier and date are
// consistent with their status, they can be published (the outputs are
// JSON: json.Marshal must take them, so no NaN nor infinity), they hold
// no more strings than a small multiple of the file (YAML aliases repeat
// a value without repeating its bytes), the file held nothing beyond the
// one document read, and a second Load gives the same: attributes with
// several faults are always refused for the same one.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		`
projet: 6f3b3c1e-8a43-4c1e-9a8e-0d3c1b2a4f5e
nom: Aude 2023
statut: disponible
dates: {prod_en_cours: 2022-03-01, disponible: 2023-05-10}
licence: ouvert_etalab
resolution: 5
focale: 100.5
recouvrLat: 30
recouvrLon: 60
subventions: [feder, region]
acteurs: [SYADEN, IGN]
diffusion: wms
diffusionUrl: https://example.org/wms
diffusionLayer: pcrs
`,
		`{"projet": "x", "statut": "prod_en_cours", "dates": {"prod_en_cours": "2024-01-02"}}`,
		`{"nom": "\u0000\ud800", "acteurs": ["a", "a"], "focale": 1e308}`,
		"nom: \"\\xff\"\nlicence: |\n  multi\n  line\n",
		"statut: realise\ndateActualite: 0001-01-01\ndates: {realise: 9999-12-31}\n",
		"nom: &n Aude\nacteurs: [*n, *n]\nsubventions: [*n]\n",
		"nom: &n " + strings.Repeat("x", 100) + "\nacteurs: [" + strings.Repeat("*n, ", 59) + "*n]\n",
		"base: &b {nom: x}\n",
		"<<: {nom: x}\n",
		"focale: 0x10\nrecouvrLat: -1e-400\nrecouvrLon: 1_000\nresolution: -5\n",
		"acteurs: [" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "]\n",
		"nom: !!binary aGVsbG8=\nlicence: !!str 1\n",
		"statut: realise\n...\n",
		"",
		"---\n",
		"~\n",
		"[]\n",
		"\ufeffnom: bom\n",
		"nom: a\nnom: b\n",
		"license: x\n",
		"statut: finished\n",
		"statut: realise\ndates: {realise: 10/05/2023}\n",
		"dates: {realise: 2023-02-29}\n",
		"dates: {livre: 2023-01-01}\n",
		"nom: [1, 2]\n",
		"licence: .nan\nnom: -.Inf\nfocale: 2\n",
		"focale: .nab\n",
		"recouvrLat: -.ing\n",
		"\xff\xfe",
		"\x00",
		"nom: \"unterminated\n",
		strings.Repeat("- ", 1000),
		strings.Repeat("{a: ", 1000),
	} {
		f.Add([]byte(s))
	}
	// One file a fuzzing process, written over at each input.
	path := filepath.Join(f.TempDir(), "attributs.yaml")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Load(path)
		b, err2 := Load(path)
		if fmt.Sprint(err) != fmt.Sprint(err2) || canonical(a) != canonical(b) {
			t.Errorf("a second Load differs: %s %v, then %s %v", canonical(a), err, canonical(b), err2)
		}
		// Attributes with several faults must be reported by the same
		// one every time (map order is random: ask Validate many times).
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		var decoded Attributes
		if dec.Decode(&decoded) == nil {
			first := fmt.Sprint(decoded.Validate())
			for range 64 {
				if again := fmt.Sprint(decoded.Validate()); again != first {
					t.Fatalf("Validate says %q, then %q", first, again)
				}
			}
		}
		if err != nil {
			if a != nil {
				t.Errorf("attributes %s with the error %v", canonical(a), err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("the error %q does not name the file", err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Errorf("loaded, then invalid: %v", err)
		}
		switch c := a.CalendrierCode(); {
		case a.Statut == "" && c != "", a.Statut != "" && c == "":
			t.Errorf("status %q, calendrier %q", a.Statut, c)
		}
		if d := a.DateActualiteValue(); d != "" {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				t.Errorf("dateActualite %q: %v", d, err)
			}
		}
		for _, v := range []*float64{a.Resolution, a.Focale, a.RecouvrLat, a.RecouvrLon} {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
				t.Errorf("a number %v, which no JSON output can hold", *v)
			}
		}
		if _, err := json.Marshal(a); err != nil {
			t.Errorf("loaded, yet not publishable: %v", err)
		}
		if n := size(a); n > 16*len(raw)+1024 {
			t.Errorf("%d bytes of attributes out of a %d-byte file", n, len(raw))
		}
		dec = yaml.NewDecoder(bytes.NewReader(raw))
		var first, second yaml.Node
		if dec.Decode(&first) == nil {
			if err := dec.Decode(&second); !errors.Is(err, io.EOF) && !(err == nil && empty(&second)) {
				t.Errorf("a second YAML document (%v) was ignored", err)
			}
		}
	})
}

// canonical prints attributes with the numbers' values (not their
// addresses), NaN included.
func canonical(a *Attributes) string {
	if a == nil {
		return "<nil>"
	}
	c := *a
	num := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(math.Float64bits(*p))
	}
	c.Resolution, c.Focale, c.RecouvrLat, c.RecouvrLon = nil, nil, nil, nil
	return fmt.Sprintf("%#v %s %s %s %s", c, num(a.Resolution), num(a.Focale), num(a.RecouvrLat), num(a.RecouvrLon))
}

// size is the bytes of text the attributes hold, as an output writes
// them.
func size(a *Attributes) int {
	n := len(a.Projet) + len(a.Nom) + len(a.Statut) + len(a.DateActualite) + len(a.Licence) + len(a.Diffusion) + len(a.DiffusionURL) + len(a.DiffusionLayer)
	for k, v := range a.Dates {
		n += len(k) + len(v)
	}
	for _, s := range append(append([]string{}, a.Subventions...), a.Acteurs...) {
		n += len(s) + 1
	}
	return n
}

// empty says whether a YAML document holds nothing (a lone "---").
func empty(n *yaml.Node) bool {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || n.Kind == yaml.DocumentNode && len(n.Content) == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}
