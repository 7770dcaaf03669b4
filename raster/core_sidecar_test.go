package raster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSidecarsAsGDAL: the coreListed .aux.xml, world file and .prj change the
// answer exactly as they change plain GDAL's with the files beside the
// tile on disk, for GeoTIFF and JPEG 2000; a sidecar GDAL does not read
// costs no request.
func TestSidecarsAsGDAL(t *testing.T) {
	internal := [6]float64{700000, 0.5, 0, 6600200, 0, -0.5}
	aux := func(srs, gt, band string) string {
		s := "<PAMDataset>"
		if srs != "" {
			s += "<SRS>" + srs + "</SRS>"
		}
		if gt != "" {
			s += "<GeoTransform>" + gt + "</GeoTransform>"
		}
		if band != "" {
			s += `<PAMRasterBand band="1"><ColorInterp>` + band + `</ColorInterp></PAMRasterBand>`
		}
		return s + "</PAMDataset>"
	}
	world := "0.25\n0\n0\n-0.25\n800000.125\n6700199.875\n"
	cc46 := coreEPSGWKT(t, 3946)
	l93 := coreEPSGWKT(t, 2154)
	type check func(t *testing.T, h *Header, err error, reads int64)
	placed := func(epsg int, x0 float64) check {
		return func(t *testing.T, h *Header, err error, _ int64) {
			if err != nil || h.EPSG != epsg || h.GeoTransform[0] != x0 {
				t.Fatalf("got %+v, %v; want EPSG %d from x %v", h, err, epsg, x0)
			}
		}
	}
	tests := []struct {
		name     string
		gt       *[6]float64
		wkt      string
		sidecars map[string]string // suffix after the stem → content
		unlisted bool              // on disk beside the tile, not in the listing
		want     check
	}{
		{"aux-overrides-internal", &internal, l93, map[string]string{".EXT.aux.xml": aux(cc46, "1700000, 1, 0, 5200200, 0, -1", "Blue")}, false, placed(3946, 1700000)},
		{"aux-esri-crs", &internal, "", map[string]string{".EXT.aux.xml": aux(coreESRILambert93, "", "")}, false, placed(2154, 700000)},
		{"aux-gt-only", &internal, l93, map[string]string{".EXT.aux.xml": aux("", "700400, 0.25, 0, 6600200, 0, -0.25", "")}, false, placed(2154, 700400)},
		{"aux-unlisted", &internal, l93, map[string]string{".EXT.aux.xml": aux(cc46, "1700000, 1, 0, 5200200, 0, -1", "")}, true, placed(2154, 700000)},
		{"world-ignored", &internal, l93, map[string]string{".WLD": world, ".wld": world, ".prj": cc46}, false, func(t *testing.T, h *Header, err error, reads int64) {
			placed(2154, 700000)(t, h, err, reads)
			if reads != 1 {
				t.Errorf("%d storage reads, want 1: a sidecar GDAL ignores was fetched", reads)
			}
		}},
		{"world-used-prj-ignored", nil, "", map[string]string{".WLD": world, ".wld": world, ".prj": coreESRILambert93}, false, func(t *testing.T, h *Header, err error, _ int64) {
			if !errors.Is(err, ErrNoCRS) {
				t.Fatalf("got %+v, %v; want no CRS (GDAL reads no .prj)", h, err)
			}
		}},
		{"world-used-aux-crs", nil, "", map[string]string{".WLD": world, ".wld": world, ".EXT.aux.xml": aux(coreESRILambert93, "", "")}, false, placed(2154, 800000)},
	}
	for _, kind := range []struct{ ext, driver, world string }{{"tif", "GTiff", ".tfw"}, {"jp2", "JP2OpenJPEG", ".j2w"}} {
		for _, tt := range tests {
			t.Run(kind.ext+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				key := "d/t." + kind.ext
				if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
					t.Fatal(err)
				}
				coreWriteRaster(t, filepath.Join(dir, key), kind.driver, tt.gt, tt.wkt)
				// An unlisted sidecar is not there for the indexer: the truth
				// is GDAL's answer without it.
				want, werr := corePlainGDAL(t, filepath.Join(dir, key), true)
				var sibs []string
				for suffix, content := range tt.sidecars {
					switch suffix {
					case ".EXT.aux.xml":
						suffix = "." + kind.ext + ".aux.xml"
					case ".WLD":
						suffix = kind.world
					}
					if err := os.WriteFile(filepath.Join(dir, "d", "t"+suffix), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
					sibs = append(sibs, "d/t"+suffix)
				}
				var siblings []File
				if !tt.unlisted {
					siblings = coreListed(t, dir, sibs...)
				}
				if !tt.unlisted {
					want, werr = corePlainGDAL(t, filepath.Join(dir, key), true)
				}
				for _, onlyGDAL := range []bool{false, true} {
					src := &coreCountingDir{dir: dir}
					got, gerr := inspectWith(onlyGDAL, src, coreListed(t, dir, key)[0], siblings)
					tt.want(t, got, gerr, src.reads.Load())
					coreSameAnswer(t, got, gerr, want, werr)
				}
			})
		}
	}
}
