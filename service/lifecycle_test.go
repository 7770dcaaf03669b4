package service

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
)

// gate is a storage whose listing blocks until the test releases it (or
// the scan's context ends): scans stay running exactly as long as the test
// wants, with no timing involved.
type gate struct {
	entered   chan string // the storage's host, when its listing starts
	release   chan struct{}
	cancelled chan string
}

func newGate() *gate {
	return &gate{entered: make(chan string, 16), release: make(chan struct{}), cancelled: make(chan string, 16)}
}

func (g *gate) registry() *storage.Registry {
	r := backends.Registry()
	r.Register("gate", func(_ context.Context, u *url.URL, _ storage.Options) (storage.Storage, error) {
		return gated{g, u.Host}, nil
	})
	return r
}

type gated struct {
	g    *gate
	name string
}

func (s gated) List(ctx context.Context, cursor string) (storage.Page, error) {
	s.g.entered <- s.name
	select {
	case <-s.g.release:
		return storage.Page{}, nil
	case <-ctx.Done():
		s.g.cancelled <- s.name
		return storage.Page{}, ctx.Err()
	}
}

func (s gated) ReadAt(context.Context, string, []byte, int64) (int, error) {
	return 0, storage.ErrNotFound
}
func (s gated) Stat(context.Context, string) (storage.Object, error) {
	return storage.Object{}, storage.ErrNotFound
}
func (s gated) Close() error { return nil }

// putDue stores a storage of the gate, due since age.
func putDue(t *testing.T, s *Service, id string, age time.Duration) {
	t.Helper()
	r := &Record{ID: id, URL: "gate://" + id + "/", Name: id, Interval: time.Hour, NextScan: time.Now().Add(-age)}
	if err := s.put(r); err != nil {
		t.Fatal(err)
	}
}

// TestScanCap: at most MaxScans scans at once, counted exactly by the
// scheduler's hook while every scan is held open by the gate.
func TestScanCap(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	maxRunning := 0
	ended := make(chan string, 16)
	s, _, _ := newService(t, Config{AllowPrivateNetworks: true, MaxScans: 2, Registry: g.registry()}, func(s *Service) {
		for _, id := range []string{"a", "b", "c"} {
			putDue(t, s, id, time.Hour)
		}
		s.hooks.started = func(_ string, running int) {
			mu.Lock()
			maxRunning = max(maxRunning, running)
			mu.Unlock()
		}
		s.hooks.ended = func(id string) { ended <- id }
	})
	<-g.entered
	<-g.entered
	// Two scans hold both slots; the third is due: ask again, explicitly.
	s.queue("c")
	s.startDue(context.Background())
	s.mu.Lock()
	running := len(s.running)
	s.mu.Unlock()
	if running != 2 {
		t.Errorf("%d scans running with both slots held, want 2", running)
	}
	close(g.release)
	seen := map[string]bool{}
	for len(seen) < 3 {
		seen[<-ended] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if maxRunning != 2 {
		t.Errorf("at most %d scans ran at once, want exactly 2 (MaxScans)", maxRunning)
	}
}

// TestOldestDueFirst: with one slot, storages are scanned in the order
// they fell due, not in id order.
func TestOldestDueFirst(t *testing.T) {
	g := newGate()
	ended := make(chan string, 4)
	newService(t, Config{AllowPrivateNetworks: true, MaxScans: 1, Registry: g.registry()}, func(s *Service) {
		putDue(t, s, "a", 1*time.Hour)
		putDue(t, s, "b", 3*time.Hour)
		putDue(t, s, "c", 2*time.Hour)
		s.hooks.ended = func(id string) { ended <- id }
	})
	var order []string
	for range 3 {
		order = append(order, <-g.entered)
		g.release <- struct{}{}
		<-ended
	}
	if order[0] != "b" || order[1] != "c" || order[2] != "a" {
		t.Errorf("scan order %v, want [b c a] (oldest due first)", order)
	}
}

// TestDeleteDuringScan: DELETE cancels the running scan, returns once it
// has ended, and leaves neither state nor outputs; nothing can write the
// storage's state afterwards.
func TestDeleteDuringScan(t *testing.T) {
	g := newGate()
	ended := make(chan string, 4)
	s, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, Registry: g.registry()}, func(s *Service) {
		putDue(t, s, "d", time.Hour)
		s.hooks.ended = func(id string) { ended <- id }
	})
	objects := s.store.Namespace("objects:d")
	if err := objects.Put("dalles/t.tif", map[string]int{"size": 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.outDir("d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.outDir("d"), "dalles.geojson"), []byte(`{"type":"FeatureCollection","features":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	if code, raw := call(t, "DELETE", api.URL+"/storages/d", adminToken, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, raw)
	}
	select {
	case <-g.cancelled:
	default:
		t.Error("DELETE returned, the scan's context was not cancelled")
	}
	select {
	case <-ended:
	default:
		t.Error("DELETE returned before the scan ended")
	}
	if n, err := objects.Len(); n != 0 || err != nil {
		t.Errorf("%d state records left (%v)", n, err)
	}
	if err := s.store.Namespace("objects:d").Put("late", 1); !errors.Is(err, state.ErrDropped) {
		t.Errorf("a late write recreated the deleted storage's state: %v", err)
	}
	if _, err := os.Stat(s.outDir("d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outputs left: %v", err)
	}
	if _, err := s.get("d"); !errors.Is(err, errNotFound) {
		t.Errorf("record left: %v", err)
	}
	s.startDue(context.Background())
	s.mu.Lock()
	_, again := s.running["d"]
	s.mu.Unlock()
	if again {
		t.Error("a deleted storage was scanned again")
	}
}

// TestDamagedStateRefused: the service does not start on a damaged store,
// and says which file and what to do.
func TestDamagedStateRefused(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, "pcrs-indexer.db")
	if err := os.WriteFile(db, []byte("not a bbolt file, not at all: "+string(make([]byte, 8192))), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{DataDir: data, Registry: backends.Registry()})
	if !errors.Is(err, state.ErrDamaged) {
		t.Fatalf("New on a garbage store: %v, want state.ErrDamaged", err)
	}
	if msg := err.Error(); !containsAll(msg, db, "--reset-state") {
		t.Errorf("the error does not name the file and the way out: %s", msg)
	}
}

// TestGuardEverywhere: without --allow-private-networks every connection
// the service makes carries the dial-time guard, S3 settings come from the
// service only, and a download from a loopback storage never reaches it.
func TestGuardEverywhere(t *testing.T) {
	var hits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(upstream.Close)
	s, api, _ := newService(t, Config{}, func(s *Service) {
		if err := s.put(&Record{ID: "l", URL: upstream.URL + "/tiles/", Interval: time.Hour, NextScan: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	})
	if o := s.options(Record{}); o.Guard == nil || !o.Isolated {
		t.Errorf("storage options: guard %v, isolated %v", o.Guard, o.Isolated)
	}
	code, _ := call(t, "GET", api.URL+"/storages/l/files/dalles/t.tif?token="+s.signToken("l", time.Now().Add(time.Hour)), "", "")
	if code != http.StatusForbidden || hits.Load() != 0 {
		t.Errorf("download from a loopback storage: %d, %d upstream requests", code, hits.Load())
	}
	open, _, _ := newService(t, Config{AllowPrivateNetworks: true})
	if o := open.options(Record{}); o.Guard != nil {
		t.Error("--allow-private-networks still guards")
	}
}
