package local_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// walkAll walks s, keeping every object, failed ones included.
func walkAll(t *testing.T, s storage.Storage) map[string]storage.Object {
	t.Helper()
	got := map[string]storage.Object{}
	if err := storage.Walk(t.Context(), s, func(o storage.Object) error { got[o.Key] = o; return nil }); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return got
}

// TestLinksStayInsideAndLoopsEnd: a link back to its own folder ends the
// walk with the loop reported; links out of the root list nothing outside.
func TestLinksStayInsideAndLoopsEnd(t *testing.T) {
	outside := t.TempDir()
	servertest.WriteTree(t, outside, map[string][]byte{"secret.tif": []byte("outside")}, storagetest.ModTime)
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"dir/x.tif": []byte("x"), "other/y.tif": []byte("yy")}, storagetest.ModTime)
	links := map[string]string{
		"dir/a":        filepath.Join(root, "dir"),           // a loop, absolute
		"dir/b":        "..",                                 // a loop to the root, relative
		"dir/c":        "../other",                           // inside: followed
		"out":          outside,                              // a folder outside
		"out.tif":      filepath.Join(outside, "secret.tif"), // a file outside
		"dir/up":       "../..",                              // above the root
		"dangling.tif": "nowhere.tif",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	got := walkAll(t, s)
	for _, key := range []string{"dir/x.tif", "other/y.tif", "dir/c/y.tif"} {
		if o, ok := got[key]; !ok || o.Err != nil {
			t.Errorf("%s: %+v, want listed", key, o)
		}
	}
	for key, want := range map[string]error{
		"dir/a/": storage.ErrLoop, "dir/b/": storage.ErrLoop,
		"out/": storage.ErrBadKey, "out.tif": storage.ErrBadKey, "dir/up/": storage.ErrBadKey,
		"dangling.tif": storage.ErrNotFound,
	} {
		if o, ok := got[key]; !ok || !errors.Is(o.Err, want) {
			t.Errorf("%s: %+v, want reported with %v", key, o, want)
		}
	}
	for key, o := range got {
		if strings.Contains(key, "secret") || (strings.HasPrefix(key, "out/") && key != "out/") || (o.Err == nil && strings.Count(key, "/") > 2) {
			t.Errorf("listed %q: outside the root or through a loop", key)
		}
	}
	if _, err := s.ReadAt(t.Context(), "out/secret.tif", make([]byte, 1), 0); !errors.Is(err, storage.ErrBadKey) {
		t.Errorf("reading through a link out of the root: err = %v, want ErrBadKey", err)
	}
}

// TestOneBadNameIsOneProblem: a file name the storage cannot address again
// comes back with its error; the others are listed.
func TestOneBadNameIsOneProblem(t *testing.T) {
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{`back\slash.jp2`: []byte("b"), "ok.jp2": []byte("ok")}, storagetest.ModTime)
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	got := walkAll(t, s)
	if o := got[`back\slash.jp2`]; !errors.Is(o.Err, storage.ErrBadKey) {
		t.Errorf(`back\slash.jp2: %+v, want ErrBadKey`, o)
	}
	if o := got["ok.jp2"]; o.Err != nil || o.Size != 2 {
		t.Errorf("ok.jp2: %+v, want listed with size 2", o)
	}
}
