package raster

import (
	"encoding/xml"
	"strconv"
	"strings"
)

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
