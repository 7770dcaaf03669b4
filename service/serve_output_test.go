package service

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outputs go gzip-compressed to a client taking it, with a strong ETag
// per representation; a matching If-None-Match gets 304, a range the
// plain bytes.
func TestServeOutputGzipETag(t *testing.T) {
	body := []byte(`{"type":"FeatureCollection","features":[` + strings.Repeat(`{"type":"Feature","geometry":null,"properties":{"nomImage":"x.jp2"}},`, 2000) + `{}]}`)
	p := filepath.Join(t.TempDir(), "dalles.geojson")
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(headers ...string) *httptest.ResponseRecorder {
		t.Helper()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		r := httptest.NewRequest(http.MethodGet, "/storages/x/dalles.geojson", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		serveOutput(w, r, "dalles.geojson", f, fi)
		return w
	}

	gz := get("Accept-Encoding", "gzip, deflate")
	if gz.Code != http.StatusOK || gz.Header().Get("Content-Encoding") != "gzip" || gz.Body.Len() >= len(body)/5 {
		t.Fatalf("gzip: %d %q, %d bytes for %d", gz.Code, gz.Header().Get("Content-Encoding"), gz.Body.Len(), len(body))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the gzip body does not decode to the file (%v)", err)
	}
	plain := get()
	if plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" || !bytes.Equal(plain.Body.Bytes(), body) {
		t.Fatalf("plain: %d %q", plain.Code, plain.Header().Get("Content-Encoding"))
	}
	gzTag, plainTag := gz.Header().Get("ETag"), plain.Header().Get("ETag")
	if gzTag == "" || plainTag == "" || gzTag == plainTag || strings.HasPrefix(gzTag, "W/") {
		t.Fatalf("ETags %q and %q: want two strong, different ones", gzTag, plainTag)
	}
	if w := get("Accept-Encoding", "gzip", "If-None-Match", gzTag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match on the gzip ETag: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get("If-None-Match", plainTag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match on the plain ETag: %d", w.Code)
	}
	if w := get("Accept-Encoding", "gzip", "If-None-Match", plainTag); w.Code != http.StatusOK {
		t.Errorf("the plain ETag must not validate the gzip representation: %d", w.Code)
	}
	if w := get("Accept-Encoding", "gzip", "Range", "bytes=0-9"); w.Code != http.StatusPartialContent || w.Body.String() != string(body[:10]) {
		t.Errorf("a range: %d %q", w.Code, w.Body.String())
	}
	// Many overlapping ranges would multiply the file: past maxRanges the
	// whole file is sent once instead (RFC 9110 allows it).
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-,", maxRanges+1), ",")
	if w := get("Range", many); w.Code != http.StatusOK || w.Body.Len() != len(body) {
		t.Errorf("%d ranges: %d, %d bytes for a file of %d", maxRanges+1, w.Code, w.Body.Len(), len(body))
	}
	if w := get("Range", "bytes=0-0,2-2"); w.Code != http.StatusPartialContent {
		t.Errorf("two ranges: %d", w.Code)
	}
}
