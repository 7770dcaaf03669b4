package scratch

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// TestFileUnlinked: the file is usable and has no name left in $TMPDIR.
func TestFileUnlinked(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	f, err := File("test")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still named: %v", f.Name(), err)
	}
	entries, err := os.ReadDir(os.Getenv("TMPDIR"))
	if err != nil || len(entries) != 0 {
		t.Errorf("$TMPDIR holds %d entries (%v)", len(entries), err)
	}
}

// TestFileFails: a $TMPDIR that does not exist is an error naming the use.
func TestFileFails(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()+"/absent")
	if _, err := File("spool"); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
