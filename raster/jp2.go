package raster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
)

// UUIDs of the boxes GDAL reads georeferencing (GeoJP2: a degenerate
// GeoTIFF; MSIG: a world file) or metadata (XMP) from.
var (
	geoJP2UUID = []byte{0xb1, 0x4b, 0xf8, 0xbd, 0x08, 0x3d, 0x4b, 0x43, 0xa5, 0xae, 0x8c, 0xd7, 0xd5, 0xa6, 0xce, 0x03}
	msigUUID   = []byte{0x96, 0xa9, 0xf1, 0xf1, 0xdc, 0x98, 0x40, 0x2d, 0xa7, 0xae, 0xd6, 0x8e, 0x34, 0x45, 0x18, 0x09}
	xmpUUID    = []byte{0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf, 0xac}
)

// fastTopBoxes are the top-level boxes the fast header understands or
// knows GDAL ignores for the header; any other (JPX compositing, fragment
// tables, JUMBF…) sends the file to GDAL.
var fastTopBoxes = map[string]bool{"jP  ": true, "ftyp": true, "rreq": true, "jp2h": true, "uuid": true, "asoc": true, "xml ": true, "jp2i": true, "jp2c": true, "free": true}

// jp2Info is what scanJP2 read of a JPEG 2000 file: the image header and
// colour boxes, the codestream's SIZ and COD, the GMLJP2 root instance,
// and whatever makes the Go reading uncertain.
type jp2Info struct {
	bare bool // a raw codestream, no JP2 boxes

	ihdrCount          int
	width, height, nc  uint32
	bpc, ihdrComp      byte
	colrCount          int
	colrMethod         byte
	enumCS             uint32
	jp2hCount, csCount int

	cs codestream

	// GDAL reads GeoJP2 boxes before GMLJP2, and MSIG when both fail.
	geoJP2 [][]byte // their bodies after the UUID, nil when too long to read
	msig   int
	// gml is the GMLJP2 root instance GDAL reads, when exactly one box
	// could be it (gmlCount).
	gml      []byte
	gmlCount int
	// odd is set by anything the fast header does not read as GDAL does;
	// gmlOdd by GML boxes GDAL may read another way.
	odd, gmlOdd bool

	incomplete *Problem
}

// codestream is what the main header's SIZ, COD and COM segments say.
type codestream struct {
	ok            bool // SIZ read and sane
	width, height uint32
	csiz          uint32
	ssiz          byte // common depth and sign of every component, 0xFF when mixed
	subsampled    bool
	sizSize       bool // Lsiz matches Csiz
	// The main header's COD count and wavelet transform (0: 9-7
	// irreversible, 1: 5-3 reversible), and the comments about it.
	codCount                int
	transform               byte
	lossyNote, losslessNote int
	oddComment              bool
}

// scanJP2 walks the JPEG 2000 boxes (or a raw codestream) the way GDAL
// will, reading only through the block cache, and sets the file aside
// before GDAL sees it when it declares more than the caps allow. A
// transfer cut short is not an error here: it is in incompleteProblem,
// returned after the header is read.
func scanJP2(o *openObject, f *cachedFile) (*jp2Info, error) {
	r := &jp2Reader{o: o, f: f}
	j := &jp2Info{}
	head, ok, err := r.read(0, 4)
	if err != nil {
		return nil, err
	}
	if ok && bytes.Equal(head, []byte{0xFF, 0x4F, 0xFF, 0x51}) {
		j.bare = true
		if err := j.readCodestream(r, 0, f.size); err != nil {
			return nil, err
		}
		return j, nil
	}
	for off, top := int64(0), 0; off < f.size; top++ {
		if top == maxJP2TopBoxes {
			return nil, problem(ErrCorrupt, "JPEG 2000 file holds more than %d top-level boxes", maxJP2TopBoxes)
		}
		b, err := r.box(off, f.size)
		switch {
		case errors.Is(err, errJP2Header):
			j.cut(problem(ErrCorrupt, "JPEG 2000 box header at byte %d cut short (object holds %d bytes)", off, f.size))
			return j, nil
		case err != nil:
			return nil, err
		case b.size < b.hdr:
			j.cut(problem(ErrCorrupt, "JPEG 2000 box %q at byte %d declares an impossible length %d", b.typ, off, b.size))
			return j, nil
		case !b.fits(f.size):
			j.cut(problem(ErrCorrupt, "JPEG 2000 box %q at byte %d declares %d bytes, ending at byte %d, but the object holds %d bytes: transfer cut short", b.typ, off, b.size, b.declaredEnd(), f.size))
			if b.typ == "jp2c" && j.csCount == 0 {
				j.csCount++
				// The main header may still be whole: read it for the
				// caps and the header.
				if err := j.readCodestream(r, b.body(), f.size); err != nil {
					return nil, err
				}
			}
			return j, nil
		}
		// OpenJPEG wants the signature, then the file type, first.
		if top == 0 && b.typ != "jP  " || top == 1 && b.typ != "ftyp" {
			j.odd = true
		}
		if err := j.visitTop(r, b); err != nil {
			return nil, err
		}
		off = b.end()
	}
	return j, nil
}

