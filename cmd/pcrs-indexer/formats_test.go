package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

func gdalTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run make test (it installs gdal-bin)", name)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// featureCount asks ogrinfo how many features a layer holds.
func featureCount(t *testing.T, file, layer string) int {
	t.Helper()
	out := gdalTool(t, "ogrinfo", "-ro", "-so", file, layer)
	var n int
	for _, line := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(line, "Feature Count: %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("ogrinfo gave no feature count for %s %s:\n%s", file, layer, out)
	return 0
}

// A 3 x 2 grid of GeoTIFF tiles, one cell holding a tile cut short (a
// problem placed by its header), and an empty tile (placed nowhere).
func gridStorage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for c := range 3 {
		for r := range 2 {
			if c == 1 && r == 1 {
				continue
			}
			tile := tilegen.Tile{EPSG: 2154, X: 652000 + float64(c)*200, Y: 6232200 - float64(r)*200, Width: 100, Height: 100}
			if err := tile.Write(filepath.Join(dir, fmt.Sprintf("dalle_%d_%d.tif", c, r))); err != nil {
				t.Fatal(err)
			}
		}
	}
	cut := filepath.Join(dir, "coupee.tif")
	if err := (tilegen.Tile{EPSG: 2154, X: 652200, Y: 6232000, Width: 1000, Pixel: 0.2, Creation: []string{"COMPRESS=LZW"}}).Write(cut); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cut); err != nil || tilegen.Truncate(cut, fi.Size()/2) != nil {
		t.Fatal("cannot truncate the fixture")
	}
	if err := tilegen.WriteFile(filepath.Join(dir, "vide.tif"), nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFormatsOpenInGDAL: --format fgb and gpkg write what ogrinfo opens,
// with the problems as a layer.
func TestFormatsOpenInGDAL(t *testing.T) {
	storageDir, out := gridStorage(t), t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", out, "--format", "fgb", "--format", "gpkg", storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, c := range []struct {
		file, layer string
		want        int
	}{
		// FlatGeobuf (GDAL 3.6) holds no feature without a geometry: the
		// empty tile, placed nowhere, is in the GeoPackage's layer only.
		{"dalles.fgb", "dalles", 5}, {"livrables.fgb", "livrables", 1}, {"problemes.fgb", "problemes", 1},
		{"dalles.gpkg", "dalles", 5}, {"dalles.gpkg", "problemes", 2}, {"livrables.gpkg", "livrables", 1},
	} {
		if n := featureCount(t, filepath.Join(out, c.file), c.layer); n != c.want {
			t.Errorf("%s layer %s: %d features, want %d", c.file, c.layer, n, c.want)
		}
	}
	info := gdalTool(t, "ogrinfo", "-ro", "-so", filepath.Join(out, "dalles.fgb"), "dalles")
	for _, want := range []string{"nomImage: String", "location: String", "resolution: Integer", "EPSG\",4326"} {
		if !strings.Contains(info, want) {
			t.Errorf("dalles.fgb lacks %q:\n%s", want, info)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(out, ".*")); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestLocationBuildsAVRT: gdalbuildvrt over the tiles' location field
// opens, and its extent is the footprint's.
func TestLocationBuildsAVRT(t *testing.T) {
	storageDir, out := gridStorage(t), t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", out, storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var fc struct {
		Features []struct {
			Properties struct{ Location string } `json:"properties"`
		} `json:"features"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, indexer.DallesFile))
	if err := json.Unmarshal(raw, &fc); err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, f := range fc.Features {
		list = append(list, f.Properties.Location)
	}
	listFile, vrt := filepath.Join(t.TempDir(), "list.txt"), filepath.Join(t.TempDir(), "index.vrt")
	if err := os.WriteFile(listFile, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gdalTool(t, "gdalbuildvrt", "-input_file_list", listFile, vrt)
	var info struct {
		CornerCoordinates struct{ LowerLeft, UpperRight [2]float64 } `json:"cornerCoordinates"`
	}
	if err := json.Unmarshal([]byte(gdalTool(t, "gdalinfo", "-json", vrt)), &info); err != nil {
		t.Fatal(err)
	}
	// The grid's tiles span 3 x 2 cells of 200 m down from their upper-left
	// corner (652000, 6232200): the footprint's box, hole included.
	want := [4]float64{652000, 6232200 - 400, 652000 + 600, 6232200}
	got := [4]float64{info.CornerCoordinates.LowerLeft[0], info.CornerCoordinates.LowerLeft[1], info.CornerCoordinates.UpperRight[0], info.CornerCoordinates.UpperRight[1]}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Fatalf("VRT extent %v, footprint box %v", got, want)
		}
	}
}
