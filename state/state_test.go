package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type rec struct {
	Size int64
	Tag  string
}

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Namespace("s3://a/"), s.Namespace("/data/b")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Put(fmt.Sprintf("k%02d", i), rec{int64(i), "x"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := b.Put("k01", rec{99, "other"}); err != nil {
		t.Fatal(err)
	}
	var r rec
	if ok, err := a.Get("k07", &r); !ok || err != nil || r.Size != 7 {
		t.Errorf("Get: %v %v %+v", ok, err, r)
	}
	if ok, _ := a.Get("nope", &r); ok {
		t.Error("found a missing key")
	}
	n, err := a.Prune(func(k string) bool { return k < "k10" })
	if err != nil || n != 40 {
		t.Errorf("pruned %d, %v; want 40", n, err)
	}
	if l, _ := a.Len(); l != 10 {
		t.Errorf("%d records left, want 10", l)
	}
	if l, _ := b.Len(); l != 1 {
		t.Errorf("the other storage's records were touched: %d", l)
	}

	// A second process (here: a second open) is refused, not blocked.
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, _ := s.Namespace("s3://a/").Get("k03", &r); !ok || r.Size != 3 {
		t.Errorf("records lost across reopen: %+v", r)
	}
}

// damagedFile writes a store with enough records to span many pages, then
// lets spoil change the file.
func damagedFile(t *testing.T, spoil func(path string, size int64)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// One transaction: Puts one by one would each wait for a batch.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("objects:s3://a/"))
		for i := 0; i < 2000 && err == nil; i++ {
			err = b.Put(fmt.Appendf(nil, "dalles/tile-%05d.jp2", i), bytes.Repeat([]byte("x"), 100))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	spoil(path, fi.Size())
	return path
}

// TestDamagedFile: a truncated, overwritten or garbage state file is
// ErrDamaged naming the file and the way out, never a panic.
func TestDamagedFile(t *testing.T) {
	cases := map[string]func(path string, size int64){
		"truncated": func(path string, size int64) {
			if err := os.Truncate(path, size/2); err != nil {
				t.Fatal(err)
			}
		},
		"garbage": func(path string, size int64) {
			junk := make([]byte, size)
			for i := range junk {
				junk[i] = byte(i*7 + i/13)
			}
			if err := os.WriteFile(path, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"pages overwritten": func(path string, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Past the two meta pages and the freelist: the tree itself.
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(size/2)), size/4); err != nil {
				t.Fatal(err)
			}
		},
		"leaf pages overwritten": func(path string, _ int64) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			page := int64(os.Getpagesize())
			if _, err := f.WriteAt(bytes.Repeat([]byte{0x5A}, int(3*page)), 4*page); err != nil {
				t.Fatal(err)
			}
		},
		"empty": func(path string, _ int64) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			path := damagedFile(t, spoil)
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("a damaged file opened")
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--reset-state") {
				t.Fatalf("Open: %v; want ErrDamaged naming %s and --reset-state", err, path)
			}
			t.Log(err)
			aside, err := Reset(path)
			if err != nil || !strings.HasPrefix(aside, path+".damaged-") {
				t.Fatalf("Reset: %q, %v", aside, err)
			}
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("the damaged file is not kept aside: %v", err)
			}
			s, err = Open(path)
			if err != nil {
				t.Fatalf("after Reset: %v", err)
			}
			defer s.Close()
			if n, _ := s.Namespace("s3://a/").Len(); n != 0 {
				t.Errorf("after Reset: %d records, want a fresh store", n)
			}
		})
	}
}

// TestDropSeals: once a namespace is dropped, a late writer (a scan that
// ends after its storage was deleted) cannot bring its bucket back.
func TestDropSeals(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns := s.Namespace("id-1")
	if err := ns.Put("k", rec{1, "a"}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Drop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Namespace("id-1").Put("k2", rec{2, "b"}); !errors.Is(err, ErrDropped) {
		t.Errorf("Put after Drop: %v, want ErrDropped", err)
	}
	if n, _ := ns.Len(); n != 0 {
		t.Errorf("%d records after Drop", n)
	}
	if err := s.Namespace("id-2").Put("k", rec{3, "c"}); err != nil {
		t.Errorf("another namespace: %v", err)
	}
}

// TestClearKeepsTaking: Clear forgets every record of its namespace only,
// and the namespace takes new ones afterwards (Drop's seal is not set).
func TestClearKeepsTaking(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns, other := s.Namespace("id-1"), s.Namespace("id-2")
	for _, n := range []*Namespace{ns, other} {
		if err := n.Put("k", rec{1, "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.Clear(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ns.Len(); n != 0 {
		t.Errorf("%d records after Clear", n)
	}
	if n, _ := other.Len(); n != 1 {
		t.Errorf("another namespace lost its record: %d left", n)
	}
	if err := ns.Put("k2", rec{2, "b"}); err != nil {
		t.Errorf("Put after Clear: %v", err)
	}
	var got rec
	if ok, err := ns.Get("k2", &got); !ok || err != nil || got != (rec{2, "b"}) {
		t.Errorf("Get after Clear: %v %v %+v", ok, err, got)
	}
	if err := s.Namespace("never-used").Clear(); err != nil {
		t.Errorf("clearing an empty namespace: %v", err)
	}
}
