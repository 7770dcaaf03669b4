package raster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// TestHeaderBudget: a tile whose header reading would fetch more than the
// per-tile budget, its siblings included, is corrupt with the limit named,
// never a storage failure.
func TestHeaderBudget(t *testing.T) {
	dir := t.TempDir()
	gt := [6]float64{700000, 0.5, 0, 6600200, 0, -0.5}
	coreWriteRaster(t, filepath.Join(dir, "t.tif"), "GTiff", &gt, coreEPSGWKT(t, 2154))
	// GDAL reads a PAM sidecar whole: one of 5 MiB exceeds the budget.
	pam := "<PAMDataset><Metadata><MDI key=\"pad\">" + strings.Repeat("x", 5<<20) + "</MDI></Metadata></PAMDataset>"
	if err := os.WriteFile(filepath.Join(dir, "t.tif.aux.xml"), []byte(pam), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &coreCountingDir{dir: dir}
	_, err := Inspect(context.Background(), src, coreListed(t, dir, "t.tif")[0], coreListed(t, dir, "t.tif.aux.xml"))
	var p *Problem
	if !errors.As(err, &p) || !errors.Is(err, ErrCorrupt) || !strings.Contains(p.Detail, "4 MiB limit") {
		t.Fatalf("err = %v, want corrupt naming the 4 MiB limit", err)
	}

	// The same budget at the level of the reads every parser goes through.
	big := &coreMemSource{files: map[string][]byte{"big.tif": make([]byte, 6<<20)}}
	o, _, done := open(context.Background(), big, File{Key: "big.tif", Size: 6 << 20})
	defer done()
	buf := make([]byte, 1<<20)
	var readErr error
	for off := int64(0); off < 6<<20 && readErr == nil; off += 1 << 20 {
		_, readErr = o.file("big.tif").readAt(o, buf, off)
	}
	if !errors.As(o.storageErr(), &p) || !errors.Is(readErr, ErrCorrupt) {
		t.Fatalf("after reading 6 MiB: read error %v, storageErr %v; want the budget problem", readErr, o.storageErr())
	}
	if fetched := big.reads.Load(); fetched != 4 {
		t.Errorf("%d storage reads of 1 MiB, want 4 (the budget), none beyond", fetched)
	}
}

// TestDeclaredSizeLimit: a tile declaring more pixels than any tile has is
// corrupt before anything proportional to its size is done.
func TestDeclaredSizeLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wide.tif")
	if err := register(); err != nil {
		t.Fatal(err)
	}
	ds, err := godal.Create(godal.GTiff, path, 1, godal.Byte, headerMaxSide+1, 2, godal.CreationOption("SPARSE_OK=YES", "TILED=YES"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.SetGeoTransform([6]float64{700000, 0.5, 0, 6600200, 0, -0.5}); err != nil {
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	for _, onlyGDAL := range []bool{true, false} {
		_, err := inspectWith(onlyGDAL, osSource{dir}, coreListed(t, dir, "wide.tif")[0], nil)
		var p *Problem
		if !errors.As(err, &p) || !errors.Is(err, ErrCorrupt) || !strings.Contains(p.Detail, "1000000") {
			t.Errorf("gdalOnly=%v: err = %v, want corrupt naming the 1000000-pixel limit", onlyGDAL, err)
		}
	}
}

// cancellingSource cancels the scan during its first read, as SIGTERM would.
type cancellingSource struct {
	coreCountingDir
	cancel context.CancelFunc
}

func (c *cancellingSource) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	c.cancel()
	return c.coreCountingDir.ReadAt(ctx, key, p, off)
}

// TestCancelledInspect: once the context ends, Inspect fetches nothing more
// and returns the context's error, not a verdict on the tile.
func TestCancelledInspect(t *testing.T) {
	dir := t.TempDir()
	tiles := map[string]tilegen.Tile{
		"strips.tif": {EPSG: 2154, Width: 1000, Creation: []string{"BLOCKYSIZE=1"}},
		"t.jp2":      {Driver: "JP2OpenJPEG", EPSG: 2154, Width: 1000},
		"geo.tif":    {EPSG: 4326, X: 2, Y: 45, Pixel: 0.0001}, // read by GDAL
	}
	for key, tile := range tiles {
		if err := tile.Write(filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
		t.Run(key, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := Inspect(ctx, &coreCountingDir{dir: dir}, coreListed(t, dir, key)[0], nil); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled before: err = %v, want context.Canceled", err)
			}
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			src := &cancellingSource{coreCountingDir: coreCountingDir{dir: dir}, cancel: cancel}
			_, err := Inspect(ctx, src, coreListed(t, dir, key)[0], nil)
			var p *Problem
			if !errors.Is(err, context.Canceled) || errors.As(err, &p) {
				t.Errorf("cancelled during the first read: err = %v, want context.Canceled", err)
			}
			if n := src.reads.Load(); n != 1 {
				t.Errorf("%d storage reads, want 1: nothing fetched once cancelled", n)
			}
		})
	}
}

// TestGDALMessagesLogged: a message GDAL raises outside any godal call goes
// to the logger at debug level, or nowhere; never to stderr.
func TestGDALMessagesLogged(t *testing.T) {
	if err := register(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer SetLogger(nil)
	raiseGDALError("pcrs test message 1")
	if !strings.Contains(buf.String(), "pcrs test message 1") || !strings.Contains(buf.String(), "level=DEBUG") {
		t.Fatalf("log %q lacks the GDAL message at debug level", buf.String())
	}
	SetLogger(nil)
	buf.Reset()
	raiseGDALError("pcrs test message 2")
	if buf.Len() != 0 {
		t.Fatalf("logged %q after SetLogger(nil)", buf.String())
	}
}
