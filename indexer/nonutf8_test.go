package indexer_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// TestNameNotUTF8OnServers: on real servers (vsftpd, nginx, Apache,
// lighttpd) whose file is named in Windows-1252, the tile is listed and
// read under its own bytes, written readably in chemin, and its location,
// the name's bytes escaped, opens in GDAL.
func TestNameNotUTF8OnServers(t *testing.T) {
	tile := filepath.Join(t.TempDir(), "t.tif")
	if err := (tilegen.Tile{EPSG: 2154, X: x0, Y: y0}).Write(tile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"dalles/r\xe9seau.tif": b}
	web := func(serve func(testing.TB, string) servertest.HTTPServer) func(t *testing.T) (storage.Storage, string) {
		return func(t *testing.T) (storage.Storage, string) {
			root := t.TempDir()
			servertest.WriteTree(t, root, files, storagetest.ModTime)
			servertest.OpenUp(t, root)
			srv := serve(t, root)
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			st, err := httpdir.Open(context.Background(), u, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, srv.URL
		}
	}
	for _, c := range []struct {
		name string
		open func(t *testing.T) (storage.Storage, string)
	}{
		{"vsftpd", func(t *testing.T) (storage.Storage, string) {
			u := servertest.VsftpdTree(t, files, storagetest.ModTime)
			st, err := ftp.Open(context.Background(), u, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, u.String()
		}},
		{"nginx", web(func(t testing.TB, root string) servertest.HTTPServer { return servertest.Nginx(t, root, false) })},
		{"apache2", web(servertest.Apache)},
		{"lighttpd", web(servertest.Lighttpd)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, location := c.open(t)
			defer st.Close()
			checkNameNotUTF8(t, st, location)
		})
	}
}

func checkNameNotUTF8(t *testing.T, st storage.Storage, location string) {
	t.Helper()
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: location, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Report.Counts.Readable != 1 {
		t.Fatalf("counts %+v, problems %+v", res.Report.Counts, problemsOf(t, res))
	}
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}
	var dalles featureCollection
	readJSON(t, filepath.Join(out, indexer.DallesFile), &dalles)
	if len(dalles.Features) != 1 {
		t.Fatalf("%d features", len(dalles.Features))
	}
	chemin, _ := dalles.Features[0].Properties["chemin"].(string)
	loc, _ := dalles.Features[0].Properties["location"].(string)
	if chemin != "dalles/réseau.tif" || !strings.HasSuffix(loc, "/dalles/r%E9seau.tif") {
		t.Fatalf("chemin %q, location %q", chemin, loc)
	}
	gdalinfo := servertest.Binary(t, "gdalinfo", "/usr/bin/gdalinfo")
	cmd := exec.Command(gdalinfo, "-json", loc)
	cmd.Env = append(os.Environ(), "GDAL_HTTP_TIMEOUT=20", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS=.tif")
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), `"proj:epsg":2154`) {
		t.Fatalf("gdalinfo %s: %v\n%.2000s", loc, err, got)
	}
}
