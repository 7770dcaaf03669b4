package raster

import (
	"errors"
	"math"
	"testing"
)

// FuzzJP2: arbitrary bytes through scanJP2 and header() never panic, fetch
// each block of the object at most once, and set a file aside only as
// corrupt; what header() answers is a header the caps allow. The seeds in
// testdata/fuzz/FuzzJP2 are small files GDAL's JP2OpenJPEG driver wrote.
func FuzzJP2(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x0cjP  \r\n\x87\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return // Inspect sets zero-byte objects aside before any read
		}
		j, src, err := jp2Scan(t, data)
		blocks := int64((len(data) + BlockSize - 1) / BlockSize)
		if n := src.reads.Load(); n > blocks {
			t.Fatalf("%d reads for an object of %d blocks", n, blocks)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("scanJP2: %v, want corrupt or nothing", err)
			}
			return
		}
		if p := j.incompleteProblem(); p != nil && !errors.Is(p, ErrCorrupt) {
			t.Fatalf("incomplete: %v", p)
		}
		h, ok := j.header()
		if !ok {
			return
		}
		if h.Width <= 0 || h.Height <= 0 || h.Width > maxJP2Side || h.Height > maxJP2Side || len(h.Bands) != 1 && len(h.Bands) != 3 || !pcrsCRS(h.EPSG) {
			t.Fatalf("header() answers %+v", h)
		}
		for _, v := range h.GeoTransform {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("header() answers geotransform %v", h.GeoTransform)
			}
		}
	})
}
