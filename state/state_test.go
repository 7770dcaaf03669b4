package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
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
