package httpdir_test

import (
	"net/url"
	"os"
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
