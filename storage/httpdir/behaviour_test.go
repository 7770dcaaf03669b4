package httpdir_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
)

// TestIgnoredRange: a server that ignores Range answers 200 with the whole
// object; the read takes what it needs and drops the connection.
func TestIgnoredRange(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for off := 0; off < len(body); off += 32 << 10 {
			n, err := w.Write(body[off : off+32<<10])
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	s := open(t, srv.URL+"/")
	p := make([]byte, 100)
	n, err := s.ReadAt(context.Background(), "big.tif", p, 1000)
	if err != nil || n != 100 || !bytes.Equal(p, body[1000:1100]) {
		t.Fatalf("read %d, %v: %q", n, err, p[:n])
	}
	s.Close()
	srv.CloseClientConnections()
	if w := written.Load(); w > 16<<20 {
		t.Errorf("the server wrote %d MiB for a 100-byte read", w>>20)
	}
}

func TestRedirectsStayInside(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<a href="secret.tif">secret.tif</a>`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/tiles/":
			fmt.Fprint(w, `<a href="sub">sub</a> <a href="away/">away/</a> <a href="/tiles/">self</a> <a href="../">up</a>`)
		case "/tiles/sub":
			http.Redirect(w, r, "/tiles/sub/", http.StatusMovedPermanently)
		case "/tiles/sub/":
			fmt.Fprint(w, `<a href="a.tif">a.tif</a> 02-Jan-2024 03:04   7 <a href="/tiles/">loop</a>`)
		case "/tiles/away/":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s := open(t, srv.URL+"/tiles")
	// "sub" has no slash: the link is taken as a file, sized by HEAD, which
	// follows the redirect to the folder: not a file. The folder link
	// "away/" redirects off the host: an error, not a crawl elsewhere.
	_, err := s.List(context.Background(), "away/")
	if err == nil || !strings.Contains(err.Error(), "leaves the storage") {
		t.Errorf("redirect off the storage: err = %v", err)
	}
	page, err := s.List(context.Background(), "sub/")
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "sub/a.tif" || page.Objects[0].Size != 7 || len(page.Dirs) != 0 {
		t.Errorf("sub/: %+v, %v", page, err)
	}
}

// TestRedirectsResolved: behind a server that resolves dot segments, as
// most do, a redirect to "/tiles/%2e%2e/other/" or "/tiles/../other/" is
// out of the storage and refused before any request reaches /other/;
// adding a trailing slash, or naming the same host in full, is followed.
func TestRedirectsResolved(t *testing.T) {
	var outside atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirect := func(to string) {
			w.Header().Set("Location", to) // as is: http.Redirect would clean it
			w.WriteHeader(http.StatusFound)
		}
		switch p := path.Clean(r.URL.Path); {
		case !strings.HasPrefix(p, "/tiles"):
			outside.Add(1)
			fmt.Fprint(w, `<title>Index of /other/</title><a href="secret.tif">secret.tif</a>`)
		case r.URL.Path == "/tiles/escaped/":
			redirect("/tiles/%2e%2e/other/")
		case r.URL.Path == "/tiles/dots/":
			redirect("/tiles/../other/")
		case r.URL.Path == "/tiles/full/":
			redirect(srv.URL + "/tiles/real/")
		case r.URL.Path == "/tiles/a.tif":
			redirect("/tiles/a.tif/") // a folder's name, asked as a file
		case r.URL.Path == "/tiles/real/" || r.URL.Path == "/tiles/a.tif/":
			fmt.Fprint(w, `<a href="b.tif">b.tif</a> 02-Jan-2024 03:04   7`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s := open(t, srv.URL+"/tiles/")
	for _, folder := range []string{"escaped/", "dots/"} {
		_, err := s.List(context.Background(), folder)
		if err == nil || !strings.Contains(err.Error(), "leaves the storage") || !strings.Contains(err.Error(), "resolves to /other/") || errors.Is(err, storage.ErrTransient) {
			t.Errorf("%s: err = %v, want a final refusal: leaves the storage, resolves to /other/", folder, err)
		}
	}
	if n := outside.Load(); n != 0 {
		t.Errorf("%d requests reached /other/", n)
	}
	page, err := s.List(context.Background(), "full/")
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "real/b.tif" {
		t.Errorf("full/: %+v, %v; want real/b.tif", page, err)
	}
	if _, err := s.Stat(context.Background(), "a.tif"); err != nil {
		t.Errorf("a.tif, redirected to a.tif/: %v", err)
	}
}

func TestBasicAuthAndErrors(t *testing.T) {
	const password = "s3cr3t-pw"
	var fail atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "owner" || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if fail.Load() > 0 {
			fail.Add(-1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/gone.tif" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `<a href="x.tif">x.tif</a>`)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://owner@", 1) + "/"
	s := openWithPassword(t, u, password)
	if _, err := s.List(context.Background(), ""); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	fail.Store(1)
	_, err := s.List(context.Background(), "")
	if !errors.Is(err, storage.ErrTransient) || strings.Contains(err.Error(), password) {
		t.Errorf("503: err = %v, want transient and no password", err)
	}
	if _, err := s.ReadAt(context.Background(), "gone.tif", make([]byte, 4), 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("404: err = %v", err)
	}
	noPw := open(t, u)
	if _, err := noPw.List(context.Background(), ""); err == nil || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the password: err = %v, want a final 401", err)
	}
}

// TestHTTPS: listings and ranged reads over TLS.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "z"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "z", "a b.tif"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.StripPrefix("/tiles/", http.FileServer(http.Dir(dir))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/tiles/")
	s, err := httpdir.New(u, "", srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	var got []storage.Object
	if err := storage.Walk(context.Background(), s, func(o storage.Object) error { got = append(got, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "z/a b.tif" || got[0].Size != 10 {
		t.Fatalf("listed %+v", got)
	}
	p := make([]byte, 4)
	if n, err := s.ReadAt(context.Background(), "z/a b.tif", p, 3); err != nil || string(p[:n]) != "3456" {
		t.Errorf("read %q, %v", p[:n], err)
	}
}
