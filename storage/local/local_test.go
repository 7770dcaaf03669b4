package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/local"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// Fixture writes files below a fresh folder.
func Fixture(t *testing.T, files map[string][]byte) storage.Storage {
	dir := t.TempDir()
	servertest.WriteTree(t, dir, files, storagetest.ModTime)
	// A link looping back to the root must not make the walk loop.
	if err := os.Symlink(dir, filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true}, Fixture)
}

func TestRefusesKeysLeavingRoot(t *testing.T) {
	s := Fixture(t, map[string][]byte{"a.tif": []byte("x")})
	for _, key := range []string{"../etc/passwd", "a/../../x", "/etc/passwd"} {
		if _, err := s.ReadAt(t.Context(), key, make([]byte, 1), 0); err == nil {
			t.Errorf("ReadAt(%q) succeeded, want an error", key)
		}
	}
}
