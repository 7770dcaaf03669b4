package raster

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// TestTransformsPlacedAsGDAL: rotated and transposed geotransforms are
// placed with GDAL's own transform, and the pixel size is the real one.
func TestTransformsPlacedAsGDAL(t *testing.T) {
	c, s := 0.5*math.Cos(math.Pi/6), 0.5*math.Sin(math.Pi/6)
	tests := []struct {
		name    string
		gt      [6]float64
		tifOnly bool // GDAL's JPEG 2000 writer turns a south-up grid north-up
	}{
		{"transposed", [6]float64{700000, 0, 0.5, 6600200, -0.5, 0}, false},
		{"rotated-30", [6]float64{700000, c, s, 6600200, s, -c}, false},
		{"sheared-small", [6]float64{700000, 0.5, 0.01, 6600200, 0.01, -0.5}, false},
		{"south-up", [6]float64{700000, 0.5, 0, 6600000, 0, 0.5}, true},
	}
	for _, kind := range []struct{ ext, driver string }{{"tif", "GTiff"}, {"jp2", "JP2OpenJPEG"}} {
		for _, tt := range tests {
			if tt.tifOnly && kind.ext != "tif" {
				continue
			}
			t.Run(kind.ext+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				key := tt.name + "." + kind.ext
				coreWriteRaster(t, filepath.Join(dir, key), kind.driver, &tt.gt, coreEPSGWKT(t, 2154))
				want, werr := corePlainGDAL(t, filepath.Join(dir, key), false)
				if werr != nil {
					t.Fatalf("plain GDAL: %v", werr)
				}
				for i := range 6 {
					if math.Abs(want.GeoTransform[i]-tt.gt[i]) > 1e-6 {
						t.Fatalf("fixture: GDAL reads %v back, %v written", want.GeoTransform, tt.gt)
					}
				}
				got, gerr := Inspect(context.Background(), osSource{dir}, coreListed(t, dir, key)[0], nil)
				coreSameAnswer(t, got, gerr, want, werr)
				// The pixel height is the length of one step down the rows.
				if ps, want := got.PixelSize(), math.Hypot(tt.gt[2], tt.gt[5]); math.Abs(ps-want) > 1e-9 || ps < 0.5 {
					t.Errorf("pixel size %v, want %v", ps, want)
				}
			})
		}
	}
}

// TestMisplaced: transforms that place nothing are set aside as misplaced,
// whether the tile or its .aux.xml carries them.
func TestMisplaced(t *testing.T) {
	tests := []struct {
		name   string
		gt     [6]float64
		pamGT  string // written in an .aux.xml when set: GDAL's writers refuse these
		detail string
	}{
		{"nan", [6]float64{}, "nan, 0.5, 0, 6600200, 0, -0.5", "non-finite"},
		{"inf", [6]float64{}, "700000, inf, 0, 6600200, 0, -0.5", "non-finite"},
		{"pixel-1e308", [6]float64{700000, 1e308, 0, 6600200, 0, -1e308}, "", "pixel size"},
		{"zero-resolution", [6]float64{}, "700000, 0, 0, 6600200, 0, -0.5", "degenerate"},
		{"collinear", [6]float64{700000, 0.5, 0.5, 6600200, 0.5, 0.5}, "", "degenerate"},
		{"tiny-pixel", [6]float64{700000, 1e-8, 0, 6600200, 0, -1e-8}, "", "pixel size"},
		{"far-away", [6]float64{3e8, 0.5, 0, 6600200, 0, -0.5}, "", "beyond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key := tt.name + ".tif"
			var sibs []File
			if tt.pamGT != "" {
				coreWriteRaster(t, filepath.Join(dir, key), "GTiff", nil, coreEPSGWKT(t, 2154))
				pam := "<PAMDataset><GeoTransform>" + tt.pamGT + "</GeoTransform></PAMDataset>"
				if err := os.WriteFile(filepath.Join(dir, key+".aux.xml"), []byte(pam), 0o644); err != nil {
					t.Fatal(err)
				}
				sibs = coreListed(t, dir, key+".aux.xml")
			} else {
				coreWriteRaster(t, filepath.Join(dir, key), "GTiff", &tt.gt, coreEPSGWKT(t, 2154))
			}
			want, werr := corePlainGDAL(t, filepath.Join(dir, key), true)
			for _, gdalOnly := range []bool{true, false} {
				got, gerr := inspectWith(gdalOnly, osSource{dir}, coreListed(t, dir, key)[0], sibs)
				var p *Problem
				if !errors.As(gerr, &p) || !errors.Is(gerr, ErrMisplaced) || !strings.Contains(p.Detail, tt.detail) {
					t.Fatalf("gdalOnly=%v: got %+v, %v; want misplaced, %q", gdalOnly, got, gerr, tt.detail)
				}
				coreSameAnswer(t, got, gerr, want, werr)
			}
		})
	}
}

func inspectWith(onlyGDAL bool, src Source, obj File, siblings []File) (*Header, error) {
	gdalOnly = onlyGDAL
	defer func() { gdalOnly = false }()
	return Inspect(context.Background(), src, obj, siblings)
}

