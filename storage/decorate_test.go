package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted fails its first calls with the given errors, then succeeds.
type scripted struct {
	mu       sync.Mutex
	failures []error
	calls    int
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	delay    time.Duration
}

func (s *scripted) next() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.failures) > 0 {
		err := s.failures[0]
		s.failures = s.failures[1:]
		return err
	}
	return nil
}

func (s *scripted) List(ctx context.Context, cursor string) (Page, error) {
	if err := s.next(); err != nil {
		return Page{}, err
	}
	return Page{Objects: []Object{{Key: "a.tif", Size: 3}}}, nil
}

func (s *scripted) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err := s.next(); err != nil {
		return 0, err
	}
	return copy(p, "abc"[min(int(off), 3):]), io.EOF
}

func (s *scripted) Stat(context.Context, string) (Object, error) {
	if err := s.next(); err != nil {
		return Object{}, err
	}
	return Object{Key: "a.tif", Size: 3}, nil
}

func (s *scripted) Close() error { return nil }

var fast = RetryPolicy{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond}

func TestRetrying(t *testing.T) {
	notFound := errors.Join(ErrNotFound, errors.New("404"))
	tests := []struct {
		name      string
		failures  []error
		wantCalls int
		wantErr   error
	}{
		{"success", nil, 1, nil},
		{"transient then success", []error{Transient(errors.New("503")), Transient(errors.New("reset"))}, 3, nil},
		{"unexpected EOF is transient", []error{io.ErrUnexpectedEOF}, 2, nil},
		{"gives up after the bound", []error{Transient(errors.New("a")), Transient(errors.New("b")), Transient(errors.New("c")), Transient(errors.New("d")), Transient(errors.New("e"))}, 4, ErrTransient},
		{"not found is final", []error{notFound}, 1, ErrNotFound},
		{"other errors are final", []error{errors.New("403 Forbidden")}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{failures: tt.failures}
			var c Counter
			r := Retrying(Observed(s, &c), fast)
			p := make([]byte, 3)
			n, err := r.ReadAt(context.Background(), "a.tif", p, 0)
			if s.calls != tt.wantCalls || c.Requests() != int64(tt.wantCalls) {
				t.Errorf("%d calls, %d counted; want %d", s.calls, c.Requests(), tt.wantCalls)
			}
			switch {
			case tt.name == "other errors are final":
				if err == nil || err.Error() != "403 Forbidden" {
					t.Errorf("err = %v", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil || n != 3 || string(p) != "abc" {
					t.Errorf("read %q, %v", p[:n], err)
				}
			}
		})
	}
}

func TestRetryingShortReadIsEOF(t *testing.T) {
	r := Retrying(&scripted{}, fast)
	n, err := r.ReadAt(context.Background(), "a.tif", make([]byte, 10), 1)
	if n != 2 || !errors.Is(err, io.EOF) {
		t.Errorf("n=%d err=%v, want 2, EOF", n, err)
	}
}

func TestRetryingPerRequestTimeout(t *testing.T) {
	s := &scripted{delay: time.Second}
	var c Counter
	r := Retrying(Observed(s, &c), RetryPolicy{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond, Timeout: 20 * time.Millisecond})
	start := time.Now()
	_, err := r.ReadAt(context.Background(), "a.tif", make([]byte, 3), 0)
	if !errors.Is(err, ErrTransient) || c.Requests() != 2 {
		t.Errorf("err = %v after %d requests, want a transient timeout after 2", err, c.Requests())
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("a stalled request was not cut by the per-request timeout")
	}
}

func TestRetryingStopsOnCancel(t *testing.T) {
	s := &scripted{failures: []error{Transient(errors.New("503"))}}
	ctx, cancel := context.WithCancel(context.Background())
	r := Retrying(s, RetryPolicy{Attempts: 5, Base: time.Hour, Max: time.Hour})
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err := r.ReadAt(ctx, "a.tif", make([]byte, 3), 0)
	if !errors.Is(err, context.Canceled) || s.calls != 1 {
		t.Errorf("err = %v after %d calls, want cancellation during backoff", err, s.calls)
	}
}

func TestLimited(t *testing.T) {
	s := &scripted{delay: 5 * time.Millisecond}
	l := Limited(s, 3)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = l.ReadAt(context.Background(), "a.tif", make([]byte, 3), 0)
		}()
	}
	wg.Wait()
	if m := s.maxSeen.Load(); m != 3 {
		t.Errorf("%d requests at once, want the limit 3", m)
	}
}

