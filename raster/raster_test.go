package raster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// dirSource serves a folder and counts its reads.
type dirSource struct {
	dir   string
	reads atomic.Int64
	bytes atomic.Int64
}

func (d *dirSource) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	d.reads.Add(1)
	f, err := os.Open(filepath.Join(d.dir, key))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	d.bytes.Add(int64(n))
	return n, err
}

func file(t *testing.T, dir, key string) raster.File {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, key))
	if err != nil {
		t.Fatal(err)
	}
	return raster.File{Key: key, Size: fi.Size()}
}

func TestHeaders(t *testing.T) {
	rgb := "Red(Byte)/Green(Byte)/Blue(Byte)"
	tests := []struct {
		name        string
		tile        tilegen.Tile
		key         string
		bands       string
		compression string
		mime        string
		epsg        int
		size        string
		resCm       int
	}{
		{"gtiff-jpeg-ycbcr-tiled", tilegen.Tile{EPSG: 2154, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}, "a/t.tif", rgb, "JPEG", "image/tiff", 2154, "400x400", 50},
		{"gtiff-lzw-striped", tilegen.Tile{EPSG: 3948, Creation: []string{"COMPRESS=LZW"}}, "a/t.TIF", rgb, "LZW", "image/tiff", 3948, "400x400", 50},
		{"gtiff-deflate-bigtiff", tilegen.Tile{EPSG: 3942, Creation: []string{"COMPRESS=DEFLATE", "BIGTIFF=YES", "TILED=YES"}}, "b/t.tiff", rgb, "DEFLATE", "image/tiff", 3942, "400x400", 50},
		{"gtiff-none-gray16", tilegen.Tile{EPSG: 3950, Bands: 1, DataType: godal.UInt16}, "c/g.Tif", "Gray(UInt16)", "NONE", "image/tiff", 3950, "400x400", 50},
		{"gtiff-4-bands-rgbi", tilegen.Tile{EPSG: 2154, Bands: 4, Creation: []string{"COMPRESS=LZW", "PHOTOMETRIC=RGB"}}, "d/rgbi.tif", "Red(Byte)/Green(Byte)/Blue(Byte)/Undefined(Byte)", "LZW", "image/tiff", 2154, "400x400", 50},
		{"gtiff-rect-5cm", tilegen.Tile{EPSG: 2154, Width: 4000, Height: 2000, Pixel: 0.05, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}, "e/big.tif", rgb, "JPEG", "image/tiff", 2154, "2000x4000", 5},
		{"jp2-gmljp2-lossy", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Creation: []string{"QUALITY=20", "REVERSIBLE=NO"}}, "j/t.jp2", rgb, "LOSSY", "image/jp2", 2154, "400x400", 50},
		{"jp2-geojp2-lossless", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 3949, Creation: []string{"REVERSIBLE=YES", "QUALITY=100", "GMLJP2=NO", "GeoJP2=YES"}}, "j/t.JP2", rgb, "LOSSLESS", "image/jp2", 3949, "400x400", 50},
		{"jp2-16bit-gray", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 3944, Bands: 1, DataType: godal.UInt16, Creation: []string{"REVERSIBLE=YES", "QUALITY=100"}}, "j/g16.jp2", "Gray(UInt16)", "LOSSLESS", "image/jp2", 3944, "400x400", 50},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.tile.Write(filepath.Join(dir, tt.key)); err != nil {
				t.Fatal(err)
			}
			src := &dirSource{dir: dir}
			h, err := raster.Inspect(context.Background(), src, file(t, dir, tt.key), nil)
			if err != nil {
				t.Fatal(err)
			}
			var bands []string
			for _, b := range h.Bands {
				bands = append(bands, b.Color+"("+b.DataType+")")
			}
			got := []any{strings.Join(bands, "/"), h.Compression, h.MimeType, h.EPSG, itoa(h.Height) + "x" + itoa(h.Width), int(h.PixelSize()*100 + 0.5), h.OpenDriver}
			want := []any{tt.bands, tt.compression, tt.mime, tt.epsg, tt.size, tt.resCm, true}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d: got %v, want %v", i, got[i], want[i])
				}
			}
			box := h.Box()
			wantW := float64(tt.tile.Width) * tt.tile.Pixel
			if tt.tile.Pixel == 0 {
				wantW = 200
			}
			if box[0] != 700000 || box[3] != 6600200 || box[2]-box[0] != wantW {
				t.Errorf("box %v, want from (700000, 6600200), %v m wide", box, wantW)
			}
			t.Logf("%s: %d bytes, %d reads, %d bytes read", tt.key, file(t, dir, tt.key).Size, src.reads.Load(), src.bytes.Load())
		})
	}
}

