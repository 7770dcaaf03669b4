package corpus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
)

// geoJP2UUID marks the GeoJP2 box (a degenerate GeoTIFF in a uuid box).
var geoJP2UUID = []byte("\xb1\x4b\xf8\xbd\x08\x3d\x4b\x43\xa5\xae\x8c\xd7\xd5\xa6\xce\x03")

// CrossWriter writes, into dir, tiles no GDAL driver wrote: TIFFs assembled
// here (strips, BigTIFF, big-endian) and JPEG 2000 files whose box structure
// is rebuilt here around a codestream GDAL encoded (GML before jp2h, extra
// uuid and xml boxes). GDAL reads them all, so they are valid truth sources.
func CrossWriter(dir string) ([]Case, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gen{dir: dir}
	goTIFFs(g)
	handJP2s(g)
	return g.cases, g.err
}

func (g *gen) raw(name, file, writer, note string, content []byte) {
	if g.err != nil {
		return
	}
	if err := os.WriteFile(g.path(file), content, 0o644); err != nil {
		g.err = err
		return
	}
	g.add(name, file, writer, note)
}

func goTIFFs(g *gen) {
	le, be := binary.LittleEndian, binary.BigEndian
	g.raw("go_tiff_le", "go_tiff_le.tif", WriterGo, "little-endian baseline TIFF, 8 strips, GeoKeys EPSG:2154", newGeoTIFF(le, false).file().bytes())
	t := newGeoTIFF(be, false)
	t.geoKeys = epsgKeys(3945)
	t.tiepoint = [6]float64{0, 0, 0, 1700000, 4200032, 0}
	g.raw("go_tiff_be_3945", "go_tiff_be_3945.tif", WriterGo, "big-endian TIFF in EPSG:3945", t.file().bytes())
	g.raw("go_bigtiff_le", "go_bigtiff_le.tif", WriterGo, "little-endian BigTIFF", newGeoTIFF(le, true).file().bytes())
	g.raw("go_bigtiff_be", "go_bigtiff_be.tif", WriterGo, "big-endian BigTIFF", newGeoTIFF(be, true).file().bytes())
	t = newGeoTIFF(le, false)
	t.bands, t.rowsPerStrip = 1, 64
	g.raw("go_tiff_grey_one_strip", "go_tiff_grey_one_strip.tif", WriterGo, "one grey band in a single strip", t.file().bytes())
	t = newGeoTIFF(be, false)
	t.transform = &[16]float64{0.49, 0.1, 0, 700000, 0.1, -0.49, 0, 6600032, 0, 0, 0, 0, 0, 0, 0, 1}
	g.raw("go_tiff_transformation", "go_tiff_transformation.tif", WriterGo, "rotated ModelTransformationTag", t.file().bytes())
	t = newGeoTIFF(le, false)
	t.transform = &[16]float64{0, 0.5, 0, 700000, -0.5, 0, 0, 6600032, 0, 0, 0, 0, 0, 0, 0, 1}
	g.raw("go_tiff_transposed", "go_tiff_transposed.tif", WriterGo, "transposed ModelTransformationTag", t.file().bytes())
	t = newGeoTIFF(le, false)
	t.geoKeys = nil
	g.raw("go_tiff_no_keys", "go_tiff_no_keys.tif", WriterGo, "pixel scale and tiepoint, no GeoKeys", t.file().bytes())
	t = newGeoTIFF(le, false)
	t.geoKeys = []uint16{1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 2154, 3076, 0, 1, 9001}
	g.raw("go_tiff_point_metre", "go_tiff_point_metre.tif", WriterGo, "PixelIsPoint raster type and an explicit metre unit key", t.file().bytes())
}

// handJP2s rebuilds GDAL-encoded JPEG 2000 files box by box.
func handJP2s(g *gen) {
	if g.err != nil {
		return
	}
	src := g.path("hand_source.jp2")
	if err := jp2("GMLJP2=YES", "GeoJP2=YES").write(src); err != nil {
		g.err = err
		return
	}
	defer os.Remove(src)
	bs, err := readBoxes(src)
	if err != nil {
		g.err = err
		return
	}
	parts, err := splitJP2(bs)
	if err != nil {
		g.err = err
		return
	}
	xmlMeta := box{typ: "xml ", payload: []byte(`<?xml version="1.0"?><metadata><producer>corpus</producer></metadata>`)}
	otherUUID := box{typ: "uuid", payload: append(bytes.Repeat([]byte{0x42}, 16), []byte("vendor data")...)}
	build := func(name, note string, order ...box) {
		g.raw(name, name+".jp2", WriterGo, note, encodeBoxes(order))
	}
	build("hand_jp2_gml_first", "GMLJP2 asoc before jp2h, then the codestream; no GeoJP2",
		parts.sig, parts.ftyp, parts.gml, parts.jp2h, parts.jp2c)
	build("hand_jp2_extra_boxes", "jp2h, an xml box, a foreign uuid box, GMLJP2, another uuid, the codestream",
		parts.sig, parts.ftyp, parts.jp2h, xmlMeta, otherUUID, parts.gml, otherUUID, parts.jp2c)
	build("hand_jp2_geojp2_after_gml", "GMLJP2 first then GeoJP2 after jp2h",
		parts.sig, parts.ftyp, parts.gml, parts.jp2h, parts.geojp2, parts.jp2c)
	build("hand_jp2_geojp2_only", "GeoJP2 box only, placed after an xml box",
		parts.sig, parts.ftyp, parts.jp2h, xmlMeta, parts.geojp2, parts.jp2c)
	build("hand_jp2_bare", "jp2h and the codestream only: no georeferencing",
		parts.sig, parts.ftyp, parts.jp2h, parts.jp2c)
	moved, err := editGMLOrigin([]box{parts.gml}, "705000.5 6605000.5")
	if err != nil {
		g.err = err
		return
	}
	build("hand_jp2_gml_moved_with_geojp2", "GMLJP2 edited to another origin, GeoJP2 kept, GML first",
		parts.sig, parts.ftyp, moved[0], parts.jp2h, parts.geojp2, parts.jp2c)
}

// jp2Parts are the boxes of a GDAL-written GMLJP2+GeoJP2 file.
type jp2Parts struct {
	sig, ftyp, jp2h, gml, geojp2, jp2c box
}

func splitJP2(bs []box) (jp2Parts, error) {
	var p jp2Parts
	have := map[string]bool{}
	for _, bx := range bs {
		switch {
		case bx.typ == "jP  ":
			p.sig = bx
		case bx.typ == "ftyp":
			p.ftyp = bx
		case bx.typ == "jp2h":
			p.jp2h = bx
		case isGML(bx):
			p.gml = bx
		case bx.typ == "uuid" && bytes.HasPrefix(bx.payload, geoJP2UUID):
			p.geojp2 = bx
		case bx.typ == "jp2c":
			p.jp2c = bx
		default:
			continue
		}
		have[bx.typ] = true
	}
	for _, t := range []string{"jP  ", "ftyp", "jp2h", "asoc", "uuid", "jp2c"} {
		if !have[t] {
			return p, errors.New("GDAL's JP2 lacks a " + t + " box")
		}
	}
	return p, nil
}