// TestJudge: the placement and size rules on headers however read.
func TestJudge(t *testing.T) {
	ok := Header{Width: 400, Height: 400, Bands: []Band{{"Gray", "Byte"}}, GeoTransform: [6]float64{700000, 0.5, 0, 6600200, 0, -0.5}, EPSG: 2154}
	tests := []struct {
		name   string
		edit   func(h *Header)
		reason error
	}{
		{"fine", func(*Header) {}, nil},
		{"transposed", func(h *Header) { h.GeoTransform = [6]float64{700000, 0, 0.5, 6600200, -0.5, 0} }, nil},
		{"nan", func(h *Header) { h.GeoTransform[3] = math.NaN() }, ErrMisplaced},
		{"-inf", func(h *Header) { h.GeoTransform[5] = math.Inf(-1) }, ErrMisplaced},
		{"1e308", func(h *Header) { h.GeoTransform[1] = 1e308 }, ErrMisplaced},
		{"zero-determinant", func(h *Header) { h.GeoTransform[1] = 0 }, ErrMisplaced},
		{"pixel-1e4-plus", func(h *Header) { h.GeoTransform[1], h.GeoTransform[5] = 2e4, -2e4 }, ErrMisplaced},
		{"corner-past-1e8", func(h *Header) { h.GeoTransform[0] = 99_999_900 }, ErrMisplaced},
		{"identity", func(h *Header) { h.GeoTransform = noGeoTransform }, ErrNotGeoreferenced},
		{"no-crs", func(h *Header) { h.EPSG = 0 }, ErrNoCRS},
		{"too-wide", func(h *Header) { h.Width = headerMaxSide + 1 }, ErrCorrupt},
		{"too-many-samples", func(h *Header) { h.Width, h.Height, h.Bands = 300_000, 300_000, make([]Band, 4) }, ErrCorrupt},
		{"no-bands", func(h *Header) { h.Bands = nil }, ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ok
			h.Bands = append([]Band(nil), ok.Bands...)
			tt.edit(&h)
			p := judge(&h)
			if tt.reason == nil && p != nil || tt.reason != nil && !errors.Is(p, tt.reason) {
				t.Fatalf("judge = %v, want %v", p, tt.reason)
			}
		})
	}
}

// TestCompressionAsGDAL: a GeoTIFF's compression is GDAL's COMPRESSION name
// (YCbCr JPEG reported as JPEG), whichever reader answers.
func TestCompressionAsGDAL(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"WEBP", "LERC", "LERC_DEFLATE", "LERC_ZSTD", "ZSTD", "JPEG", "LZW", "DEFLATE", "PACKBITS", "LZMA", "NONE"} {
		t.Run(c, func(t *testing.T) {
			key := strings.ToLower(c) + ".tif"
			opts := []string{"COMPRESS=" + c, "TILED=YES"}
			if c == "JPEG" {
				opts = append(opts, "PHOTOMETRIC=YCBCR")
			}
			if err := (tilegen.Tile{EPSG: 2154, Creation: opts}).Write(filepath.Join(dir, key)); err != nil {
				t.Fatal(err)
			}
			ds, err := godal.Open(filepath.Join(dir, key))
			if err != nil {
				t.Fatal(err)
			}
			want := ds.Metadatas(godal.Domain("IMAGE_STRUCTURE"))["COMPRESSION"]
			_ = ds.Close()
			switch want {
			case "":
				want = "NONE"
			case "YCbCr JPEG":
				want = "JPEG"
			}
			if want != c {
				t.Fatalf("fixture: GDAL reports COMPRESSION %q for COMPRESS=%s", want, c)
			}
			for _, onlyGDAL := range []bool{true, false} {
				h, err := inspectWith(onlyGDAL, osSource{dir}, coreListed(t, dir, key)[0], nil)
				if err != nil || h.Compression != want {
					t.Errorf("gdalOnly=%v: got %+v, %v; want compression %s", onlyGDAL, h, err, want)
				}
			}
		})
	}
	// JPEG XL is not built into Debian's GDAL 3.6.2: there is no such tile
	// to compare with.
	t.Run("JXL-unavailable", func(t *testing.T) {
		err := tilegen.Tile{EPSG: 2154, Creation: []string{"COMPRESS=JXL"}}.Write(filepath.Join(dir, "jxl.tif"))
		if err == nil {
			t.Fatal("GDAL writes JPEG XL GeoTIFFs now: add JXL to the compressions compared above")
		}
	})
}

// TestUserDefinedCRSIdentified: a GeoTIFF whose GeoKeys spell Lambert-93
// out (user-defined, no EPSG code) gets EPSG:2154, as PROJ identifies it
// with full confidence; an unknown CRS stays without code.
func TestUserDefinedCRSIdentified(t *testing.T) {
	dir := t.TempDir()
	gt := [6]float64{700000, 0.5, 0, 6600200, 0, -0.5}
	coreWriteRaster(t, filepath.Join(dir, "esri.tif"), "GTiff", &gt, coreESRILambert93)
	ds, err := godal.Open(filepath.Join(dir, "esri.tif"))
	if err != nil {
		t.Fatal(err)
	}
	wkt := ds.Projection()
	_ = ds.Close()
	if strings.Contains(wkt, `AUTHORITY["EPSG","2154"]`) {
		t.Fatalf("fixture: GDAL wrote EPSG:2154 itself: %s", wkt)
	}
	for _, onlyGDAL := range []bool{true, false} {
		h, err := inspectWith(onlyGDAL, osSource{dir}, coreListed(t, dir, "esri.tif")[0], nil)
		if err != nil || h.EPSG != 2154 {
			t.Errorf("gdalOnly=%v: got %+v, %v; want EPSG:2154", onlyGDAL, h, err)
		}
	}
	odd := strings.Replace(coreESRILambert93, `"Central_Meridian",3.0`, `"Central_Meridian",3.5`, 1)
	if code, readable := identifyEPSG(odd); code != 0 || !readable {
		t.Errorf("a Lambert-93 with another meridian identified as %d (readable %v)", code, readable)
	}
	if code, readable := identifyEPSG("garbage"); code != 0 || readable {
		t.Errorf("garbage WKT: %d, readable %v", code, readable)
	}
}
