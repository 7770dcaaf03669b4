package livrable

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOneDocument: attributes followed by another document are refused (a
// licence after "---" would be lost); a trailing empty one is not.
func TestOneDocument(t *testing.T) {
	for body, ok := range map[string]bool{
		"nom: a\n":                  true,
		"nom: a\n---\n":             true,
		"nom: a\n---\nlicence: b\n": false,
		"nom: a\n---\n[1, 2]\n":     false,
		"recouvrLat: .inf\n":        false,
		"dates:\n  x: 1\n  y: 2\n":  false,
	} {
		p := filepath.Join(t.TempDir(), "a.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); (err == nil) != ok {
			t.Errorf("%q: %v, want accepted %v", body, err, ok)
		}
	}
}
