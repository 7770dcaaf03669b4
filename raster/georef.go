package raster

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"strconv"
	"strings"
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

// jp2GML finds the GMLJP2 root instance (asoc "gml.data" → asoc
// "gml.root-instance" → xml) among the boxes before the codestream, in the
// bytes already cached.
func jp2GML(o *openObject, f *cachedFile) ([]byte, bool) {
	var found []byte
	var walk func(start, end int64, depth int, label string) bool
	walk = func(start, end int64, depth int, label string) bool {
		for off := start; off+8 <= end; {
			b, ok := boxAt(o, f, off, end, false)
			if !ok || !b.fits(end) {
				return false
			}
			switch {
			case b.typ == "jp2c":
				return found != nil
			case b.typ == "asoc" && depth < 3:
				if walk(b.body(), b.end(), depth+1, "") {
					return true
				}
			case b.typ == "lbl ":
				text, ok := f.peek(o, b.body(), int(min(b.size-b.hdr, 64)))
				if !ok {
					return false
				}
				label = strings.TrimRight(string(text), "\x00")
			case b.typ == "xml " && label == "gml.root-instance" && found == nil:
				if b.size-b.hdr > BlockSize {
					return false
				}
				if found, ok = f.peek(o, b.body(), int(b.size-b.hdr)); !ok {
					return false
				}
			}
			off = b.end()
		}
		return found != nil
	}
	walk(0, f.size, 0, "")
	return found, found != nil
}

type gmlGrid struct {
	Low     string `xml:"limits>GridEnvelope>low"`
	Origin  gmlPos `xml:"origin>Point"`
	Offsets []struct {
		SRS   string `xml:"srsName,attr"`
		Value string `xml:",chardata"`
	} `xml:"offsetVector"`
}

type gmlPos struct {
	SRS string `xml:"srsName,attr"`
	Pos string `xml:"pos"`
}

type gmlRoot struct {
	Grids []gmlGrid `xml:"featureMember>FeatureCollection>featureMember>RectifiedGridCoverage>rectifiedGridDomain>RectifiedGrid"`
}

// gmlGeoref reads the geotransform and EPSG code of a GMLJP2 root instance
// the way GDAL does for a projected easting/northing CRS: the origin is the
// centre of the first pixel.
func gmlGeoref(doc []byte) ([6]float64, int, bool) {
	var root gmlRoot
	if err := xml.Unmarshal(doc, &root); err != nil || len(root.Grids) != 1 {
		return [6]float64{}, 0, false
	}
	g := root.Grids[0]
	code, ok := epsgFromURN(g.Origin.SRS)
	if !ok || !pcrsCRS(code) || len(g.Offsets) != 2 || strings.Join(strings.Fields(g.Low), " ") != "0 0" {
		return [6]float64{}, 0, false
	}
	for _, ov := range g.Offsets {
		if c, ok := epsgFromURN(ov.SRS); ov.SRS != "" && (!ok || c != code) {
			return [6]float64{}, 0, false
		}
	}
	origin, ok1 := floats(g.Origin.Pos)
	v1, ok2 := floats(g.Offsets[0].Value)
	v2, ok3 := floats(g.Offsets[1].Value)
	if !ok1 || !ok2 || !ok3 {
		return [6]float64{}, 0, false
	}
	gt := [6]float64{
		origin[0] - 0.5*(v1[0]+v2[0]), v1[0], v2[0],
		origin[1] - 0.5*(v1[1]+v2[1]), v1[1], v2[1],
	}
	return gt, code, true
}

func floats(s string) ([2]float64, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return [2]float64{}, false
	}
	a, err1 := strconv.ParseFloat(f[0], 64)
	b, err2 := strconv.ParseFloat(f[1], 64)
	return [2]float64{a, b}, err1 == nil && err2 == nil
}

// epsgFromURN reads "urn:ogc:def:crs:EPSG::2154", "urn:ogc:def:crs:EPSG:6.6:2154",
// "EPSG:2154" or "http://www.opengis.net/def/crs/EPSG/0/2154".
func epsgFromURN(s string) (int, bool) {
	s = strings.TrimSpace(s)
	var tail string
	switch {
	case strings.HasPrefix(s, "urn:ogc:def:crs:EPSG:"):
		tail = s[strings.LastIndexByte(s, ':')+1:]
	case strings.HasPrefix(s, "EPSG:"):
		tail = s[5:]
	case strings.HasPrefix(s, "http://www.opengis.net/def/crs/EPSG/"):
		tail = s[strings.LastIndexByte(s, '/')+1:]
	default:
		return 0, false
	}
	code, err := strconv.Atoi(tail)
	return code, err == nil
}

// tiffEPSG reads ProjectedCSTypeGeoKey from the first IFD's
// GeoKeyDirectory, in the bytes already cached.
func tiffEPSG(o *openObject, f *cachedFile) (int, bool) {
	read := func(off int64, n int) ([]byte, bool) {
		if n > BlockSize {
			return nil, false
		}
		return f.peek(o, off, n)
	}
	head, ok := read(0, 16)
	if !ok {
		return 0, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if head[0] == 'M' {
		bo = binary.BigEndian
	}
	big := bo.Uint16(head[2:4]) == 43
	var ifd int64
	if big {
		ifd = int64(bo.Uint64(head[8:16]))
	} else {
		ifd = int64(bo.Uint32(head[4:8]))
	}
	countSize, entrySize := int64(2), int64(12)
	if big {
		countSize, entrySize = 8, 20
	}
	cb, ok := read(ifd, int(countSize))
	if !ok {
		return 0, false
	}
	var count int64
	if big {
		count = int64(bo.Uint64(cb))
	} else {
		count = int64(bo.Uint16(cb))
	}
	if count <= 0 || count > 4096 {
		return 0, false
	}
	entries, ok := read(ifd+countSize, int(count*entrySize))
	if !ok {
		return 0, false
	}
	for i := int64(0); i < count; i++ {
		e := entries[i*entrySize : (i+1)*entrySize]
		if bo.Uint16(e[0:2]) != 34735 || bo.Uint16(e[2:4]) != 3 { // GeoKeyDirectoryTag, SHORT
			continue
		}
		var n, valOff int64
		var inline []byte
		if big {
			n = int64(bo.Uint64(e[4:12]))
			inline, valOff = e[12:20], int64(bo.Uint64(e[12:20]))
		} else {
			n = int64(bo.Uint32(e[4:8]))
			inline, valOff = e[8:12], int64(bo.Uint32(e[8:12]))
		}
		var keys []byte
		if n*2 <= int64(len(inline)) {
			keys = inline[:n*2]
		} else if keys, ok = read(valOff, int(n*2)); !ok {
			return 0, false
		}
		short := func(i int) int { return int(bo.Uint16(keys[2*i : 2*i+2])) }
		if n < 4 || int64(4+4*short(3)) > n {
			return 0, false
		}
		for k := range short(3) {
			id, loc, val := short(4+4*k), short(5+4*k), short(7+4*k)
			if id == 3072 && loc == 0 && pcrsCRS(val) { // ProjectedCSTypeGeoKey
				return val, true
			}
		}
		return 0, false
	}
	return 0, false
}
