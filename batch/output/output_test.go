package output_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/batch/output"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
)

const bucket = "pcrs"

// recorder forwards every request to the real gateway (Host kept, so that
// signatures hold), records each write as "METHOD key", and answers 503
// instead of forwarding while refuse says so.
type recorder struct {
	mu     sync.Mutex
	writes []string
	refuse func(method, key string) bool
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

func newRecorder(t *testing.T, target string) (*recorder, string) {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{refuse: func(string, string) bool { return false }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		key := strings.TrimPrefix(req.URL.Path, "/"+bucket+"/")
		if req.Method == http.MethodPut || req.Method == http.MethodDelete {
			rec.mu.Lock()
			rec.writes = append(rec.writes, req.Method+" "+key)
			refuse := rec.refuse(req.Method, key)
			rec.mu.Unlock()
			if refuse {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>refused by the test</Message></Error>`))
				return
			}
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = tu.Scheme, tu.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func open(t *testing.T, srv servertest.S3Server, endpoint, location string) *output.Prefix {
	t.Helper()
	p, err := output.Open(context.Background(), location, storage.Options{
		S3Endpoint: endpoint, S3PathStyle: true, S3AccessKey: srv.Access, S3SecretKey: srv.Secret, Isolated: true,
	}, storage.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPublishReportLast: the extra files, then every output in name
// order, report.json after them all, then the stale failed report
// deleted; temporary files never leave the staging folder.
func TestPublishReportLast(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	rec, endpoint := newRecorder(t, srv.Endpoint)
	p := open(t, srv, endpoint, "s3://"+bucket+"/shards/s0").Sub("abc")
	dir, state := t.TempDir(), filepath.Join(t.TempDir(), "state.db")
	writeFiles(t, dir, map[string]string{"report.json": `{"n":2}`, "dalles.geojson": "D", "livrables.geojson": "L", "dalles.fgb": "F", ".report.json.123.tmp": "T"})
	writeFiles(t, filepath.Dir(state), map[string]string{"state.db": "S"})
	ctx := context.Background()
	if err := p.Upload(ctx, "report.failed.json", state); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, dir, output.File{Name: output.StateFile, Path: state}); err != nil {
		t.Fatal(err)
	}
	k := "shards/s0/abc/"
	want := []string{"PUT " + k + "report.failed.json", "PUT " + k + "state.db", "PUT " + k + "dalles.fgb", "PUT " + k + "dalles.geojson", "PUT " + k + "livrables.geojson", "PUT " + k + "report.json", "DELETE " + k + "report.failed.json"}
	if got := rec.log(); !slices.Equal(got, want) {
		t.Errorf("writes:\n%q\nwant\n%q", got, want)
	}
	got, err := os.ReadFile(filepath.Join(srv.Root, bucket, "shards", "s0", "abc", "report.json"))
	if err != nil || string(got) != `{"n":2}` {
		t.Errorf("report.json in the bucket: %q, %v", got, err)
	}
	dst := filepath.Join(t.TempDir(), "r.json")
	if found, err := p.Fetch(ctx, "report.json", dst); !found || err != nil {
		t.Fatalf("Fetch: %v %v", found, err)
	}
	if got, _ := os.ReadFile(dst); string(got) != `{"n":2}` {
		t.Errorf("fetched %q", got)
	}
	missing := filepath.Join(t.TempDir(), "none")
	if found, err := p.Fetch(ctx, "report.failed.json", missing); found || err != nil {
		t.Errorf("Fetch of a deleted object: %v %v, want not found", found, err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing object left a local file: %v", err)
	}
	names, err := open(t, srv, endpoint, "s3://"+bucket+"/shards/s0").Names(ctx)
	slices.Sort(names)
	if wantNames := []string{"abc/dalles.fgb", "abc/dalles.geojson", "abc/livrables.geojson", "abc/report.json", "abc/state.db"}; err != nil || !slices.Equal(names, wantNames) {
		t.Errorf("Names: %q %v, want %q", names, err, wantNames)
	}
}

// TestPublishStopsAtFailure: a write refused after its retries stops the
// publish there, naming the object; report.json is never written after a
// failed output, so the previous one stays.
func TestPublishStopsAtFailure(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	rec, endpoint := newRecorder(t, srv.Endpoint)
	p := open(t, srv, endpoint, "s3://"+bucket+"/out")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"report.json": "old", "dalles.geojson": "old", "livrables.geojson": "old"})
	ctx := context.Background()
	if err := p.Publish(ctx, dir); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"report.json": "new", "dalles.geojson": "new", "livrables.geojson": "new"})
	rec.refuse = func(method, key string) bool { return key == "out/livrables.geojson" }
	err := p.Publish(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "s3://pcrs/out/livrables.geojson") {
		t.Fatalf("Publish: %v, want an error naming livrables.geojson", err)
	}
	if n := strings.Count(strings.Join(rec.log(), "\n"), "PUT out/livrables.geojson"); n != 4 {
		t.Errorf("livrables.geojson tried %d times, want 1 + 2 retries of the first publish's 1", n)
	}
	if got, _ := os.ReadFile(filepath.Join(srv.Root, bucket, "out", "report.json")); string(got) != "old" {
		t.Errorf("report.json is %q after a failed publish, want the previous one", got)
	}
}

// TestCheck: a writable prefix passes and keeps nothing; a missing bucket
// fails naming it.
func TestCheck(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	ctx := context.Background()
	if err := open(t, srv, srv.Endpoint, "s3://"+bucket+"/out").Sub("abc").Check(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(srv.Root, bucket, "out", "abc"))
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	err := open(t, srv, srv.Endpoint, "s3://no-such-bucket/out").Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "s3://no-such-bucket/out/ is not writable") {
		t.Errorf("missing bucket: %v", err)
	}
}

// TestOpenRefuses: credentials in the text, and locations without a
// writable backend, are usage errors.
func TestOpenRefuses(t *testing.T) {
	for _, loc := range []string{"s3://AKIA:secret@pcrs/out", "https://example.org/out/", "gopher://x/y"} {
		_, err := output.Open(context.Background(), loc, storage.Options{Isolated: true}, storage.DefaultRetry)
		if !errors.Is(err, storage.ErrUnsupported) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want ErrUnsupported without the secret", storage.Redact(loc), err)
		}
	}
}

// TestLargeRoundTrip: objects larger than one ranged read, and exactly as
// large, come back whole.
func TestLargeRoundTrip(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	p := open(t, srv, srv.Endpoint, "s3://"+bucket+"/big")
	ctx, dir := context.Background(), t.TempDir()
	for _, size := range []int{8 << 20, 8<<20 + 123, 0} {
		content := make([]byte, size)
		for i := range content {
			content[i] = byte(i * 7 % 251)
		}
		src := filepath.Join(dir, "src")
		if err := os.WriteFile(src, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Upload(ctx, "x.bin", src); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "dst")
		if found, err := p.Fetch(ctx, "x.bin", dst); !found || err != nil {
			t.Fatalf("%d bytes: Fetch %v %v", size, found, err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
			t.Errorf("%d bytes: %d came back, not the same", size, len(got))
		}
	}
}
