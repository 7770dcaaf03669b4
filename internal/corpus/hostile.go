package corpus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Hostile writes, into dir, crafted headers meant to exhaust or fool a
// header reader, each with the outcomes a scan may give it: absurd
// georeferencing (1e308, NaN, Inf, zero or 1e-300 resolution, EPSG:4326 with
// Lambert-93 coordinates, a tile across the antimeridian), declared sizes
// and counts far beyond the bytes (2^31-pixel sides, 52,430 codestream
// tiles, 1.6e9 TIFF tiles, 1e9 strips, tag counts of 2^32-1, offsets past
// 2^63), structural traps (4,000 boxes, 1,000 nested asoc, XLBox
// 0x7FFF_FFFF_FFFF_FFFF, a zero box length mid-file, IFD loops), and what
// storages hold in place of tiles (zero bytes, HTML, truncated copies).
func Hostile(dir string) ([]Case, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h := &hostile{gen: gen{dir: dir}}
	if err := h.loadBases(); err != nil {
		return nil, err
	}
	h.georef()
	h.jp2Sizes()
	h.jp2Structure()
	h.tiffCounts()
	h.tiffStructure()
	h.placement()
	h.garbage()
	return h.cases, h.err
}

type hostile struct {
	gen
	gmlJP2 []box  // GDAL's JP2 with a GMLJP2 box only
	jp2    []byte // the same, encoded
}

func (h *hostile) loadBases() error {
	tmp := filepath.Join(h.dir, "base_source.jp2")
	defer os.Remove(tmp)
	r := jp2("GMLJP2=YES", "GeoJP2=NO", "REVERSIBLE=YES", "QUALITY=100")
	if err := r.write(tmp); err != nil {
		return err
	}
	bs, err := readBoxes(tmp)
	if err != nil {
		return err
	}
	h.gmlJP2, h.jp2 = bs, encodeBoxes(bs)
	return nil
}

// want records the last case's accepted outcomes.
func (h *hostile) want(outcomes ...string) {
	if h.err == nil && len(h.cases) > 0 {
		h.cases[len(h.cases)-1].Want = outcomes
	}
}

func (h *hostile) slow() {
	if h.err == nil && len(h.cases) > 0 {
		h.cases[len(h.cases)-1].Slow = true
	}
}

// boxes writes a JP2 made of bs.
func (h *hostile) boxes(name, note string, bs []box) {
	h.raw(name, name+".jp2", WriterGDALEdit, note, encodeBoxes(bs))
}

// gmlEdit writes the GMLJP2 base with its origin and/or offset vectors
// replaced.
func (h *hostile) gmlEdit(name, note, origin, off1, off2 string) {
	if h.err != nil {
		return
	}
	bs := h.gmlJP2
	var err error
	if origin != "" {
		if bs, err = editGMLOrigin(bs, origin); err != nil {
			h.err = fmt.Errorf("%s: %w", name, err)
			return
		}
	}
	if off1 != "" {
		if bs, err = editGMLOffsets(bs, off1, off2); err != nil {
			h.err = fmt.Errorf("%s: %w", name, err)
			return
		}
	}
	h.boxes(name, note, bs)
}

// tiff writes an assembled TIFF.
func (h *hostile) tiff(name, note string, t *tiffFile) {
	h.raw(name, name+".tif", WriterGo, note, t.bytes())
}

