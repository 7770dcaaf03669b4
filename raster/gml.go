package raster

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// Caps on the GML parsed here (its size is already at most BlockSize).
const (
	maxGMLTokens = 10_000
	maxGMLDepth  = 64
)

// gmlNode is an element of the GML with namespaces stripped, as GDAL's
// parser sees it after CPLStripXMLNamespace: its children are elements
// and non-blank text, in order.
type gmlNode struct {
	name  string
	attrs []xml.Attr
	kids  []*gmlNode
	text  string // for a text node (name == "")
}

var errGMLUnsure = errors.New("GML not plain enough")

// parseGML builds the tree of a small, plain XML document, refusing what
// GDAL's minimal parser may read differently: comments, CDATA, DTDs,
// entity references, processing instructions past the declaration, NULs.
func parseGML(doc []byte) (*gmlNode, error) {
	doc = bytes.TrimRight(doc, "\x00")
	if len(doc) > BlockSize || bytes.IndexByte(doc, 0) >= 0 || bytes.Contains(doc, []byte("<!")) || bytes.IndexByte(doc, '&') >= 0 {
		return nil, errGMLUnsure
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var (
		root  *gmlNode
		stack []*gmlNode
	)
	for n := 0; ; n++ {
		if n == maxGMLTokens {
			return nil, errGMLUnsure
		}
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errGMLUnsure
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == maxGMLDepth || root != nil && len(stack) == 0 {
				return nil, errGMLUnsure // too deep, or a second root
			}
			e := &gmlNode{name: t.Name.Local, attrs: t.Attr}
			if len(stack) == 0 {
				root = e
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
			if len(stack) == 0 {
				return nil, errGMLUnsure
			}
			p := stack[len(stack)-1]
			p.kids = append(p.kids, &gmlNode{text: string(t)})
		case xml.ProcInst:
			if n != 0 || t.Target != "xml" {
				return nil, errGMLUnsure
			}
		default:
			return nil, errGMLUnsure
		}
	}
	if root == nil {
		return nil, errGMLUnsure
	}
	return root, nil
}

// find appends every element below n (n included) whose name matches name
// case-insensitively, as GDAL's lookups do.
func (n *gmlNode) find(name string, out []*gmlNode) []*gmlNode {
	if n.name != "" && strings.EqualFold(n.name, name) {
		out = append(out, n)
	}
	for _, k := range n.kids {
		out = k.find(name, out)
	}
	return out
}

// only is the single child element named name (exact case, and no other
// child with that name in another case), or nil.
func (n *gmlNode) only(name string) *gmlNode {
	var found *gmlNode
	for _, k := range n.kids {
		if k.name != "" && strings.EqualFold(k.name, name) {
			if found != nil || k.name != name {
				return nil
			}
			found = k
		}
	}
	return found
}

// value is the text of an element holding only text.
func (n *gmlNode) value() (string, bool) {
	if len(n.kids) != 1 || n.kids[0].name != "" {
		return "", false
	}
	return n.kids[0].text, true
}

// attr is the attribute named name, namespace stripped; ok is false when
// absent or when another attribute has the same name in any case.
func (n *gmlNode) attr(name string) (string, bool) {
	var v string
	found := false
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, name) {
			if found || a.Name.Local != name {
				return "", false
			}
			v, found = a.Value, true
		}
	}
	return v, found
}

