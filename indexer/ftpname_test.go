package indexer_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// TestFTPNameNotUTF8Opens: on a real FTP server (vsftpd) whose file is
// named in Windows-1252, the tile is read, written readably in chemin,
// and its location, the name's bytes escaped, opens in GDAL.
func TestFTPNameNotUTF8Opens(t *testing.T) {
	tile := filepath.Join(t.TempDir(), "t.tif")
	if err := (tilegen.Tile{EPSG: 2154, X: x0, Y: y0}).Write(tile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	u := servertest.VsftpdTree(t, map[string][]byte{"dalles/r\xe9seau.tif": b}, storagetest.ModTime)
	st, err := ftp.Open(context.Background(), u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: u.String(), Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Report.Counts.Readable != 1 {
		t.Fatalf("counts %+v, problems %+v", res.Report.Counts, res.Report.Problems)
	}
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, indexer.DallesFile))
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Features []struct {
			Properties struct{ Chemin, Location string } `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(raw, &fc); err != nil || len(fc.Features) != 1 {
		t.Fatalf("%v: %s", err, raw)
	}
	p := fc.Features[0].Properties
	if p.Chemin != "dalles/réseau.tif" || !strings.HasSuffix(p.Location, "/dalles/r%E9seau.tif") {
		t.Fatalf("chemin %q, location %q", p.Chemin, p.Location)
	}
	gdalinfo := servertest.Binary(t, "gdalinfo", "/usr/bin/gdalinfo")
	cmd := exec.Command(gdalinfo, "-json", p.Location)
	cmd.Env = append(os.Environ(), "GDAL_HTTP_TIMEOUT=20", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS=.tif")
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), `"proj:epsg":2154`) {
		t.Fatalf("gdalinfo %s: %v\n%s", p.Location, err, got)
	}
}