func (h *hostile) georef() {
	h.gmlEdit("jp2_gml_origin_1e308", "GMLJP2 origin 1e308", "1e308 1e308", "", "")
	h.want(Misplaced)
	// GDAL reads a NaN or Inf GML origin as 0 0: a tile off the coast of
	// Africa in Lambert-93.
	h.gmlEdit("jp2_gml_origin_nan", "GMLJP2 origin NaN", "NaN NaN", "", "")
	h.want(Misplaced)
	h.gmlEdit("jp2_gml_origin_inf", "GMLJP2 origin Inf", "INF -INF", "", "")
	h.want(Misplaced)
	h.gmlEdit("jp2_gml_scale_nan", "GMLJP2 offset vectors NaN", "", "NaN 0", "0 NaN")
	h.want(Misplaced)
	h.gmlEdit("jp2_gml_scale_inf", "GMLJP2 offset vectors Inf", "", "INF 0", "0 -INF")
	h.want(Misplaced)
	h.gmlEdit("jp2_gml_resolution_0", "GMLJP2 offset vectors zero", "", "0 0", "0 0")
	h.want(Misplaced)
	h.gmlEdit("jp2_gml_resolution_1e-300", "GMLJP2 resolution 1e-300", "", "1e-300 0", "0 -1e-300")
	h.want(Misplaced)

	le := binary.LittleEndian
	for _, c := range []struct {
		name, note string
		scale      [3]float64
		tie        [6]float64
		want       []string
	}{
		{"tif_origin_1e308", "ModelTiepoint origin 1e308", [3]float64{0.5, 0.5, 0}, [6]float64{0, 0, 0, 1e308, 1e308, 0}, []string{Misplaced}},
		{"tif_tiepoint_nan", "ModelTiepoint NaN", [3]float64{0.5, 0.5, 0}, [6]float64{0, 0, 0, math.NaN(), math.NaN(), 0}, []string{Misplaced}},
		{"tif_tiepoint_inf", "ModelTiepoint +Inf/-Inf", [3]float64{0.5, 0.5, 0}, [6]float64{0, 0, 0, math.Inf(1), math.Inf(-1), 0}, []string{Misplaced}},
		{"tif_scale_nan", "ModelPixelScale NaN", [3]float64{math.NaN(), math.NaN(), 0}, [6]float64{0, 0, 0, 700000, 6600032, 0}, []string{Misplaced}},
		{"tif_scale_inf", "ModelPixelScale Inf", [3]float64{math.Inf(1), math.Inf(1), 0}, [6]float64{0, 0, 0, 700000, 6600032, 0}, []string{Misplaced}},
		// GDAL ignores a zero pixel scale: no geotransform at all.
		{"tif_resolution_0", "ModelPixelScale zero", [3]float64{0, 0, 0}, [6]float64{0, 0, 0, 700000, 6600032, 0}, []string{NotGeoreferenced}},
		{"tif_resolution_1e-300", "ModelPixelScale 1e-300", [3]float64{1e-300, 1e-300, 0}, [6]float64{0, 0, 0, 700000, 6600032, 0}, []string{Misplaced}},
	} {
		g := newGeoTIFF(le, false)
		g.scale, g.tiepoint = c.scale, c.tie
		h.tiff(c.name, c.note, g.file())
		h.want(c.want...)
	}
}

// codestream offsets in the jp2c payload: SOC, then SIZ.
const (
	sizXsiz  = 8
	sizYsiz  = 12
	sizXTsiz = 24
	sizYTsiz = 28
)

// editJP2Header rewrites ihdr (height, width) and/or SIZ fields of the
// base: a copy, with set applied to the ihdr payload and the codestream.
func (h *hostile) editJP2Header(set func(ihdr, cs []byte)) []box {
	out := make([]box, len(h.gmlJP2))
	for i, bx := range h.gmlJP2 {
		switch bx.typ {
		case "jp2h":
			kids := make([]box, len(bx.kids))
			copy(kids, bx.kids)
			for k := range kids {
				if kids[k].typ == "ihdr" {
					kids[k].payload = bytes.Clone(kids[k].payload)
					set(kids[k].payload, nil)
				}
			}
			bx.kids = kids
		case "jp2c":
			bx.payload = bytes.Clone(bx.payload)
			set(nil, bx.payload)
		}
		out[i] = bx
	}
	return out
}