// gmlGeoref reads the geotransform and EPSG code of a GMLJP2 root instance
// exactly as GDAL 3.6 does for a PCRS CRS (easting, northing: no axis
// swap): the single RectifiedGrid, its origin Point's srsName and pos
// (the centre of the first pixel), its two adjacent offset vectors. Every
// form GDAL could read another way is refused.
func gmlGeoref(doc []byte) ([6]float64, int, bool) {
	root, err := parseGML(doc)
	if err != nil {
		return [6]float64{}, 0, false
	}
	grids := root.find("RectifiedGrid", nil)
	if len(grids) != 1 || grids[0].name != "RectifiedGrid" {
		return [6]float64{}, 0, false
	}
	rg := grids[0]
	origin := rg.only("origin")
	if origin == nil || len(origin.kids) != 1 {
		return [6]float64{}, 0, false
	}
	point := origin.only("Point")
	if point == nil || len(point.kids) != 1 {
		return [6]float64{}, 0, false
	}
	for _, a := range point.attrs {
		if a.Name.Local != "srsName" && a.Name.Local != "id" {
			return [6]float64{}, 0, false // srsDimension…
		}
	}
	srs, ok := point.attr("srsName")
	if !ok {
		return [6]float64{}, 0, false // GDAL would look on the envelope, then the grid
	}
	code, ok := epsgFromURN(srs)
	if !ok || !pcrsCRS(code) {
		return [6]float64{}, 0, false
	}
	pos := point.only("pos")
	if pos == nil || len(pos.attrs) != 0 {
		return [6]float64{}, 0, false
	}
	ox, oy, ok := gmlPair(pos)
	if !ok {
		return [6]float64{}, 0, false
	}
	// The two offset vectors: GDAL takes the first and the node right
	// after it, which must be the second.
	var at []int
	for i, k := range rg.kids {
		if k.name != "" && strings.EqualFold(k.name, "offsetVector") {
			if k.name != "offsetVector" {
				return [6]float64{}, 0, false
			}
			at = append(at, i)
		}
	}
	if len(at) != 2 || at[1] != at[0]+1 {
		return [6]float64{}, 0, false
	}
	x1, y1, ok1 := gmlPair(rg.kids[at[0]])
	x2, y2, ok2 := gmlPair(rg.kids[at[1]])
	if !ok1 || !ok2 {
		return [6]float64{}, 0, false
	}
	// GDAL's arithmetic, in GDAL's order, for the same rounding.
	gt := [6]float64{ox, x1, x2, oy, y1, y2}
	gt[0] -= gt[1] * 0.5
	gt[0] -= gt[2] * 0.5
	gt[3] -= gt[4] * 0.5
	gt[3] -= gt[5] * 0.5
	for _, v := range gt {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return [6]float64{}, 0, false
		}
	}
	if gt == [6]float64{0, 1, 0, 0, 0, 1} || gt[1] == 0 || gt[4] == 0 && gt[5] == 0 {
		return [6]float64{}, 0, false // GDAL's reading is then "not georeferenced"
	}
	return gt, code, true
}

// gmlPair reads an element's text as two plain decimal numbers separated
// by spaces: the only form on which GDAL's tokenisers (spaces and commas
// for offset vectors, any blank for positions) and number parsers
// (CPLAtof, OGRFastAtof) all agree with ours to the bit.
func gmlPair(n *gmlNode) (float64, float64, bool) {
	s, ok := n.value()
	if !ok || strings.ContainsAny(s, "\t\r\n,") {
		return 0, 0, false
	}
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	a, ok1 := plainDecimal(f[0])
	b, ok2 := plainDecimal(f[1])
	return a, b, ok1 && ok2
}

// plainDecimal parses [-+]digits[.digits] with at most 15 significant
// digits: exactly representable before one division by a power of ten,
// so every correct parser gives the same double.
func plainDecimal(s string) (float64, bool) {
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" {
		return 0, false
	}
	intPart, frac, _ := strings.Cut(body, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" || len(strings.TrimLeft(digits, "0")) > 15 || len(frac) > 22 {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// epsgFromURN reads the srsName forms GDAL resolves to the EPSG code
// itself: "urn:ogc:def:crs:EPSG::2154", "urn:ogc:def:crs:EPSG:6.6:2154",
// "EPSG:2154" and "http://www.opengis.net/def/crs/EPSG/0/2154".
func epsgFromURN(s string) (int, bool) {
	var tail string
	switch {
	case strings.HasPrefix(s, "urn:ogc:def:crs:EPSG:"):
		version, code, ok := strings.Cut(strings.TrimPrefix(s, "urn:ogc:def:crs:EPSG:"), ":")
		if !ok || strings.Trim(version, "0123456789.") != "" {
			return 0, false
		}
		tail = code
	case strings.HasPrefix(s, "EPSG:"):
		tail = s[5:]
	case strings.HasPrefix(s, "http://www.opengis.net/def/crs/EPSG/0/"):
		tail = strings.TrimPrefix(s, "http://www.opengis.net/def/crs/EPSG/0/")
	default:
		return 0, false
	}
	if tail == "" || tail[0] == '0' || strings.Trim(tail, "0123456789") != "" || len(tail) > 6 {
		return 0, false
	}
	code, err := strconv.Atoi(tail)
	return code, err == nil
}
