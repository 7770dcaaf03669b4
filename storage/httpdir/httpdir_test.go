package httpdir_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

func open(t *testing.T, raw string) storage.Storage {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpdir.New(u, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openWithPassword(t *testing.T, raw, password string) storage.Storage {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpdir.New(u, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func served(t *testing.T, files map[string][]byte) string {
	root, err := os.MkdirTemp("", "pcrs-http-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	servertest.WriteTree(t, root, files, storagetest.ModTime)
	return root
}

func TestConformanceNginx(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true, ModTimePrecision: time.Minute}, func(t *testing.T, files map[string][]byte) storage.Storage {
		return open(t, servertest.Nginx(t, served(t, files), false).URL)
	})
}

func TestConformanceNginxJSON(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true}, func(t *testing.T, files map[string][]byte) storage.Storage {
		return open(t, servertest.Nginx(t, served(t, files), true).URL)
	})
}

// Apache lists small files' exact sizes, to the minute, without ETags.
func TestConformanceApache(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true, ModTimePrecision: time.Minute}, func(t *testing.T, files map[string][]byte) storage.Storage {
		return open(t, servertest.Apache(t, served(t, files)).URL)
	})
}

// lighttpd sends no ETag nor Last-Modified for some names (a '?' in it):
// the listing's date stands in.
func TestConformanceLighttpd(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true}, func(t *testing.T, files map[string][]byte) storage.Storage {
		return open(t, servertest.Lighttpd(t, served(t, files)).URL)
	})
}

// TestEmptyFoldersAreListings: a real server's listing of an empty folder,
// at the root and below, reads as an empty listing, never as ErrNotAListing;
// a file where a folder was expected does not.
func TestEmptyFoldersAreListings(t *testing.T) {
	servers := map[string]func(t *testing.T, root string) string{
		"nginx":     func(t *testing.T, root string) string { return servertest.Nginx(t, root, false).URL },
		"nginxJSON": func(t *testing.T, root string) string { return servertest.Nginx(t, root, true).URL },
		"apache":    func(t *testing.T, root string) string { return servertest.Apache(t, root).URL },
		"lighttpd":  func(t *testing.T, root string) string { return servertest.Lighttpd(t, root).URL },
		"go":        goFileServer,
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			root := served(t, map[string][]byte{"full/a.tif": []byte("a")})
			if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
			rootEmpty := served(t, nil)
			base := start(t, root)
			for _, folder := range []string{"empty/"} {
				page, err := open(t, base).List(t.Context(), folder)
				if err != nil || len(page.Objects)+len(page.Dirs) != 0 {
					t.Errorf("%s: %+v, %v; want an empty listing", folder, page, err)
				}
			}
			if page, err := open(t, start(t, rootEmpty)).List(t.Context(), ""); err != nil || len(page.Objects)+len(page.Dirs) != 0 {
				t.Errorf("empty root: %+v, %v; want an empty listing", page, err)
			}
			if _, err := open(t, base+"full/a.tif").List(t.Context(), ""); err == nil {
				t.Errorf("a file listed as a folder: want an error")
			}
		})
	}
}

func goFileServer(t *testing.T, root string) string {
	srv := httptest.NewServer(http.StripPrefix("/tiles/", http.FileServer(http.Dir(root))))
	t.Cleanup(srv.Close)
	return srv.URL + "/tiles/"
}

// TestFirstReadSizes: where the listing rounds sizes (Apache, lighttpd), the
// first ranged read through every decorator tells the object's size, in
// that one request.
func TestFirstReadSizes(t *testing.T) {
	files := storagetest.Files()
	const key = "dalles/big.jp2"
	for name, start := range map[string]func(t testing.TB, root string) servertest.HTTPServer{
		"apache": servertest.Apache, "lighttpd": servertest.Lighttpd,
	} {
		t.Run(name, func(t *testing.T) {
			counter := &storage.Counter{}
			s := storage.Compose(open(t, start(t, served(t, files)).URL), storage.ComposeConfig{Observers: []storage.Observer{counter}, Concurrency: 2})
			p := make([]byte, 16)
			n, size, err := storage.ReadAtSize(t.Context(), s, key, p, 100)
			if err != nil || n != len(p) || string(p) != string(files[key][100:116]) {
				t.Fatalf("read %d bytes, %v", n, err)
			}
			if size != int64(len(files[key])) {
				t.Errorf("size %d, want %d", size, len(files[key]))
			}
			if r := counter.Requests(); r != 1 {
				t.Errorf("%d requests, want 1", r)
			}
			// Past the end: io.EOF, and a size only if the 416 gave one
			// (Apache's does not).
			if _, size, err := storage.ReadAtSize(t.Context(), s, key, p, int64(len(files[key]))+10); err != io.EOF || size != storage.SizeUnknown && size != int64(len(files[key])) {
				t.Errorf("past the end: size %d, err %v; want %d or unknown, io.EOF", size, err, len(files[key]))
			}
		})
	}
}