func (h *hostile) jp2Sizes() {
	be := binary.BigEndian
	sides := func(w, hgt uint32, ihdr, siz bool) func(ihdrB, cs []byte) {
		return func(ihdrB, cs []byte) {
			if ihdrB != nil && ihdr {
				be.PutUint32(ihdrB[0:], hgt)
				be.PutUint32(ihdrB[4:], w)
			}
			if cs != nil && siz {
				be.PutUint32(cs[sizXsiz:], w)
				be.PutUint32(cs[sizYsiz:], hgt)
				// One tile covering the image, as GDAL wrote it.
				be.PutUint32(cs[sizXTsiz:], w)
				be.PutUint32(cs[sizYTsiz:], hgt)
			}
		}
	}
	// GDAL sizes the image from SIZ: an ihdr alone saying otherwise is set
	// aside or declined to GDAL, never believed.
	h.boxes("jp2_ihdr_2p31", "ihdr declares 2^31 x 2^31 px, SIZ 64 x 64", h.editJP2Header(sides(1<<31, 1<<31, true, false)))
	h.want(Corrupt, Readable)
	h.boxes("jp2_ihdr_2p32", "ihdr declares 2^32-1 x 2^32-1 px (the 32-bit maximum), SIZ 64 x 64", h.editJP2Header(sides(math.MaxUint32, math.MaxUint32, true, false)))
	h.want(Corrupt, Readable)
	h.boxes("jp2_siz_2p31", "ihdr and SIZ agree on 2^31 x 2^31 px", h.editJP2Header(sides(1<<31, 1<<31, true, true)))
	h.want(Corrupt)
	h.slow()
	h.boxes("jp2_siz_2p32", "ihdr and SIZ agree on 2^32-1 x 2^32-1 px", h.editJP2Header(sides(math.MaxUint32, math.MaxUint32, true, true)))
	h.want(Corrupt)
	h.slow()
	// 52,430 tiles of 1 x 1 px: 52430 x 1 px, in a file padded to 18 KB.
	bs := h.editJP2Header(func(ihdr, cs []byte) {
		if ihdr != nil {
			be.PutUint32(ihdr[0:], 1)
			be.PutUint32(ihdr[4:], 52430)
		}
		if cs != nil {
			be.PutUint32(cs[sizXsiz:], 52430)
			be.PutUint32(cs[sizYsiz:], 1)
			be.PutUint32(cs[sizXTsiz:], 1)
			be.PutUint32(cs[sizYTsiz:], 1)
		}
	})
	size := len(encodeBoxes(bs))
	if pad := 18*1024 - size - 8; pad > 0 {
		bs = insertBefore(bs, "jp2c", box{typ: "free", payload: make([]byte, pad)})
	}
	h.boxes("jp2_siz_52430_tiles", "SIZ declaring 52,430 codestream tiles in an 18 KB file", bs)
	h.want(Corrupt)
	h.slow()
}

// insertBefore puts extra boxes before the first top-level box of type typ.
func insertBefore(bs []box, typ string, extra ...box) []box {
	var out []box
	for _, bx := range bs {
		if bx.typ == typ {
			out = append(out, extra...)
		}
		out = append(out, bx)
	}
	return out
}