// cut records the first sign of a transfer cut short.
func (j *jp2Info) cut(p *Problem) {
	if j.incomplete == nil {
		j.incomplete = p
	}
}

// visitTop reads one top-level box that fits the file.
func (j *jp2Info) visitTop(r *jp2Reader, b jp2Box) error {
	if !fastTopBoxes[b.typ] {
		j.odd = true
	}
	switch b.typ {
	case "jp2h":
		j.jp2hCount++
		if j.csCount > 0 {
			j.odd = true // OpenJPEG wants the image header before the codestream
		}
		return j.readJP2H(r, b)
	case "uuid":
		if b.size-b.hdr < 16 {
			return nil
		}
		id, ok, err := r.read(b.body(), 16)
		if err != nil || !ok {
			return err
		}
		switch {
		case bytes.Equal(id, geoJP2UUID):
			if err := r.countMeta(b); err != nil {
				return err
			}
			body, ok, err := r.data(b, BlockSize)
			if err != nil {
				return err
			}
			if ok {
				body = body[16:]
			}
			j.geoJP2 = append(j.geoJP2, body)
		case bytes.Equal(id, msigUUID):
			j.msig++
			return r.countMeta(b)
		case bytes.Equal(id, xmpUUID):
			return r.countMeta(b)
		}
	case "xml ", "jp2i":
		return r.countMeta(b)
	case "asoc":
		return j.readAsoc(r, b)
	case "jp2c":
		j.csCount++
		if j.csCount > 1 {
			j.odd = true // GDAL reads the first codestream only
			return nil
		}
		return j.readCodestream(r, b.body(), b.end())
	}
	return nil
}

// readJP2H reads the image header box's children.
func (j *jp2Info) readJP2H(r *jp2Reader, parent jp2Box) error {
	whole, err := r.children(parent, func(b jp2Box) error {
		switch b.typ {
		case "ihdr":
			j.ihdrCount++
			if b.off != parent.body() {
				j.odd = true // OpenJPEG wants it first
			}
			body, ok, err := r.read(b.body(), 14)
			if err != nil {
				return err
			}
			if !ok || b.size-b.hdr != 14 {
				j.odd = true
				return nil
			}
			j.height, j.width = binary.BigEndian.Uint32(body[0:4]), binary.BigEndian.Uint32(body[4:8])
			j.nc = uint32(binary.BigEndian.Uint16(body[8:10]))
			j.bpc, j.ihdrComp = body[10], body[11]
			if j.width > maxJP2Side || j.height > maxJP2Side {
				return problem(ErrCorrupt, "JPEG 2000 image header declares %d x %d pixels, more than the %d-pixel side limit", j.width, j.height, maxJP2Side)
			}
			if j.nc > maxJP2Components {
				return problem(ErrCorrupt, "JPEG 2000 image header declares %d components, more than the limit of %d", j.nc, maxJP2Components)
			}
		case "colr":
			j.colrCount++
			body, ok, err := r.read(b.body(), 7)
			if err != nil {
				return err
			}
			if !ok || b.size-b.hdr < 7 {
				j.odd = true
				return nil
			}
			j.colrMethod, j.enumCS = body[0], binary.BigEndian.Uint32(body[3:7])
		case "res ":
			// GDAL reads the first child of a resolution box: walk them
			// for the caps; they only make metadata.
			_, err := r.children(b, func(jp2Box) error { return nil })
			return err
		default: // cdef, pclr, cmap, bpcc…: colours GDAL reads its own way
			j.odd = true
		}
		return nil
	})
	if !whole {
		j.odd = true
	}
	return err
}

