package raster

import (
	"bytes"
)

// Building a CRS through PROJ costs GDAL about a millisecond per tile: more
// than everything else a header read takes. For the CRSs PCRS tiles use,
// the georeferencing is read here from the header bytes already fetched,
// and GDAL is spared the CRS; any other case takes GDAL's full path.

// gdalOnly turns the fast paths off, for tests comparing both readers.
var gdalOnly bool

// georef is what the fast path read: a geotransform (JPEG 2000's GML) and
// an EPSG code, or nothing.
type georef struct {
	gt   *[6]float64
	epsg int
}

func fastGeoref(o *openObject, f *cachedFile, head []byte) georef {
	switch fileKind(head) {
	case "jp2":
		if doc, ok := jp2GML(o, f); ok {
			if gt, code, ok := gmlGeoref(doc); ok {
				return georef{gt: &gt, epsg: code}
			}
		}
	case "tiff":
		if code, ok := tiffEPSG(o, f); ok {
			return georef{epsg: code}
		}
	}
	return georef{}
}

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