func (h *hostile) jp2Structure() {
	tiny := make([]box, 4000)
	for i := range tiny {
		tiny[i] = box{typ: "free"}
	}
	h.boxes("jp2_4000_boxes", "4,000 empty boxes before the codestream", insertBefore(h.gmlJP2, "jp2c", tiny...))
	h.want(Readable, Corrupt)
	h.slow()

	xl := binary.BigEndian.AppendUint32(nil, 1)
	xl = append(xl, "xml "...)
	xl = binary.BigEndian.AppendUint64(xl, 0x7FFF_FFFF_FFFF_FFFF)
	xl = append(xl, "<x/>"...)
	h.raw("jp2_xlbox_max", "jp2_xlbox_max.jp2", WriterGDALEdit, "an xml box with XLBox 0x7FFF_FFFF_FFFF_FFFF before the codestream",
		spliceBefore(h.gmlJP2, "jp2c", xl))
	h.want(Corrupt)

	zero := binary.BigEndian.AppendUint32(nil, 0)
	zero = append(zero, "xml "...)
	zero = append(zero, "<x/>"...)
	h.raw("jp2_box_length_0", "jp2_box_length_0.jp2", WriterGDALEdit, "a box of length 0 (to end of file) before the codestream, swallowing it",
		spliceBefore(h.gmlJP2, "jp2c", zero))
	h.want(Corrupt, NotGeoreferenced)

	nested := box{typ: "lbl ", payload: []byte("gml.data")}
	deep := box{typ: "asoc", kids: []box{nested}}
	for i := 0; i < 999; i++ {
		deep = box{typ: "asoc", kids: []box{{typ: "lbl ", payload: []byte("gml.data")}, deep}}
	}
	h.boxes("jp2_asoc_depth_1000", "asoc boxes nested 1,000 deep, labelled gml.data, before the GMLJP2 box", insertBefore(h.gmlJP2, "asoc", deep))
	h.want(Readable, Corrupt)
	h.slow()

	big := binary.BigEndian.AppendUint32(nil, 8+9+8+60<<20)
	big = append(big, "asoc"...)
	big = append(big, rawBox("lbl ", []byte("gml.data"))...)
	big = binary.BigEndian.AppendUint32(big, 8+60<<20)
	big = append(big, "xml "...)
	big = append(big, `<?xml version="1.0"?><gml:FeatureCollection>`...)
	h.raw("jp2_gml_60mb", "jp2_gml_60mb.jp2", WriterGDALEdit, "a GML xml box declaring 60 MB in a small file, before the codestream",
		spliceBefore(h.gmlJP2, "jp2c", big))
	h.want(Corrupt)
	h.slow()
}

// spliceBefore inserts raw bytes before the first top-level box typ.
func spliceBefore(bs []box, typ string, raw []byte) []byte {
	var out []byte
	for _, bx := range bs {
		if bx.typ == typ {
			out = append(out, raw...)
		}
		out = append(out, bx.encode()...)
	}
	return out
}

func u64(v uint64) *uint64 { return &v }

func (h *hostile) tiffCounts() {
	le := binary.LittleEndian
	// 640,000 x 640,000 px in 16 x 16 tiles: 1.6e9 tiles, arrays the file
	// does not hold.
	g := newGeoTIFF(le, false)
	t := g.file()
	dropStrips(t)
	t.set(entry{tag: 256, typ: tLong, val: longs(le, 640000)})
	t.set(entry{tag: 257, typ: tLong, val: longs(le, 640000)})
	t.set(entry{tag: 322, typ: tShort, val: shorts(le, 16)})
	t.set(entry{tag: 323, typ: tShort, val: shorts(le, 16)})
	t.set(entry{tag: 324, typ: tLong, count: 1_600_000_000, at: u64(16)})
	t.set(entry{tag: 325, typ: tLong, count: 1_600_000_000, at: u64(16)})
	h.tiff("tif_1p6e9_tiles", "TIFF declaring 1.6e9 tiles", t)
	h.want(Corrupt)
	h.slow()

	t = newGeoTIFF(le, false).file()
	t.set(entry{tag: 257, typ: tLong, val: longs(le, 1_000_000_000)})
	t.set(entry{tag: 278, typ: tLong, val: longs(le, 1)})
	t.set(entry{tag: 273, typ: tLong, count: 1_000_000_000, at: u64(16)})
	t.set(entry{tag: 279, typ: tLong, count: 1_000_000_000, at: u64(16)})
	h.tiff("tif_1e9_strips", "TIFF declaring 1e9 strips", t)
	h.want(Corrupt)
	h.slow()

	t = newGeoTIFF(le, false).file()
	t.set(entry{tag: 279, typ: tLong, count: math.MaxUint32, at: u64(16)})
	h.tiff("tif_count_2p32", "StripByteCounts with a count of 2^32-1", t)
	h.want(Corrupt)
	t = newGeoTIFF(le, false).file()
	t.set(entry{tag: 34735, typ: tShort, count: math.MaxUint32, at: u64(16)})
	h.tiff("tif_geokeys_count_2p32", "GeoKeyDirectory with a count of 2^32-1", t)
	h.want(Corrupt, NoCRS)

	g = newGeoTIFF(le, false)
	g.geoKeys = []uint16{1, 1, 0, 60000, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 2154}
	h.tiff("tif_geokeys_overflow", "GeoKeyDirectory declaring 60,000 keys in a 16-short array", g.file())
	h.want(Corrupt, NoCRS)
	g = newGeoTIFF(le, false)
	g.geoKeys = []uint16{1, 1, 0, 2, 1024, 0, 1, 1, 3072, 34736, 65535, 0}
	h.tiff("tif_geokeys_bad_ref", "a GeoKey whose value points 65,535 doubles into a missing GeoDoubleParams", g.file())
	h.want(Corrupt, NoCRS, NotGeoreferenced)

	t = newGeoTIFF(le, false).file()
	big := make([]uint32, 8)
	for i := range big {
		big[i] = 1 << 30
	}
	t.set(entry{tag: 279, typ: tLong, val: longs(le, big...)})
	h.tiff("tif_bytecounts_past_file", "StripByteCounts summing far past the file", t)
	h.want(Corrupt)

	t = newGeoTIFF(le, false).file()
	zeros := make([]uint32, 8)
	t.set(entry{tag: 273, typ: tLong, val: longs(le, zeros...)})
	t.set(entry{tag: 279, typ: tLong, val: longs(le, zeros...)})
	h.tiff("tif_all_sparse", "every strip sparse (offset and byte count 0)", t)
	h.want(Empty)

	t = newGeoTIFF(le, false).file()
	t.set(entry{tag: 256, typ: tLong, val: longs(le, math.MaxUint32)})
	h.tiff("tif_width_2p32", "ImageWidth 2^32-1 with 8 strips of 64 rows' worth", t)
	h.want(Corrupt)
	h.slow()
}