// TestOneReadPerTile: a tile whose header fits in the first block costs one
// storage read, GDAL's reopenings and sibling lookups included.
func TestOneReadPerTile(t *testing.T) {
	dir := t.TempDir()
	tiles := map[string]tilegen.Tile{
		"t.jp2":      {Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Creation: []string{"QUALITY=50"}},
		"geo.jp2":    {Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Creation: []string{"QUALITY=50", "GMLJP2=NO", "GeoJP2=YES"}},
		"t.tif":      {EPSG: 2154, Width: 2000, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}},
		"strips.tif": {EPSG: 2154, Width: 1000, Creation: []string{"COMPRESS=LZW"}},
	}
	for key, tile := range tiles {
		if err := tile.Write(filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, key+".aux.xml"), []byte("<PAMDataset/>"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for key := range tiles {
		t.Run(key, func(t *testing.T) {
			src := &dirSource{dir: dir}
			f := file(t, dir, key)
			if f.Size <= raster.BlockSize {
				t.Fatalf("fixture %s is %d bytes: too small to prove a partial read", key, f.Size)
			}
			if _, err := raster.Inspect(context.Background(), src, f, nil); err != nil {
				t.Fatal(err)
			}
			if r := src.reads.Load(); r != 1 {
				t.Errorf("%d reads, want 1", r)
			}
			if b := src.bytes.Load(); b > raster.BlockSize {
				t.Errorf("read %d bytes of %d, want at most one block (%d)", b, f.Size, raster.BlockSize)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(key string, tile tilegen.Tile) {
		t.Helper()
		if err := tile.Write(filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
	}
	raw := func(key string, content []byte) {
		t.Helper()
		if err := tilegen.WriteFile(filepath.Join(dir, key), content); err != nil {
			t.Fatal(err)
		}
	}
	raw("zero.jp2", nil)
	raw("garbage.tif", []byte(strings.Repeat("\x13\x37garbage", 500)))
	raw("error-page.jp2", []byte(tilegen.HTMLErrorPage))
	raw("bad-ifd.tif", append([]byte("II*\x00\xff\xff\xff\x00"), make([]byte, 100)...))
	write("nogeo.tif", tilegen.Tile{NoGeoTransform: true, EPSG: 2154})
	write("nogeo.jp2", tilegen.Tile{Driver: "JP2OpenJPEG", NoGeoTransform: true, Creation: []string{"GMLJP2=NO", "GeoJP2=NO"}})
	write("nocrs.tif", tilegen.Tile{})
	write("sparse.tif", tilegen.Tile{EPSG: 2154, Creation: []string{"SPARSE_OK=YES", "TILED=YES"}})
	for _, k := range []string{"cut.jp2", "cut.tif", "cut-tiled.tif"} {
		tile := tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 1000, Creation: []string{"QUALITY=40"}}
		if strings.HasSuffix(k, ".tif") {
			tile = tilegen.Tile{EPSG: 2154, Width: 1000, Creation: []string{"COMPRESS=LZW"}}
		}
		if k == "cut-tiled.tif" {
			tile.Creation = []string{"COMPRESS=DEFLATE", "TILED=YES"}
		}
		write(k, tile)
		f := file(t, dir, k)
		if err := tilegen.Truncate(filepath.Join(dir, k), f.Size*2/3); err != nil {
			t.Fatal(err)
		}
	}
	// The sparse tile must really be sparse for the test to mean anything:
	// write it again with only nodata so GDAL skips every block.
	sparse := filepath.Join(dir, "sparse.tif")
	if err := writeSparse(sparse); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		key    string
		reason error
		detail string
	}{
		{"zero.jp2", raster.ErrEmpty, "zero-byte"},
		{"sparse.tif", raster.ErrEmpty, "sparse"},
		{"garbage.tif", raster.ErrCorrupt, "GDAL cannot open"},
		{"error-page.jp2", raster.ErrCorrupt, "HTML page"},
		{"bad-ifd.tif", raster.ErrCorrupt, "IFD"},
		{"nogeo.tif", raster.ErrNotGeoreferenced, "no geotransform"},
		{"nogeo.jp2", raster.ErrNotGeoreferenced, "no geotransform"},
		{"nocrs.tif", raster.ErrNoCRS, "no coordinate reference system"},
		{"cut.jp2", raster.ErrCorrupt, "transfer cut short"},
		{"cut.tif", raster.ErrCorrupt, "transfer cut short"},
		{"cut-tiled.tif", raster.ErrCorrupt, "transfer cut short"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := raster.Inspect(context.Background(), &dirSource{dir: dir}, file(t, dir, tt.key), nil)
			var p *raster.Problem
			if !errors.As(err, &p) || !errors.Is(err, tt.reason) {
				t.Fatalf("err = %v, want a problem %v", err, tt.reason)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not say %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestStorageFailureIsNotCorrupt: when the storage fails, the caller gets
// the storage's error, not a "corrupt" verdict on a good tile.
func TestStorageFailureIsNotCorrupt(t *testing.T) {
	boom := errors.New("connection reset by peer")
	_, err := raster.Inspect(context.Background(), failingSource{boom}, raster.File{Key: "x.jp2", Size: 5000}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the storage's error", err)
	}
	var p *raster.Problem
	if errors.As(err, &p) {
		t.Fatalf("storage failure reported as tile problem %v", p)
	}
}

// TestWorldFileFromListing: georeferencing from a world file GDAL only
// knows of because the listing showed it.
func TestWorldFileFromListing(t *testing.T) {
	dir := t.TempDir()
	if err := (tilegen.Tile{NoGeoTransform: true}).Write(filepath.Join(dir, "w.tif")); err != nil {
		t.Fatal(err)
	}
	raw := "0.5\n0\n0\n-0.5\n700000.25\n6600199.75\n"
	if err := os.WriteFile(filepath.Join(dir, "w.tfw"), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &dirSource{dir: dir}
	_, err := raster.Inspect(context.Background(), src, file(t, dir, "w.tif"), nil)
	if !errors.Is(err, raster.ErrNotGeoreferenced) {
		t.Fatalf("without the sibling: err = %v, want not georeferenced", err)
	}
	_, err = raster.Inspect(context.Background(), src, file(t, dir, "w.tif"), []raster.File{file(t, dir, "w.tfw")})
	if !errors.Is(err, raster.ErrNoCRS) {
		t.Fatalf("with the world file: err = %v, want georeferenced but no CRS", err)
	}
}

type failingSource struct{ err error }

func (f failingSource) ReadAt(context.Context, string, []byte, int64) (int, error) { return 0, f.err }

func writeSparse(path string) error {
	_ = os.Remove(path)
	ds, err := godal.Create(godal.GTiff, path, 3, godal.Byte, 512, 512, godal.CreationOption("SPARSE_OK=YES", "TILED=YES"))
	if err != nil {
		return err
	}
	sr, err := godal.NewSpatialRefFromEPSG(2154)
	if err != nil {
		return err
	}
	defer sr.Close()
	if err := ds.SetSpatialRef(sr); err != nil {
		return err
	}
	if err := ds.SetGeoTransform([6]float64{700000, 0.5, 0, 6600200, 0, -0.5}); err != nil {
		return err
	}
	return ds.Close()
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + func() string { return fmtInt(i) }())
}

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	return string(b)
}
