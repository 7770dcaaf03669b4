package raster

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

type osSource struct{ dir string }

func (s osSource) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	f, err := os.Open(filepath.Join(s.dir, key))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}

// TestFastGeorefAgreesWithGDAL: where the header's own georeferencing is
// read without GDAL, the result is GDAL's to the bit; elsewhere GDAL reads it.
func TestFastGeorefAgreesWithGDAL(t *testing.T) {
	tests := []struct {
		name string
		tile tilegen.Tile
		fast bool
	}{
		{"gmljp2-l93", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: 652123.45, Y: 6232987.65, Pixel: 0.05, Width: 800}, true},
		{"gmljp2-cc46", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 3946, X: 1700200, Y: 5200200}, true},
		{"gmljp2-utm", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 32631, X: 500000, Y: 4800000}, false},
		{"gmljp2-wgs84", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 4326, X: 2.1, Y: 43.2, Pixel: 0.0001}, false},
		{"geojp2-only", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Creation: []string{"GMLJP2=NO", "GeoJP2=YES"}}, true},
		{"gtiff-l93", tilegen.Tile{EPSG: 2154, X: 652000.1, Y: 6232000.2}, true},
		{"gtiff-cc50-bigtiff-be", tilegen.Tile{EPSG: 3950, Creation: []string{"BIGTIFF=YES", "ENDIANNESS=BIG", "TILED=YES"}}, true},
		{"gtiff-wgs84", tilegen.Tile{EPSG: 4326, X: 2.1, Y: 43.2, Pixel: 0.0001}, false},
		{"gtiff-rotated-l93", tilegen.Tile{EPSG: 2154, Rotation: 0.01}, true},
	}
	dir := t.TempDir()
	src := osSource{dir}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.name + map[bool]string{true: ".jp2", false: ".tif"}[tt.tile.Driver == "JP2OpenJPEG"]
			if err := tt.tile.Write(filepath.Join(dir, key)); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(filepath.Join(dir, key))
			obj := File{Key: key, Size: fi.Size()}

			used := fastAnswer(t, src, obj)
			if used != tt.fast {
				t.Errorf("fast path used = %v, want %v", used, tt.fast)
			}

			agreesWithGDAL(t, src, obj)
		})
	}
}

// TestFastJP2AgreesWithGDAL: the Go JPEG 2000 reader gives GDAL's header,
// or declines and GDAL reads the tile.
func TestFastJP2AgreesWithGDAL(t *testing.T) {
	jp2 := func(tl tilegen.Tile) tilegen.Tile { tl.Driver = "JP2OpenJPEG"; return tl }
	tests := []struct {
		name string
		tile tilegen.Tile
		fast bool
	}{
		{"rgb-lossy", jp2(tilegen.Tile{EPSG: 2154, Creation: []string{"QUALITY=25"}}), true},
		{"rgb-lossless", jp2(tilegen.Tile{EPSG: 3948, Creation: []string{"REVERSIBLE=YES", "QUALITY=100"}}), true},
		{"rgb-odd-size-tiled", jp2(tilegen.Tile{EPSG: 2154, Width: 1001, Height: 999, Creation: []string{"BLOCKXSIZE=256", "BLOCKYSIZE=256"}}), true},
		{"gray-16", jp2(tilegen.Tile{EPSG: 3946, Bands: 1, DataType: godal.UInt16, Creation: []string{"REVERSIBLE=YES", "QUALITY=100"}}), true},
		{"gray-8", jp2(tilegen.Tile{EPSG: 3942, Bands: 1}), true},
		{"rgbi-4-bands", jp2(tilegen.Tile{EPSG: 2154, Bands: 4}), false},
		{"rgba-alpha", jp2(tilegen.Tile{EPSG: 2154, Bands: 4, Creation: []string{"ALPHA=YES"}}), false},
		{"geojp2-only", jp2(tilegen.Tile{EPSG: 2154, Creation: []string{"GMLJP2=NO", "GeoJP2=YES"}}), true},
		{"no-georef", jp2(tilegen.Tile{EPSG: 2154, NoGeoTransform: true, Creation: []string{"GMLJP2=NO", "GeoJP2=NO"}}), false},
		{"utm", jp2(tilegen.Tile{EPSG: 32631, X: 500000, Y: 4800000}), false},
		{"ycc", jp2(tilegen.Tile{EPSG: 2154, Creation: []string{"YCC=YES"}}), true},
	}
	dir := t.TempDir()
	src := osSource{dir}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.name + ".jp2"
			if err := tt.tile.Write(filepath.Join(dir, key)); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(filepath.Join(dir, key))
			obj := File{Key: key, Size: fi.Size()}
			used := fastAnswer(t, src, obj)
			if used != tt.fast {
				t.Errorf("fast reader used = %v, want %v", used, tt.fast)
			}
			agreesWithGDAL(t, src, obj)
		})
	}
}

// fastAnswer says whether the Go header reader of obj's format answers
// alone, GDAL not opening the file.
func fastAnswer(t *testing.T, src Source, obj File) bool {
	t.Helper()
	if err := register(); err != nil {
		t.Fatal(err)
	}
	o, _, done := open(context.Background(), src, obj)
	defer done()
	f := o.file(obj.Key)
	head := make([]byte, 16)
	n, _ := f.readAt(o, head, 0)
	var scan headerReader
	var err error
	switch fileKind(head[:n]) {
	case "jp2":
		scan, err = scanJP2(o, f)
	case "tiff":
		scan, err = scanTIFF(o, f)
	default:
		t.Fatalf("%s: neither JPEG 2000 nor TIFF", obj.Key)
	}
	if err != nil {
		return false
	}
	_, ok := scan.header()
	return ok
}

// agreesWithGDAL inspects obj with and without the fast paths: same
// verdict, same header (geotransforms to 1e-9).
func agreesWithGDAL(t *testing.T, src Source, obj File) {
	t.Helper()
	gdalOnly = true
	want, werr := Inspect(context.Background(), src, obj, nil)
	gdalOnly = false
	got, gerr := Inspect(context.Background(), src, obj, nil)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("GDAL: %v; fast path: %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	for i := range 6 {
		if math.Abs(got.GeoTransform[i]-want.GeoTransform[i]) > 1e-9*math.Max(1, math.Abs(want.GeoTransform[i])) {
			t.Errorf("geotransform %v, GDAL %v", got.GeoTransform, want.GeoTransform)
			break
		}
	}
	got.GeoTransform = want.GeoTransform
	if !reflect.DeepEqual(got, want) {
		t.Errorf("header %+v\nGDAL   %+v", got, want)
	}
}

func TestEPSGFromURN(t *testing.T) {
	for s, want := range map[string]int{
		"urn:ogc:def:crs:EPSG::2154":                 2154,
		"urn:ogc:def:crs:EPSG:6.6:3946":              3946,
		"EPSG:3950":                                  3950,
		"http://www.opengis.net/def/crs/EPSG/0/2154": 2154,
		"urn:ogc:def:crs:OGC:1.3:CRS84":              0,
		"":                                           0,
	} {
		if got, _ := epsgFromURN(s); got != want {
			t.Errorf("epsgFromURN(%q) = %d, want %d", s, got, want)
		}
	}
}