// dropStrips removes the strip tags (for a tiled layout).
func dropStrips(t *tiffFile) {
	var kept []entry
	for _, e := range t.ifds[0] {
		if e.tag != 273 && e.tag != 278 && e.tag != 279 {
			kept = append(kept, e)
		}
	}
	t.ifds[0] = kept
}

func (h *hostile) tiffStructure() {
	le, be := binary.LittleEndian, binary.BigEndian
	t := newGeoTIFF(le, false).file()
	b := t.bytes()
	ifd := uint64(le.Uint32(b[4:]))
	t.next = map[int]uint64{0: ifd}
	h.tiff("tif_ifd_self_loop", "the first IFD's next-IFD offset points at itself", t)
	h.want(Readable, Corrupt)

	t = newGeoTIFF(be, false).file()
	t.ifds = append(t.ifds, t.ifds[0])
	b = t.bytes()
	t.next = map[int]uint64{1: uint64(be.Uint32(b[4:]))}
	h.tiff("tif_ifd_loop_two", "big-endian TIFF whose second IFD points back at the first", t)
	h.want(Readable, Corrupt)

	t = newGeoTIFF(le, false).file()
	t.firstIFD = u64(1 << 31)
	h.tiff("tif_ifd_past_eof", "first IFD offset 2^31 in a small file", t)
	h.want(Corrupt)

	t = newGeoTIFF(le, true).file()
	t.firstIFD = u64(0x8000_0000_0000_0010)
	h.tiff("bigtiff_ifd_past_2p63", "BigTIFF first IFD offset past 2^63", t)
	h.want(Corrupt)

	t = newGeoTIFF(be, true).file()
	past := make([]uint64, 8)
	for i := range past {
		past[i] = 0x8000_0000_0000_0000 + uint64(i)*4096
	}
	t.set(entry{tag: 273, typ: tLong8, val: long8s(be, past...)})
	h.tiff("bigtiff_strips_past_2p63", "big-endian BigTIFF whose strip offsets lie past 2^63", t)
	h.want(Corrupt)

	t = newGeoTIFF(le, true).file()
	t.set(entry{tag: 279, typ: tLong8, count: 1 << 62, at: u64(0x7FFF_FFFF_FFFF_FFF0)})
	h.tiff("bigtiff_count_2p62", "BigTIFF StripByteCounts with a count of 2^62 at offset 2^63-16", t)
	h.want(Corrupt)
}

