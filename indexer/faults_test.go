package indexer_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
)

// faulty fails the first attempt at every request in one of four ways —
// 503, 429, a stall past the request timeout, a connection cut half-way
// through the body — and serves the retries.
type faulty struct {
	next   http.Handler
	mu     sync.Mutex
	seen   map[string]bool
	counts [4]atomic.Int32
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Method + " " + r.URL.Path + " " + r.Header.Get("Range")
	f.mu.Lock()
	first := !f.seen[id]
	f.seen[id] = true
	f.mu.Unlock()
	if !first {
		f.next.ServeHTTP(w, r)
		return
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	kind := h.Sum32() % 4
	f.counts[kind].Add(1)
	switch kind {
	case 0:
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	case 1:
		w.Header().Set("Retry-After", "0")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case 2:
		select { // stall: the client's per-request timeout must cut it
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	case 3:
		rec := httptest.NewRecorder()
		f.next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
		if r.Method == http.MethodHead {
			_ = buf.Flush() // cut before the headers end
			return
		}
		if rec.Header().Get("Content-Length") == "" {
			rec.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		_ = rec.Header().Write(buf)
		buf.WriteString("\r\n")
		buf.Write(body[:len(body)/2])
		_ = buf.Flush()
	}
}

// TestTransientFaultsLoseNothing scans the same storage cleanly and through
// faults: same tiles, same problems, nothing unreachable, nothing twice.
func TestTransientFaultsLoseNothing(t *testing.T) {
	dir := buildStorage(t)
	fs := http.StripPrefix("/tiles/", http.FileServer(http.Dir(dir)))
	clean := httptest.NewServer(fs)
	defer clean.Close()
	f := &faulty{next: fs, seen: map[string]bool{}}
	bad := httptest.NewServer(f)
	defer bad.Close()

	// The clean scan's requests get all the time they need: on a loaded
	// machine a 300 ms deadline made it retry (8 retries, seen once), and
	// the count of retries through faults is measured against it. The
	// faulty scan needs a short one to get past the stalls.
	scanHTTP := func(base string, timeout time.Duration) *indexer.Result {
		u, _ := url.Parse(base + "/tiles/")
		st, err := httpdir.New(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: u.String(), Name: "aude", Concurrency: 8,
			Retry: storage.RetryPolicy{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond, Timeout: timeout}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want, got := scanHTTP(clean.URL, time.Minute), scanHTTP(bad.URL, 300*time.Millisecond)
	for i := range f.counts {
		if f.counts[i].Load() == 0 {
			t.Errorf("fault kind %d never happened: the test proves nothing about it", i)
		}
	}
	if got.Report.Counts != want.Report.Counts {
		t.Errorf("counts through faults %+v, clean %+v", got.Report.Counts, want.Report.Counts)
	}
	if !reflect.DeepEqual(problemsOf(t, got), problemsOf(t, want)) {
		t.Errorf("problems through faults %+v\nclean %+v", problemsOf(t, got), problemsOf(t, want))
	}
	seen := map[string]bool{}
	gotTiles, wantTiles := tilesOf(t, got), tilesOf(t, want)
	for i, tile := range gotTiles {
		if seen[tile.Object.Key] {
			t.Errorf("%s twice", tile.Object.Key)
		}
		seen[tile.Object.Key] = true
		w := wantTiles[i]
		if tile.Object.Key != w.Object.Key || tile.Object.Size != w.Object.Size || !reflect.DeepEqual(tile.Header, w.Header) {
			t.Errorf("%s differs through faults: %+v vs %+v", tile.Object.Key, tile.Header, w.Header)
		}
	}
	if got.Report.IO.Requests <= want.Report.IO.Requests {
		t.Errorf("%d requests through faults, %d clean: retries were not counted", got.Report.IO.Requests, want.Report.IO.Requests)
	}
	// Every request beyond the clean scan's is a retry, and report.json
	// says how many: an unhealthy storage shows even when the scan passes.
	if want.Report.IO.Retries != 0 || got.Report.IO.Retries != got.Report.IO.Requests-want.Report.IO.Requests {
		t.Errorf("retries: %d clean, %d through faults; want 0 and %d", want.Report.IO.Retries, got.Report.IO.Retries, got.Report.IO.Requests-want.Report.IO.Requests)
	}
	t.Logf("faults injected (503, 429, stall, cut): %d %d %d %d; requests %d clean, %d faulty",
		f.counts[0].Load(), f.counts[1].Load(), f.counts[2].Load(), f.counts[3].Load(), want.Report.IO.Requests, got.Report.IO.Requests)
}