func TestObservedCountsListAndBytes(t *testing.T) {
	var c Counter
	o := Observed(&scripted{}, &c)
	if _, err := o.List(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	_, _ = o.ReadAt(context.Background(), "a.tif", make([]byte, 3), 0)
	if c.Requests() != 2 || c.Bytes() != 3 {
		t.Errorf("requests=%d bytes=%d, want 2, 3", c.Requests(), c.Bytes())
	}
}

func TestWalkFollowsPagesAndFolders(t *testing.T) {
	pages := map[string]Page{
		"":       {Objects: []Object{{Key: "r.tif"}}, Dirs: []string{"a", "b"}, Next: "p2"},
		"p2":     {Objects: []Object{{Key: "r2.tif"}}},
		"a":      {Objects: []Object{{Key: "a/x.tif"}}, Dirs: []string{"a"}}, // a loop
		"b":      {Next: "b-next"},                                           // an empty page that says "more"
		"b-next": {Objects: []Object{{Key: "b/y.tif", Size: SizeUnknown}}},
	}
	var got []string
	err := Walk(context.Background(), pageStorage(pages), func(o Object) error {
		got = append(got, o.Key)
		if o.Key == "b/y.tif" && o.Size != 42 {
			t.Errorf("object listed without a size was not stat'ed: %+v", o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := "[a/x.tif b/y.tif r.tif r2.tif]"
	if s := fmtKeys(got); s != want {
		t.Errorf("walked %s, want %s", s, want)
	}
}

type pageStorage map[string]Page

func (p pageStorage) List(_ context.Context, c string) (Page, error) { return p[c], nil }
func (p pageStorage) ReadAt(context.Context, string, []byte, int64) (int, error) {
	return 0, io.EOF
}
func (p pageStorage) Stat(_ context.Context, key string) (Object, error) {
	return Object{Key: key, Size: 42}, nil
}
func (p pageStorage) Close() error { return nil }

func fmtKeys(k []string) string {
	s := "["
	for i, x := range k {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s + "]"
}

// slowPages lists a root of many folders, and records how many listings
// ran at once.
type slowPages struct {
	pageStorage
	inFlight, maxSeen atomic.Int32
}

func (s *slowPages) List(ctx context.Context, c string) (Page, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond)
	return s.pageStorage.List(ctx, c)
}

func TestWalkListsFoldersConcurrently(t *testing.T) {
	pages := pageStorage{"": {}}
	root := pages[""]
	for i := range 40 {
		d := fmt.Sprintf("d%02d", i)
		root.Dirs = append(root.Dirs, d)
		pages[d] = Page{Objects: []Object{{Key: d + "/x.tif", Size: 1}}}
	}
	pages[""] = root
	s := &slowPages{pageStorage: pages}
	var keys []string
	if err := Walk(context.Background(), s, func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 40 {
		t.Errorf("%d objects, want 40", len(keys))
	}
	if m := s.maxSeen.Load(); m < 2 || m > ListWorkers {
		t.Errorf("%d listings at once, want between 2 and %d", m, ListWorkers)
	}
}

func TestWalkStopsOnError(t *testing.T) {
	pages := pageStorage{"": {Dirs: []string{"a", "b"}}, "a": {Objects: []Object{{Key: "a/x", Size: 1}}}, "b": {Objects: []Object{{Key: "b/y", Size: 1}}}}
	boom := errors.New("stop here")
	err := Walk(context.Background(), pages, func(Object) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the callback's", err)
	}
}

// deepPages answers every folder with one deeper folder, forever.
type deepPages struct{ pageStorage }

func (deepPages) List(_ context.Context, c string) (Page, error) {
	return Page{Dirs: []string{c + "d/"}}, nil
}

func TestWalkDepthBounded(t *testing.T) {
	err := Walk(context.Background(), deepPages{}, func(Object) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "folders deep") {
		t.Errorf("err = %v, want the depth bound", err)
	}
}

// TestSizesByReadSeesThroughDecorators: every decorator relays
// ReadAtSize, so whether reads tell sizes is the backend's answer.
func TestSizesByReadSeesThroughDecorators(t *testing.T) {
	plain := pageStorage{}
	if SizesByRead(Compose(plain, ComposeConfig{Concurrency: 2, Observers: []Observer{&Counter{}}})) {
		t.Error("a composed backend without ReadAtSize said its reads tell sizes")
	}
	if !SizesByRead(Compose(sizing{plain}, ComposeConfig{Concurrency: 2})) {
		t.Error("a composed SizingReader said its reads do not tell sizes")
	}
}

type sizing struct{ Storage }

func (s sizing) ReadAtSize(ctx context.Context, key string, p []byte, off int64) (int, int64, error) {
	n, err := s.ReadAt(ctx, key, p, off)
	return n, SizeUnknown, err
}
