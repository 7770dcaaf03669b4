package livrable

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestLoadRefusesAliases: a YAML alias repeats a value without repeating
// its text, so a small file could hand out gigabytes of attributes (1,000
// copies of a 1,000-byte name here; 20,000 of 80 KB were 1.6 GB of JSON).
// Any alias is refused, with the line and what to do instead.
func TestLoadRefusesAliases(t *testing.T) {
	bomb := "nom: &n " + strings.Repeat("x", 1000) + "\nacteurs: [" + strings.Repeat("*n, ", 999) + "*n]\n"
	for name, body := range map[string]string{
		"bomb.yaml": bomb,
		"list.yaml": "subventions: &f [feder, region]\nacteurs: *f\n",
	} {
		p := writeFile(t, name, body)
		a, err := Load(p)
		if err == nil {
			// Said with what it costs: the text handed out against the
			// file's size.
			t.Errorf("%s loaded: %d acteurs, %d bytes of text out of a %d-byte file", name, len(a.Acteurs), size(a), len(body))
			continue
		}
		for _, want := range []string{p, "line ", "*", "alias"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", name, err, want)
			}
		}
	}
	// An anchor alone repeats nothing: harmless, and kept.
	if a, err := Load(writeFile(t, "anchor.yaml", "nom: &n Aude\n")); err != nil || a.Nom != "Aude" {
		t.Errorf("an anchor without alias: %+v, %v", a, err)
	}
	if _, err := Load(writeFile(t, "line.yaml", "nom: &n Aude\nlicence: x\nacteurs: [a, *n]\n")); err == nil || !strings.Contains(err.Error(), "line 3: *n") {
		t.Errorf("the alias's line: %v", err)
	}
}

// TestLoadRefusesHugeOrDeep: the walk looking for aliases stops at limits
// far above any attributes file, so that neither its length nor its depth
// grows with a hostile file.
func TestLoadRefusesHugeOrDeep(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"deep.yaml": {"acteurs: " + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + "\n", "nested more than 32 levels"},
		"long.yaml": {"acteurs: [" + strings.Repeat("a, ", maxNodes) + "a]\n", "more than 10000 values"},
	} {
		p := writeFile(t, name, c.body)
		if a, err := Load(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v (%d acteurs), want an error naming the file and saying %q", name, err, acteursOf(a), c.want)
		}
	}
	// Just under the limits still loads.
	p := writeFile(t, "many.yaml", "acteurs: ["+strings.Repeat("a, ", maxNodes-10)+"a]\n")
	if a, err := Load(p); err != nil || len(a.Acteurs) != maxNodes-9 {
		t.Errorf("%d acteurs: %v", acteursOf(a), err)
	}
}

// TestLoadPlainUnchanged: plain files load as a bare decoding (what Load
// did before it looked for aliases) reads them.
func TestLoadPlainUnchanged(t *testing.T) {
	for _, p := range []string{
		filepath.Join("..", "testdata", "demo-attributes.yaml"),
		writeFile(t, "a.json", `{"projet": "x", "statut": "prod_en_cours", "dates": {"prod_en_cours": "2024-01-02"}, "acteurs": ["a", "b"]}`),
		writeFile(t, "merge.yaml", "<<: {nom: x}\nstatut: realise\n"),
	} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		var want Attributes
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		got, err := Load(p)
		if err != nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: %+v, %v; want %+v", p, got, err, want)
		}
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func acteursOf(a *Attributes) int {
	if a == nil {
		return 0
	}
	return len(a.Acteurs)
}
