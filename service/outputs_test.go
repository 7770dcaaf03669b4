package service

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
)

// writeOutput writes a storage's dalles.geojson of n tile features as the
// indexer does (indented), and a one-feature livrables.geojson.
func writeOutput(t *testing.T, s *Service, id string, n int) {
	t.Helper()
	type feature struct {
		Type       string         `json:"type"`
		Geometry   map[string]any `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection"}
	for i := range n {
		x, y := 2.0+float64(i%100)*0.002, 43.0+float64(i/100)*0.002
		fc.Features = append(fc.Features, feature{"Feature",
			map[string]any{"type": "Polygon", "coordinates": [][][2]float64{{{x, y}, {x + 0.002, y}, {x + 0.002, y + 0.002}, {x, y + 0.002}, {x, y}}}},
			map[string]any{"storage": id, "path": fmt.Sprintf("dalles/%s/tile-%06d.jp2", id, i), "size": 4_000_000 + i, "epsg": 2154, "status": "readable"}})
	}
	raw, err := json.MarshalIndent(fc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := s.outDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dalles.geojson"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	fc.Features = fc.Features[:1]
	raw, _ = json.Marshal(fc)
	if err := os.WriteFile(filepath.Join(dir, "livrables.geojson"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func heapAllocs() uint64 {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

func get(t *testing.T, u string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestMergedOutputs: the merged dalles are built once per publish (each
// storage's output read once), served from disk: 40 concurrent requests
// of a multi-MB merged output allocate a small fraction of what reading
// it per request would, gzip and ETag/304 included.
func TestMergedOutputs(t *testing.T) {
	const storages, tiles, clients = 4, 4000, 40
	s, api, _ := newService(t, Config{AllowPrivateNetworks: true}, func(s *Service) {
		for i := range storages {
			id := fmt.Sprintf("s%d", i)
			if err := s.put(&Record{ID: id, URL: "https://example.org/" + id + "/", Interval: time.Hour, NextScan: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			writeOutput(t, s, id, tiles)
		}
	})
	before := s.merged.reads.Load()
	if err := s.rebuildMerged(); err != nil { // as a publish does
		t.Fatal(err)
	}
	if reads := s.merged.reads.Load() - before; reads != 2*storages {
		t.Fatalf("a build read %d storage outputs, want %d", reads, 2*storages)
	}
	reads := s.merged.reads.Load()

	resp, plain := get(t, api.URL+"/dalles.geojson", map[string]string{"Accept-Encoding": "identity"})
	var fc struct{ Features []json.RawMessage }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(plain, &fc) != nil || len(fc.Features) != storages*tiles {
		t.Fatalf("merged dalles: %d, %d features of %d", resp.StatusCode, len(fc.Features), storages*tiles)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("plain answer: ETag %q, Content-Encoding %q", etag, resp.Header.Get("Content-Encoding"))
	}

	var wg sync.WaitGroup
	var served atomic.Int64
	start := heapAllocs()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", api.URL+"/dalles.geojson", nil)
			req.Header.Set("Accept-Encoding", "identity")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			served.Add(n)
		}()
	}
	wg.Wait()
	allocated := heapAllocs() - start
	if served.Load() != int64(clients*len(plain)) {
		t.Errorf("served %d bytes, want %d", served.Load(), clients*len(plain))
	}
	// Reading and decoding the outputs per request allocates at least
	// their size per request (here over 40 × %d bytes).
	t.Logf("merged output %d bytes (%.1f MiB); %d concurrent requests allocated %.2f MiB in all", len(plain), float64(len(plain))/(1<<20), clients, float64(allocated)/(1<<20))
	if limit := uint64(len(plain)) * clients / 8; allocated > limit || allocated > 200<<20 {
		t.Errorf("%d concurrent requests allocated %d bytes, want under %d", clients, allocated, min(limit, 200<<20))
	}
	if r := s.merged.reads.Load(); r != reads {
		t.Errorf("requests read %d storage outputs, want none", r-reads)
	}

	resp, zipped := get(t, api.URL+"/dalles.geojson", map[string]string{"Accept-Encoding": "br, gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == etag || len(zipped) >= len(plain)/3 {
		t.Errorf("gzip answer: %q, ETag %q (plain %q), %d bytes of %d", resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"), etag, len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain) {
		t.Error("the gzip copy differs from the plain output")
	}
	if resp, _ := get(t, api.URL+"/dalles.geojson", map[string]string{"Accept-Encoding": "gzip;q=0"}); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	if resp, body := get(t, api.URL+"/dalles.geojson", map[string]string{"Accept-Encoding": "identity", "If-None-Match": etag}); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %d, %d bytes, want 304", resp.StatusCode, len(body))
	}

	// A storage goes: the merged output changes, with its ETag.
	if err := s.storages.Delete("s0"); err != nil {
		t.Fatal(err)
	}
	if err := s.rebuildMerged(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, api.URL+"/dalles.geojson", map[string]string{"Accept-Encoding": "identity", "If-None-Match": etag}); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Errorf("after a change: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if entries, _ := os.ReadDir(s.mergedDir()); len(entries) != 4 {
		t.Errorf("%d files in the merged folder, want 4 (2 outputs × plain and gzip)", len(entries))
	}
}

// memStorage serves one in-memory object and counts the reads reaching it.
type memStorage struct {
	data  []byte
	reads *atomic.Int64
}

func (m memStorage) List(context.Context, string) (storage.Page, error) {
	return storage.Page{Objects: []storage.Object{{Key: "f.bin", Size: int64(len(m.data))}}}, nil
}

func (m memStorage) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	m.reads.Add(1)
	if key != "f.bin" {
		return 0, storage.ErrNotFound
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memStorage) Stat(_ context.Context, key string) (storage.Object, error) {
	if key != "f.bin" {
		return storage.Object{}, storage.ErrNotFound
	}
	return storage.Object{Key: key, Size: int64(len(m.data)), ModTime: time.Unix(1700000000, 0)}, nil
}

func (m memStorage) Close() error { return nil }

// TestRangeFlood: a download asking for 10,000 ranges costs a handful of
// upstream reads, and a few ranges are still served as ranges.
func TestRangeFlood(t *testing.T) {
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 31 / 7)
	}
	var reads atomic.Int64
	reg := backends.Registry()
	reg.Register("mem", func(context.Context, *url.URL, storage.Options) (storage.Storage, error) {
		return memStorage{data, &reads}, nil
	})
	s, api, _ := newService(t, Config{AllowPrivateNetworks: true, Registry: reg}, func(s *Service) {
		if err := s.put(&Record{ID: "m", URL: "mem://m/", Interval: time.Hour, NextScan: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	})
	file := api.URL + "/storages/m/files/f.bin?token=" + s.signToken("m", time.Now().Add(time.Hour))

	ranges := make([]string, 10_000)
	for i := range ranges {
		ranges[i] = fmt.Sprintf("%d-%d", i*20, i*20)
	}
	resp, body := get(t, file, map[string]string{"Range": "bytes=" + strings.Join(ranges, ",")})
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("10,000 ranges: %d, %d bytes; want the whole file (200)", resp.StatusCode, len(body))
	}
	if n := reads.Load(); n > 4 {
		t.Errorf("10,000 ranges made %d upstream reads, want at most 4", n)
	}

	reads.Store(0)
	resp, body = get(t, file, map[string]string{"Range": "bytes=10-19,1000-1009,200000-200009"})
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
		!bytes.Contains(body, data[1000:1010]) || !bytes.Contains(body, data[200000:200010]) {
		t.Errorf("3 ranges: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := reads.Load(); n > 2 {
		t.Errorf("3 ranges in one chunk made %d upstream reads, want 1 (2 with the size check)", n)
	}
}

// TestSymlinkOutOfRoot: a file storage's links may not lead a download
// outside its folder; links inside it work.
func TestSymlinkOutOfRoot(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "shadow")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, []byte("root:secret"), 0o600))
	must(os.MkdirAll(filepath.Join(root, "dalles"), 0o700))
	must(os.WriteFile(filepath.Join(root, "dalles", "ok.tif"), []byte("tile"), 0o600))
	must(os.Symlink(secret, filepath.Join(root, "dalles", "evil.tif")))
	must(os.Symlink(outside, filepath.Join(root, "dalles", "up")))
	must(os.Symlink("ok.tif", filepath.Join(root, "dalles", "alias.tif")))
	s, api, _ := newService(t, Config{AllowFileStorages: true}, func(s *Service) {
		must(s.put(&Record{ID: "f", URL: "file://" + root, Interval: time.Hour, NextScan: time.Now().Add(time.Hour)}))
	})
	token := s.signToken("f", time.Now().Add(time.Hour))
	for key, want := range map[string]int{"dalles/ok.tif": 200, "dalles/alias.tif": 200, "dalles/evil.tif": 403, "dalles/up/shadow": 403} {
		code, body := call(t, "GET", api.URL+"/storages/f/files/"+key+"?token="+token, "", "")
		if code != want || bytes.Contains(body, []byte("root:secret")) {
			t.Errorf("%s: %d %q, want %d", key, code, body, want)
		}
	}
}