// readAsoc reads a top-level association box the way GDAL does: only one
// whose first child is the label "gml.data" holds GML, in the association
// boxes it contains, each a label and an XML box.
func (j *jp2Info) readAsoc(r *jp2Reader, parent jp2Box) error {
	if parent.end()-parent.body() < 8 {
		return nil
	}
	first, err := r.box(parent.body(), parent.end())
	if errors.Is(err, errJP2Header) {
		return nil
	}
	if err != nil || !first.fits(parent.end()) || first.typ != "lbl " {
		return err
	}
	if err := r.countMeta(first); err != nil {
		return err
	}
	label, err := j.label(r, first)
	if err != nil || !strings.EqualFold(label, "gml.data") {
		return err
	}
	whole, err := r.children(parent, func(b jp2Box) error {
		if b.typ != "asoc" {
			return nil
		}
		return j.readGMLAsoc(r, b)
	})
	if !whole {
		j.gmlOdd = true
	}
	return err
}

// readGMLAsoc reads one labelled XML box of the GML data.
func (j *jp2Info) readGMLAsoc(r *jp2Reader, parent jp2Box) error {
	var (
		label        string
		xmlBox       jp2Box
		labels, xmls int
	)
	whole, err := r.children(parent, func(b jp2Box) error {
		switch b.typ {
		case "lbl ":
			labels++
			if err := r.countMeta(b); err != nil {
				return err
			}
			l, err := j.label(r, b)
			label = l
			return err
		case "xml ":
			xmls++
			xmlBox = b
			return r.countMeta(b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !whole || labels > 1 || xmls > 1 {
		j.gmlOdd = true // GDAL keeps the last label and XML it reads
	}
	if labels == 0 || xmls == 0 {
		return nil
	}
	// GDAL files the XML under its label, case-insensitively, the last
	// one winning; a label "gml.root-instance=…" would also be found.
	if !strings.HasPrefix(strings.ToLower(label), "gml.root-instance") {
		return nil
	}
	j.gmlCount++
	if label != "gml.root-instance" {
		j.gmlOdd = true
		return nil
	}
	doc, ok, err := r.data(xmlBox, BlockSize)
	if err != nil {
		return err
	}
	if !ok {
		j.gmlOdd = true // too long to parse here: GDAL reads it
		return nil
	}
	j.gml = doc
	return nil
}

// label reads a label box as GDAL does (a C string); a label longer than
// any GDAL looks for is returned cut, with a byte that matches none.
func (j *jp2Info) label(r *jp2Reader, b jp2Box) (string, error) {
	n := min(b.size-b.hdr, 64)
	body, ok, err := r.read(b.body(), int(n))
	if err != nil || !ok {
		return "", err
	}
	if bytes.IndexByte(body, 0) < 0 && b.size-b.hdr > n {
		return cString(body) + "\xff", nil
	}
	return cString(body), nil
}

// readCodestream reads the main header's SIZ, applying the caps, its COD
// and comments, then follows the tile-parts in the bytes already fetched.
func (j *jp2Info) readCodestream(r *jp2Reader, start, end int64) error {
	head, ok, err := r.read(start, 6)
	if err != nil {
		return err
	}
	if !ok || head[0] != 0xFF || head[1] != 0x4F {
		j.cut(problem(ErrCorrupt, "JPEG 2000 codestream at byte %d does not start with SOC", start))
		return nil
	}
	if head[2] != 0xFF || head[3] != 0x51 {
		j.odd = true // no SIZ first: OpenJPEG's judgement
		return nil
	}
	lsiz := int(binary.BigEndian.Uint16(head[4:6]))
	siz, ok, err := r.read(start+4, lsiz) // from Lsiz on
	if err != nil {
		return err
	}
	if !ok || lsiz < 41 {
		j.odd = true
		return nil
	}
	if err := j.cs.readSIZ(siz); err != nil {
		return err
	}
	if err := j.readMarkers(r, start+4+int64(lsiz), end); err != nil {
		return err
	}
	j.checkTileParts(r, start, end)
	return nil
}

// readSIZ judges the SIZ segment (Lsiz onwards) against the caps.
func (c *codestream) readSIZ(siz []byte) error {
	u32 := func(at int) uint64 { return uint64(binary.BigEndian.Uint32(siz[at:])) }
	xsiz, ysiz, xo, yo := u32(4), u32(8), u32(12), u32(16)
	xt, yt, xto, yto := u32(20), u32(24), u32(28), u32(32)
	csiz := uint64(binary.BigEndian.Uint16(siz[36:38]))
	if xsiz <= xo || ysiz <= yo || xsiz <= xto || ysiz <= yto {
		return problem(ErrCorrupt, "JPEG 2000 codestream declares an empty image (SIZ %d x %d from %d, %d; tiles from %d, %d)", xsiz, ysiz, xo, yo, xto, yto)
	}
	w, h := xsiz-xo, ysiz-yo
	switch {
	case w > maxJP2Side || h > maxJP2Side:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d x %d pixels, more than the %d-pixel side limit", w, h, maxJP2Side)
	case csiz == 0 || csiz > maxJP2Components:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d components, outside the limit of 1 to %d", csiz, maxJP2Components)
	case w*h*csiz > maxJP2Samples:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d x %d pixels of %d components, more than the limit of %d samples", w, h, csiz, uint64(maxJP2Samples))
	case xt == 0 || yt == 0:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d x %d pixel tiles", xt, yt)
	}
	tiles := ((xsiz - xto + xt - 1) / xt) * ((ysiz - yto + yt - 1) / yt)
	switch {
	case tiles > maxJP2Tiles:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d tiles, more than the limit of %d", tiles, maxJP2Tiles)
	case tiles*csiz > maxJP2TileComponents:
		return problem(ErrCorrupt, "JPEG 2000 codestream declares %d tiles of %d components, more than the limit of %d tile-components", tiles, csiz, maxJP2TileComponents)
	}
	c.width, c.height, c.csiz = uint32(w), uint32(h), uint32(csiz)
	c.sizSize = len(siz) == 38+3*int(csiz)
	if !c.sizSize {
		return nil
	}
	c.ssiz = siz[38]
	for i := range int(csiz) {
		s := siz[38+3*i : 41+3*i]
		if s[0] != c.ssiz {
			c.ssiz = 0xFF
		}
		if s[1] != 1 || s[2] != 1 {
			c.subsampled = true
		}
	}
	c.ok = true
	return nil
}

// maxMainMarkers bounds the marker segments read, fetching, in the main
// header and the first tile-part header; real codestreams hold a handful.
const maxMainMarkers = 64

// readMarkers reads the main header's COD and the comments (COM) of the
// main header and of the first tile-part header, as far as its SOD: GDAL
// reads the reversibility it reports from them.
func (j *jp2Info) readMarkers(r *jp2Reader, pos, end int64) error {
	inTilePart := false
	for range maxMainMarkers {
		if pos > end-4 {
			return nil
		}
		m, ok, err := r.read(pos, 4)
		if err != nil || !ok {
			return err
		}
		if m[0] != 0xFF || m[1] == 0x93 || m[1] == 0xD9 { // SOD, EOC
			return nil
		}
		seg := int64(binary.BigEndian.Uint16(m[2:4]))
		if seg < 2 || seg > end-pos-2 {
			return nil
		}
		switch m[1] {
		case 0x52: // COD
			if inTilePart {
				break
			}
			cod, ok, err := r.read(pos, 14)
			if err != nil || !ok {
				return err
			}
			j.cs.codCount++
			j.cs.transform = cod[13]
		case 0x64: // COM
			com, ok, err := r.read(pos+4, int(seg-2))
			if err != nil || !ok {
				return err
			}
			j.cs.readComment(com, inTilePart)
		case 0x90: // SOT: the first tile-part's header follows
			if inTilePart {
				return nil
			}
			inTilePart = true
		}
		pos += 2 + seg
	}
	return nil
}

// readComment judges a COM segment (Rcom then the text) the way GDAL
// reports reversibility: GDAL's own writer, through OpenJPEG, notes
// "Created by OpenJPEG version 2.5.0. LOSSY settings used" (or LOSSLESS)
// for a reversible transform, and GDAL then trusts the note.
func (c *codestream) readComment(com []byte, inTilePart bool) {
	if len(com) < 2 {
		return
	}
	text := string(com[2:])
	lower := strings.ToLower(text)
	if !strings.Contains(lower, "loss") && !strings.Contains(lower, "settings") {
		return // a comment GDAL makes nothing of
	}
	const prefix = "Created by OpenJPEG version "
	version, note, ok := strings.Cut(strings.TrimPrefix(text, prefix), ". ")
	switch {
	case inTilePart || binary.BigEndian.Uint16(com) != 1 || !strings.HasPrefix(text, prefix) ||
		!ok || version == "" || strings.Trim(version, "0123456789.") != "":
		c.oddComment = true
	case note == "LOSSY settings used":
		c.lossyNote++
	case note == "LOSSLESS settings used":
		c.losslessNote++
	default:
		c.oddComment = true
	}
}

// compression is GDAL's COMPRESSION_REVERSIBILITY as the Header names it,
// or false when the comments leave it uncertain.
func (c *codestream) compression() (string, bool) {
	notes := c.lossyNote + c.losslessNote
	switch {
	case c.codCount != 1 || c.oddComment || notes > 1:
		return "", false
	case c.transform == 0 && notes == 0: // 9-7 irreversible wavelet
		return "LOSSY", true
	case c.transform == 1 && c.lossyNote == 1: // 5-3, but layers dropped
		return "LOSSY", true
	case c.transform == 1: // GDAL says LOSSLESS, or LOSSLESS (possibly)
		return "LOSSLESS", true
	}
	return "", false
}

// maxTileParts bounds the tile-parts followed in the cached bytes.
const maxTileParts = 1 << 16

// checkTileParts follows the chain of tile-parts (SOT markers' Psot) as far
// as the bytes already fetched go: a tile-part past the codestream's end
// means the transfer was cut. It costs no request.
func (j *jp2Info) checkTileParts(r *jp2Reader, start, end int64) {
	pos := start + 2
	for range maxTileParts {
		if pos > end-12 {
			return
		}
		buf, ok := r.f.peek(r.o, pos, 12)
		if !ok || buf[0] != 0xFF {
			return // not cached, or not a marker: the decoder judges
		}
		seg := int64(binary.BigEndian.Uint16(buf[2:4]))
		switch buf[1] {
		case 0xD9: // EOC
			return
		case 0x90: // SOT: Psot is the tile-part length from this marker on
			psot := int64(binary.BigEndian.Uint32(buf[6:10]))
			if psot == 0 {
				return // last tile-part, runs to EOC
			}
			if psot < 14 {
				return // impossible: the decoder judges
			}
			if psot > end-pos {
				j.cut(problem(ErrCorrupt, "JPEG 2000 tile-part at byte %d declares %d bytes, ending at byte %d, but the codestream ends at byte %d: transfer cut short", pos, psot, pos+psot, end))
				return
			}
			pos += psot
		default:
			if seg < 2 {
				return
			}
			pos += 2 + seg
		}
	}
}

// incompleteProblem is the transfer cut short that scanJP2 found (a box
// or a tile-part ending past the object), or nil.
func (j *jp2Info) incompleteProblem() *Problem { return j.incomplete }

// header is the header plain GDAL 3.6.2 (JP2OpenJPEG, no sibling files)
// gives for a plain PCRS JPEG 2000 file, read from the boxes: sRGB or
// greyscale, 8 or 16 unsigned bits, placed by its GeoJP2 box or, when it
// has none, by its GMLJP2 root instance, in a PCRS CRS. Anything else, or
// any doubt, returns false and GDAL reads the tile. jp2_test.go holds both
// readers to the same answers.
func (j *jp2Info) header() (*Header, bool) {
	if gdalOnly || j.bare || j.odd || j.jp2hCount != 1 || j.ihdrCount != 1 || j.colrCount != 1 || j.csCount != 1 {
		return nil, false
	}
	cs := j.cs
	if !cs.ok || cs.subsampled || j.colrMethod != 1 || j.ihdrComp != 7 ||
		cs.csiz != j.nc || cs.width != j.width || cs.height != j.height || j.bpc != cs.ssiz {
		return nil, false
	}
	var colors []string
	switch {
	case j.nc == 3 && j.enumCS == 16:
		colors = []string{"Red", "Green", "Blue"}
	case j.nc == 1 && j.enumCS == 17:
		colors = []string{"Gray"}
	default:
		return nil, false
	}
	var dataType string
	switch cs.ssiz {
	case 7:
		dataType = "Byte"
	case 15:
		dataType = "UInt16"
	default:
		return nil, false // signed, mixed, or depths GDAL reports with NBITS
	}
	gt, code, ok := j.georef()
	if !ok {
		return nil, false
	}
	compression, ok := cs.compression()
	if !ok {
		return nil, false
	}
	h := &Header{
		Driver:       "JP2OpenJPEG",
		MimeType:     "image/jp2",
		Width:        int(j.width),
		Height:       int(j.height),
		GeoTransform: gt,
		EPSG:         code,
		Compression:  compression,
		OpenDriver:   true,
	}
	for _, c := range colors {
		h.Bands = append(h.Bands, Band{Color: c, DataType: dataType})
	}
	return h, true
}

// georef is the georeferencing GDAL applies by default (GEOREF_SOURCES
// PAM,INTERNAL,WORLDFILE, INTERNAL being GeoJP2, GMLJP2, MSIG: the first
// that parses wins, whole). PAM and world files are siblings, the core's
// concern. An MSIG box, which GDAL reads when the others fail, or several
// GeoJP2 boxes, among which GDAL chooses, leave the file to GDAL.
func (j *jp2Info) georef() ([6]float64, int, bool) {
	switch {
	case j.msig > 0 || len(j.geoJP2) > 1:
		return [6]float64{}, 0, false
	case len(j.geoJP2) == 1:
		return geoJP2Georef(j.geoJP2[0])
	case j.gmlOdd || j.gmlCount != 1 || j.gml == nil:
		return [6]float64{}, 0, false
	}
	return gmlGeoref(j.gml)
}

// geoJP2Georef reads a GeoJP2 box's degenerate GeoTIFF with the TIFF
// reader: the geotransform and EPSG code GDAL takes from it, or false.
// PixelIsPoint (which GDAL's GeoJP2 reading shifts by its own rule), GCPs
// and anything the TIFF reader doubts leave the file to GDAL.
func geoJP2Georef(tiff []byte) ([6]float64, int, bool) {
	if tiff == nil {
		return [6]float64{}, 0, false
	}
	obj := File{Key: "geojp2.tif", Size: int64(len(tiff))}
	o, _, done := open(context.Background(), bytesSource(tiff), obj)
	defer done()
	t, err := scanTIFF(o, o.file(obj.Key))
	if err != nil {
		return [6]float64{}, 0, false
	}
	keys, ok := t.geoKeyMap()
	if !ok || keys[keyRasterType].value == rasterPixelIsPoint {
		return [6]float64{}, 0, false
	}
	code, ok := t.epsg()
	if !ok {
		return [6]float64{}, 0, false
	}
	gt, ok := t.geoTransform()
	if !ok {
		return [6]float64{}, 0, false
	}
	return gt, code, true
}

// bytesSource serves bytes already in memory (a box's content) as an object.
type bytesSource []byte

func (b bytesSource) ReadAt(_ context.Context, _ string, p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