func (h *hostile) placement() {
	for _, d := range []struct{ name, ext, drv string }{{"tif", ".tif", "GTiff"}, {"jp2", ".jp2", "JP2OpenJPEG"}} {
		r := defaultRaster(d.drv)
		r.srs = "EPSG:4326"
		h.gdal(d.name+"_4326_lambert_coords", d.ext, r, "header says EPSG:4326, coordinates are Lambert-93's")
		h.want(Misplaced)

		r = defaultRaster(d.drv)
		r.gt = [6]float64{700000, 0, 0.5, 6600032, -0.5, 0}
		h.gdal(d.name+"_hostile_transposed", d.ext, r, "transposed geotransform: a valid tile")
		h.want(Readable)
	}
	// UTM 60N reaches the antimeridian; a 1.28 km tile straddles it.
	r := defaultRaster("GTiff")
	r.srs, r.gt = "EPSG:32660", [6]float64{833000, 20, 0, 101280, 0, -20}
	h.gdal("tif_antimeridian_utm60", ".tif", r, "tile across the antimeridian in UTM 60N")
	h.want(Readable, Misplaced)
	r = defaultRaster("JP2OpenJPEG")
	r.srs, r.gt = "EPSG:3832", [6]float64{3339000, 20, 0, 1001280, 0, -20}
	h.gdal("jp2_antimeridian_pdc", ".jp2", r, "tile across the antimeridian in PDC Mercator")
	h.want(Readable, Misplaced)
}

func (h *hostile) garbage() {
	h.raw("zero_byte_jp2", "zero_byte_jp2.jp2", WriterRaw, "zero bytes", nil)
	h.want(Empty)
	h.raw("zero_byte_tif", "zero_byte_tif.TIF", WriterRaw, "zero bytes, upper-case extension", nil)
	h.want(Empty)
	page := []byte("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n")
	h.raw("html_jp2", "html_jp2.jp2", WriterRaw, "an HTML error page saved as .jp2", page)
	h.want(Corrupt)
	h.raw("html_tif", "html_tif.tif", WriterRaw, "an HTML error page saved as .tif", page)
	h.want(Corrupt)
	noise := make([]byte, 70000)
	x := uint32(2463534242)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	h.raw("noise_tif", "noise_tif.tif", WriterRaw, "70 KB of noise", noise)
	h.want(Corrupt)
	noisy := append([]byte("II*\x00\x08\x00\x00\x00"), noise...)
	h.raw("noise_after_tiff_magic", "noise_after_tiff_magic.tif", WriterRaw, "a TIFF header followed by noise", noisy)
	h.want(AnyProblem...)
	noisy = append(bytes.Clone(h.jp2[:60]), noise...)
	h.raw("noise_after_jp2_header", "noise_after_jp2_header.jp2", WriterRaw, "JP2 signature, ftyp, then noise", noisy)
	h.want(AnyProblem...)

	for _, cut := range []int{1, 12, 40, 200, len(h.jp2) / 2, len(h.jp2) - 1} {
		name := fmt.Sprintf("jp2_truncated_%d", cut)
		h.raw(name, name+".jp2", WriterGDALEdit, fmt.Sprintf("GDAL's JP2 cut after %d of %d bytes", cut, len(h.jp2)), h.jp2[:cut])
		h.want(Corrupt)
	}
	tif := newGeoTIFF(binary.LittleEndian, false).file().bytes()
	for _, cut := range []int{1, 7, 100, len(tif) / 2, len(tif) - 1} {
		name := fmt.Sprintf("tif_truncated_%d", cut)
		h.raw(name, name+".tif", WriterGo, fmt.Sprintf("strip TIFF cut after %d of %d bytes", cut, len(tif)), tif[:cut])
		h.want(Corrupt)
		if cut == len(tif)-1 {
			// Only the end of the GeoKey directory is lost: GDAL drops the
			// keys and reads the tile without a CRS.
			h.want(Corrupt, NoCRS)
		}
	}
}
