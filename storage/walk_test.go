package storage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// wideRoot is a root of n empty folders; List records the most goroutines
// seen while listing.
type wideRoot struct {
	pageStorage
	n          int
	goroutines atomic.Int64
}

func (w *wideRoot) List(_ context.Context, c string) (Page, error) {
	if g := int64(runtime.NumGoroutine()); g > w.goroutines.Load() {
		w.goroutines.Store(g) // racy max, but only ever grows from this List's own view
	}
	if c != "" {
		return Page{Objects: []Object{{Key: c + "/x.tif", Size: 1}}}, nil
	}
	var p Page
	for i := range w.n {
		p.Dirs = append(p.Dirs, fmt.Sprintf("d%d", i))
	}
	return p, nil
}

// TestWalkPoolIsFixed: 20,000 folders are listed by the fixed pool, not by a
// goroutine each.
func TestWalkPoolIsFixed(t *testing.T) {
	base := runtime.NumGoroutine()
	s := &wideRoot{n: 20_000}
	var n int
	if err := Walk(context.Background(), s, func(Object) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != s.n {
		t.Errorf("%d objects, want %d", n, s.n)
	}
	if g := s.goroutines.Load(); g > int64(base+ListWorkers+4) {
		t.Errorf("%d goroutines while walking, want at most %d", g, base+ListWorkers+4)
	}
}

// failingStat refuses to size one key.
type failingStat struct {
	pageStorage
	bad   string
	stats atomic.Int32
}

func (f *failingStat) Stat(ctx context.Context, key string) (Object, error) {
	f.stats.Add(1)
	if key == f.bad {
		return Object{}, fmt.Errorf("%w: HEAD %s: 404", ErrNotFound, key)
	}
	return f.pageStorage.Stat(ctx, key)
}

func TestWalkStatFailureIsTheObjectsProblem(t *testing.T) {
	pages := pageStorage{"": {Objects: []Object{{Key: "a.tif", Size: SizeUnknown}, {Key: "b.pdf", Size: SizeUnknown}, {Key: "c.tif", Size: SizeUnknown}}}}
	s := &failingStat{pageStorage: pages, bad: "b.pdf"}
	got := map[string]Object{}
	if err := Walk(context.Background(), s, func(o Object) error { got[o.Key] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	if o := got["b.pdf"]; !errors.Is(o.Err, ErrNotFound) || o.Size != SizeUnknown {
		t.Errorf("b.pdf: %+v, want its Stat's error", o)
	}
	for _, k := range []string{"a.tif", "c.tif"} {
		if o := got[k]; o.Err != nil || o.Size != 42 {
			t.Errorf("%s: %+v, want sized", k, o)
		}
	}

	s.stats.Store(0)
	got = map[string]Object{}
	w := Walker{NeedSize: func(o Object) bool { return strings.HasSuffix(o.Key, ".tif") }}
	if err := w.Walk(context.Background(), s, func(o Object) error { got[o.Key] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	if o := got["b.pdf"]; o.Err != nil || o.Size != SizeUnknown {
		t.Errorf("b.pdf not needed: %+v, want unsized and no error", o)
	}
	if n := s.stats.Load(); n != 2 {
		t.Errorf("%d stats, want 2 (the tiles)", n)
	}
}

// endlessPages answers every page with one object and a next page.
type endlessPages struct{ pageStorage }

func (endlessPages) List(_ context.Context, c string) (Page, error) {
	return Page{Objects: []Object{{Key: c + ".tif", Size: 1}}, Next: c + "n"}, nil
}

// fanOut answers every folder with two more.
type fanOut struct {
	pageStorage
	lists atomic.Int32
}

func (f *fanOut) List(_ context.Context, c string) (Page, error) {
	f.lists.Add(1)
	return Page{Dirs: []string{c + "a/", c + "b/"}}, nil
}

func TestWalkBounds(t *testing.T) {
	err := Walker{MaxPages: 50}.Walk(context.Background(), endlessPages{}, func(Object) error { return nil })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "50 listing pages") {
		t.Errorf("endless pages: err = %v, want ErrTooLarge at 50 pages", err)
	}
	err = Walker{MaxObjects: 30}.Walk(context.Background(), endlessPages{}, func(Object) error { return nil })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "30 objects") {
		t.Errorf("endless objects: err = %v, want ErrTooLarge at 30 objects", err)
	}
	f := &fanOut{}
	err = Walker{MaxFolders: 100}.Walk(context.Background(), f, func(Object) error { return nil })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "100 folders") {
		t.Errorf("fan-out: err = %v, want ErrTooLarge at 100 folders", err)
	}
	if n := f.lists.Load(); n > 100 {
		t.Errorf("fan-out: %d listings, want at most 100", n)
	}
}

// cancelling stops listing the endless fan-out after some folders.
type cancelling struct {
	fanOut
	after  int32
	cancel context.CancelFunc
}

func (c *cancelling) List(ctx context.Context, cur string) (Page, error) {
	if c.fanOut.lists.Load() == c.after {
		c.cancel()
	}
	return c.fanOut.List(ctx, cur)
}

func TestWalkEndsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &cancelling{after: 100, cancel: cancel}
	err := Walker{MaxFolders: 1 << 30, MaxDepth: 1 << 20}.Walk(ctx, s, func(Object) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := s.lists.Load(); n > 100+ListWorkers {
		t.Errorf("%d listings, want at most %d: the walk went on after the cancel", n, 100+ListWorkers)
	}
}

func TestComposeOrder(t *testing.T) {
	c := &Counter{}
	s := Compose(pageStorage{}, ComposeConfig{Observers: []Observer{c}, Concurrency: 3})
	l, ok := s.(limited)
	if !ok || cap(l.sem) != 3 {
		t.Fatalf("outermost %T, want limited to 3", s)
	}
	r, ok := l.Storage.(retrying)
	if !ok || r.p != DefaultRetry {
		t.Fatalf("then %T (%+v), want retrying with DefaultRetry", l.Storage, r.p)
	}
	if _, ok := r.Storage.(observed); !ok {
		t.Fatalf("innermost %T, want observed", r.Storage)
	}
}
