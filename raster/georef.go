package raster

import (
	"bytes"
	"math"
	"path"
	"strings"
)

// Building a CRS through PROJ costs GDAL about a millisecond per tile: more
// than everything else a header read takes. For the CRSs PCRS tiles use,
// the Go header readers (scanTIFF, scanJP2) answer from the header bytes
// already fetched, and GDAL is spared; any other case takes GDAL's path.

// gdalOnly turns the fast paths off, for tests comparing both readers.
var gdalOnly bool

// noGeoTransform is what GDAL returns for a tile nothing places.
var noGeoTransform = [6]float64{0, 1, 0, 0, 0, 1}

// Bounds on what a header may declare or say, whoever read it. The Go
// readers apply the size caps before GDAL opens the file; these catch what
// GDAL read itself.
const (
	headerMaxSide    = 1_000_000 // pixels a side
	headerMaxSamples = 1 << 36   // width × height × bands
	minPixelSize     = 1e-6      // CRS units
	maxPixelSize     = 1e4
	maxCoordinate    = 1e8 // CRS units, any corner
)

// pcrsCRS are Lambert-93 and the conic conformal zones CC42..CC50: projected,
// easting then northing, so their GML needs no axis swap.
func pcrsCRS(code int) bool { return code == 2154 || code >= 3942 && code <= 3950 }

// fileKind sniffs the format from the first bytes.
func fileKind(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cjP  \r\n\x87\n")):
		return "jp2"
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")),
		bytes.HasPrefix(head, []byte("II+\x00")), bytes.HasPrefix(head, []byte("MM\x00+")):
		return "tiff"
	}
	return ""
}

// judge applies the checks every header passes, however it was read.
func judge(h *Header) *Problem {
	if p := checkSize(h.Width, h.Height, len(h.Bands)); p != nil {
		return p
	}
	if h.GeoTransform == noGeoTransform {
		return problem(ErrNotGeoreferenced, "no geotransform: neither GeoTIFF tags, GMLJP2, GeoJP2, an .aux.xml nor a world file place the tile")
	}
	if p := checkPlacement(h); p != nil {
		return p
	}
	if h.EPSG == 0 {
		return problem(ErrNoCRS, "georeferenced but declares no coordinate reference system")
	}
	return nil
}

// checkSize refuses an image without pixels or larger than any tile.
func checkSize(width, height, bands int) *Problem {
	switch {
	case width <= 0 || height <= 0 || bands <= 0:
		return problem(ErrEmpty, "no pixels (%dx%d, %d bands)", width, height, bands)
	case width > headerMaxSide || height > headerMaxSide:
		return problem(ErrCorrupt, "declares %dx%d pixels, beyond the limit of %d a side", width, height, headerMaxSide)
	case int64(width)*int64(height)*int64(bands) > headerMaxSamples:
		return problem(ErrCorrupt, "declares %dx%d pixels in %d bands, beyond the limit of %d samples", width, height, bands, int64(headerMaxSamples))
	}
	return nil
}

// checkPlacement refuses a geotransform that cannot place the tile: any
// rotation or transposition is fine, a collapsed or absurd one is not.
func checkPlacement(h *Header) *Problem {
	gt := h.GeoTransform
	for _, v := range gt {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return problem(ErrMisplaced, "non-finite geotransform %v", gt)
		}
	}
	if gt[1]*gt[5]-gt[2]*gt[4] == 0 {
		return problem(ErrMisplaced, "degenerate geotransform %v: its pixels have no area", gt)
	}
	width, height := math.Hypot(gt[1], gt[4]), math.Hypot(gt[2], gt[5])
	for _, s := range []float64{width, height} {
		if !(s >= minPixelSize && s <= maxPixelSize) {
			return problem(ErrMisplaced, "pixel size %g x %g CRS units, outside [%g, %g]", width, height, minPixelSize, maxPixelSize)
		}
	}
	for _, c := range h.Corners() {
		if !(math.Abs(c[0]) <= maxCoordinate && math.Abs(c[1]) <= maxCoordinate) {
			return problem(ErrMisplaced, "corner (%g, %g) beyond %g CRS units", c[0], c[1], maxCoordinate)
		}
	}
	return nil
}

// sidecarSuffixes name the files GDAL may read beside a tile: PAM, world
// files, MapInfo .tab, .prj, overviews, masks, RPCs.
var sidecarSuffixes = []string{".aux.xml", ".aux", ".tfw", ".tifw", ".tiffw", ".wld", ".j2w", ".jpw", ".tab", ".prj", ".ovr", ".msk", ".imd", ".rpb", "_rpc.txt"}

// IsSidecar says whether key names a file GDAL may read beside a tile: its
// exact size must be known before GDAL opens the tile, and a tile whose
// sidecar cannot be read would not be read as GDAL reads it in place.
func IsSidecar(key string) bool {
	lower := strings.ToLower(key)
	for _, s := range sidecarSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// maxSiblings bounds the listed files GDAL is shown beside a tile.
const maxSiblings = 64

// sameFolder keeps the siblings GDAL could read as the tile's sidecars:
// in its folder, named after it (t.tfw, t.wld, t.tif.aux.xml, t.aux…).
func sameFolder(obj File, siblings []File) []File {
	dir := path.Dir(obj.Key)
	base := strings.ToLower(path.Base(obj.Key))
	stem := strings.TrimSuffix(base, path.Ext(base))
	var kept []File
	for _, s := range siblings {
		name := strings.ToLower(path.Base(s.Key))
		if s.Key == obj.Key || path.Dir(s.Key) != dir || !strings.HasPrefix(name, stem+".") {
			continue
		}
		if kept = append(kept, s); len(kept) == maxSiblings {
			break
		}
	}
	return kept
}

// overridable says whether a sibling could change what GDAL reads in a
// tile that has its own georeferencing. GDAL 3.6 reads, for GTiff and
// JP2OpenJPEG alike, the PAM sidecar first (t.tif.aux.xml, or an old .aux):
// its geotransform, CRS and colour interpretations win over the file's.
// World files and .tab are read only when the file places itself nowhere,
// and .prj never: those cannot change a header the Go readers accept, which
// always has its own geotransform and CRS.
func overridable(obj File, siblings []File) bool {
	base := strings.ToLower(path.Base(obj.Key))
	stem := strings.TrimSuffix(base, path.Ext(base))
	for _, s := range siblings {
		switch strings.ToLower(path.Base(s.Key)) {
		case base + ".aux.xml", base + ".aux", stem + ".aux":
			return true
		}
	}
	return false
}
