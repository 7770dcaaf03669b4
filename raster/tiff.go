package raster

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
)

// Caps on what a TIFF may declare, checked before any work proportional to
// it: a PCRS tile is a few thousand pixels a side in at most a few thousand
// strips or tiles, so these leave a wide margin and still refuse, in
// microseconds, the 70 KB file declaring a billion strips.
const (
	tiffMaxEntries    = 4096
	tiffMaxSide       = 1_000_000
	tiffMaxBlocks     = 1 << 20
	tiffMaxArrayBytes = 8 << 20 // one strip/tile offset or byte count array
	tiffMaxTagBytes   = 1 << 20 // any other tag's values
)

// TIFF tags read from the first IFD.
const (
	tagNewSubfileType      = 254
	tagImageWidth          = 256
	tagImageLength         = 257
	tagBitsPerSample       = 258
	tagCompression         = 259
	tagPhotometric         = 262
	tagStripOffsets        = 273
	tagSamplesPerPixel     = 277
	tagRowsPerStrip        = 278
	tagStripByteCounts     = 279
	tagPlanarConfiguration = 284
	tagColorMap            = 320
	tagTileWidth           = 322
	tagTileLength          = 323
	tagTileOffsets         = 324
	tagTileByteCounts      = 325
	tagExtraSamples        = 338
	tagSampleFormat        = 339
	tagModelPixelScale     = 33550
	tagIntergraphMatrix    = 33920
	tagModelTiepoint       = 33922
	tagModelTransformation = 34264
	tagGeoKeyDirectory     = 34735
	tagGeoDoubleParams     = 34736
	tagGeoASCIIParams      = 34737
	tagGDALMetadata        = 42112
	tagLercParameters      = 50674
)

// tiffTypeSizes are the byte sizes of the TIFF field types, by type code.
var tiffTypeSizes = map[uint16]int64{
	1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8,
}

// tiffEntry is one IFD entry: its type, value count and the inline value
// bytes (4 in classic TIFF, 8 in BigTIFF), which hold the values' offset
// when they do not fit.
type tiffEntry struct {
	typ    uint16
	count  uint64
	inline []byte
}

// tiffInfo is what scanTIFF read from the first IFD.
type tiffInfo struct {
	bo      binary.ByteOrder
	size    int64
	entries map[uint16]tiffEntry
	// unusual says why header() must leave the tile to GDAL ("" if not).
	unusual string

	width, height  int64
	samples        int64
	tiled          bool
	blockW, blockH int64
	across, down   int64 // blocks per row and per column of one plane
	planes         int64 // 1, or samples when planar configuration is separate

	// values read for header(), nil when the tag is absent.
	bits, sampleFormat, compression, photometric, planar, lerc, subfile []uint64
	scale, tiepoints, transform                                         []float64
	geoKeys                                                             []uint64
	geoASCII, gdalMetadata                                              string

	incomplete *Problem
}

// tiffReader reads one object's bytes for scanTIFF, through the block cache.
type tiffReader struct {
	o *openObject
	f *cachedFile
}

// read returns n bytes at off, which must lie within the object: a TIFF
// pointing outside itself is corrupt.
func (r tiffReader) read(off, n uint64, what string) ([]byte, error) {
	size := uint64(r.f.size)
	if off > size || n > size-off {
		return nil, problem(ErrCorrupt, "TIFF %s: %d bytes at byte %d, past the end of the object (%d bytes)", what, n, off, size)
	}
	b := make([]byte, n)
	if n == 0 {
		return b, nil
	}
	if _, err := r.f.readAt(r.o, b, int64(off)); err != nil {
		if serr := r.o.storageErr(); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	return b, nil
}

// scanTIFF parses the first IFD of a classic TIFF or BigTIFF, in Go,
// fetching through f.readAt (so the bytes are cached for GDAL), applying the
// caps before any work proportional to declared values. An error sets the
// tile aside before GDAL sees it: a *Problem (ErrCorrupt) or the storage's
// error. A cut transfer or an all-sparse image is in incompleteProblem.
func scanTIFF(o *openObject, f *cachedFile) (*tiffInfo, error) {
	r := tiffReader{o, f}
	t := &tiffInfo{size: f.size, entries: map[uint16]tiffEntry{}}
	if err := t.readIFD(r); err != nil {
		return nil, err
	}
	if err := t.readLayout(r); err != nil {
		return nil, err
	}
	if err := t.checkBlocks(r); err != nil {
		return nil, err
	}
	if err := t.readHeaderTags(r); err != nil {
		return nil, err
	}
	return t, nil
}

// readIFD reads the file header and the first IFD's entries.
func (t *tiffInfo) readIFD(r tiffReader) error {
	head, err := r.read(0, min(16, uint64(t.size)), "header")
	if err != nil {
		return err
	}
	if len(head) < 8 {
		return problem(ErrCorrupt, "TIFF header cut short: the object holds %d bytes", t.size)
	}
	switch string(head[:2]) {
	case "II":
		t.bo = binary.LittleEndian
	case "MM":
		t.bo = binary.BigEndian
	default:
		return problem(ErrCorrupt, "not a TIFF: byte order mark %q", head[:2])
	}
	var ifd, countSize, entrySize uint64
	switch t.bo.Uint16(head[2:4]) {
	case 42:
		ifd, countSize, entrySize = uint64(t.bo.Uint32(head[4:8])), 2, 12
	case 43:
		if len(head) < 16 || t.bo.Uint16(head[4:6]) != 8 || t.bo.Uint16(head[6:8]) != 0 {
			return problem(ErrCorrupt, "malformed BigTIFF header")
		}
		ifd, countSize, entrySize = t.bo.Uint64(head[8:16]), 8, 20
	default:
		return problem(ErrCorrupt, "not a TIFF: version %d", t.bo.Uint16(head[2:4]))
	}
	cb, err := r.read(ifd, countSize, "first IFD")
	if err != nil {
		return err
	}
	var count uint64
	if countSize == 2 {
		count = uint64(t.bo.Uint16(cb))
	} else {
		count = t.bo.Uint64(cb)
	}
	if count == 0 || count > tiffMaxEntries {
		return problem(ErrCorrupt, "TIFF first IFD declares %d entries, outside 1..%d", count, tiffMaxEntries)
	}
	raw, err := r.read(ifd+countSize, count*entrySize, "first IFD entries")
	if err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		e := raw[i*entrySize : (i+1)*entrySize]
		tag := t.bo.Uint16(e[0:2])
		ent := tiffEntry{typ: t.bo.Uint16(e[2:4])}
		if countSize == 2 {
			ent.count, ent.inline = uint64(t.bo.Uint32(e[4:8])), e[8:12]
		} else {
			ent.count, ent.inline = t.bo.Uint64(e[4:12]), e[12:20]
		}
		if _, dup := t.entries[tag]; dup {
			t.decline("tag %d appears twice", tag)
			continue
		}
		t.entries[tag] = ent
	}
	return nil
}

// decline records the first reason header() must leave the tile to GDAL.
func (t *tiffInfo) decline(format string, args ...any) {
	if t.unusual == "" {
		t.unusual = fmt.Sprintf(format, args...)
	}
}

// values returns a tag's raw value bytes (nil when absent), with at most
// limit bytes.
func (t *tiffInfo) values(r tiffReader, tag uint16, limit uint64) ([]byte, tiffEntry, error) {
	e, ok := t.entries[tag]
	if !ok {
		return nil, e, nil
	}
	size, known := tiffTypeSizes[e.typ]
	if !known {
		return nil, e, problem(ErrCorrupt, "TIFF tag %d has unknown type %d", tag, e.typ)
	}
	if e.count > limit/uint64(size) {
		return nil, e, problem(ErrCorrupt, "TIFF tag %d declares %d values, more than the limit of %d bytes", tag, e.count, limit)
	}
	n := e.count * uint64(size)
	if n <= uint64(len(e.inline)) {
		return e.inline[:n], e, nil
	}
	var off uint64
	if len(e.inline) == 4 {
		off = uint64(t.bo.Uint32(e.inline))
	} else {
		off = t.bo.Uint64(e.inline)
	}
	b, err := r.read(off, n, fmt.Sprintf("tag %d values", tag))
	return b, e, err
}

// uints reads an unsigned integer tag (BYTE, SHORT, LONG, LONG8 or IFD).
func (t *tiffInfo) uints(r tiffReader, tag uint16, limit uint64) ([]uint64, error) {
	if e, ok := t.entries[tag]; ok {
		switch e.typ {
		case 1, 3, 4, 7, 13, 16, 18:
		default:
			return nil, problem(ErrCorrupt, "TIFF tag %d has type %d, not an unsigned integer", tag, e.typ)
		}
	}
	b, e, err := t.values(r, tag, limit)
	if err != nil || b == nil {
		return nil, err
	}
	v := make([]uint64, e.count)
	for i := range v {
		switch e.typ {
		case 1, 7:
			v[i] = uint64(b[i])
		case 3:
			v[i] = uint64(t.bo.Uint16(b[2*i:]))
		case 4, 13:
			v[i] = uint64(t.bo.Uint32(b[4*i:]))
		default:
			v[i] = t.bo.Uint64(b[8*i:])
		}
	}
	return v, nil
}

// uint reads a single-valued unsigned integer tag; ok is false when absent.
func (t *tiffInfo) uint(r tiffReader, tag uint16) (uint64, bool, error) {
	v, err := t.uints(r, tag, 8)
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v) != 1 {
		return 0, false, problem(ErrCorrupt, "TIFF tag %d holds %d values, not one", tag, len(v))
	}
	return v[0], true, nil
}

// doubles reads a DOUBLE tag; any other type leaves the tile to GDAL.
func (t *tiffInfo) doubles(r tiffReader, tag uint16) ([]float64, error) {
	b, e, err := t.values(r, tag, tiffMaxTagBytes)
	if err != nil || b == nil {
		return nil, err
	}
	if e.typ != 12 {
		t.decline("tag %d has type %d, not DOUBLE", tag, e.typ)
		return nil, nil
	}
	v := make([]float64, e.count)
	for i := range v {
		v[i] = math.Float64frombits(t.bo.Uint64(b[8*i:]))
	}
	return v, nil
}

// ascii reads an ASCII tag; any other type leaves the tile to GDAL.
func (t *tiffInfo) ascii(r tiffReader, tag uint16) (string, error) {
	b, e, err := t.values(r, tag, tiffMaxTagBytes)
	if err != nil || b == nil {
		return "", err
	}
	if e.typ != 2 {
		t.decline("tag %d has type %d, not ASCII", tag, e.typ)
	}
	return string(b), nil
}

// readLayout reads the image size and its block grid, refusing declared
// sizes and block counts beyond the caps.
func (t *tiffInfo) readLayout(r tiffReader) error {
	var err error
	var ok bool
	var w, h uint64
	if w, ok, err = t.uint(r, tagImageWidth); err != nil {
		return err
	} else if !ok {
		return problem(ErrCorrupt, "TIFF first IFD has no ImageWidth")
	}
	if h, ok, err = t.uint(r, tagImageLength); err != nil {
		return err
	} else if !ok {
		return problem(ErrCorrupt, "TIFF first IFD has no ImageLength")
	}
	if w > tiffMaxSide || h > tiffMaxSide {
		return problem(ErrCorrupt, "TIFF declares %dx%d pixels, more than the limit of %d a side", w, h, tiffMaxSide)
	}
	t.width, t.height = int64(w), int64(h)
	spp, ok, err := t.uint(r, tagSamplesPerPixel)
	if err != nil {
		return err
	}
	if !ok {
		spp = 1
	}
	if spp == 0 || spp > math.MaxUint16 {
		return problem(ErrCorrupt, "TIFF declares %d samples per pixel", spp)
	}
	t.samples, t.planes = int64(spp), 1
	if t.planar, err = t.uints(r, tagPlanarConfiguration, 8); err != nil {
		return err
	}
	if len(t.planar) == 1 && t.planar[0] == 2 {
		t.planes = t.samples
	}

	var bw, bh uint64
	_, t.tiled = t.entries[tagTileWidth]
	if t.tiled {
		var okW, okH bool
		if bw, okW, err = t.uint(r, tagTileWidth); err != nil {
			return err
		}
		if bh, okH, err = t.uint(r, tagTileLength); err != nil {
			return err
		}
		if !okW || !okH || bw == 0 || bh == 0 {
			return problem(ErrCorrupt, "TIFF declares tiles of %dx%d pixels", bw, bh)
		}
	} else {
		bw = max(w, 1)
		rps, ok, err := t.uint(r, tagRowsPerStrip)
		if err != nil {
			return err
		}
		if !ok {
			rps = math.MaxUint32
		}
		if rps == 0 {
			return problem(ErrCorrupt, "TIFF declares 0 rows per strip")
		}
		bh = min(rps, max(h, 1))
	}
	t.blockW, t.blockH = int64(bw), int64(bh)
	t.across, t.down = int64((w+bw-1)/bw), int64((h+bh-1)/bh)
	// w, h ≤ 1e6 and planes < 65536: the product cannot overflow.
	if n := t.across * t.down * t.planes; n > tiffMaxBlocks {
		kind := "strips"
		if t.tiled {
			kind = "tiles"
		}
		return problem(ErrCorrupt, "TIFF declares %d %s, more than the limit of %d", n, kind, tiffMaxBlocks)
	}
	return nil
}

// checkBlocks reads the block offsets and byte counts and records, in
// t.incomplete, the first block ending past the object (a cut transfer) or
// an image whose every block is sparse.
func (t *tiffInfo) checkBlocks(r tiffReader) error {
	offTag, countTag, kind := uint16(tagStripOffsets), uint16(tagStripByteCounts), "Strip"
	if t.tiled {
		offTag, countTag, kind = tagTileOffsets, tagTileByteCounts, "Tile"
	}
	n := uint64(t.across * t.down * t.planes)
	for _, tag := range []uint16{offTag, countTag} {
		if e, ok := t.entries[tag]; ok && e.count != n {
			return problem(ErrCorrupt, "TIFF declares %d values for tag %d, not the %d its %dx%d pixels in %dx%d blocks need", e.count, tag, n, t.width, t.height, t.blockW, t.blockH)
		}
	}
	if _, ok := t.entries[offTag]; !ok {
		return problem(ErrCorrupt, "TIFF first IFD has no %sOffsets", kind)
	}
	if _, ok := t.entries[countTag]; !ok {
		// libtiff estimates missing byte counts: GDAL decides.
		t.decline("no %sByteCounts", kind)
		return nil
	}
	offsets, err := t.uints(r, offTag, tiffMaxArrayBytes)
	if err != nil {
		return err
	}
	counts, err := t.uints(r, countTag, tiffMaxArrayBytes)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	size := uint64(t.size)
	written := 0
	for i := range offsets {
		off, c := offsets[i], counts[i]
		if c == 0 {
			continue // sparse: never written
		}
		written++
		if off <= size && c <= size-off {
			continue
		}
		if t.incomplete == nil {
			perPlane := uint64(t.across * t.down)
			in := uint64(i) % perPlane
			x, y, band := in%uint64(t.across), in/uint64(t.across), uint64(i)/perPlane+1
			end := off + c
			if end < off || end > math.MaxInt64 {
				return problem(ErrCorrupt, "TIFF block %d,%d of band %d declares %d bytes at byte %d: beyond any file", x, y, band, c, off)
			}
			t.incomplete = problem(ErrCorrupt, "TIFF block %d,%d of band %d declares %d bytes at byte %d, ending at byte %d, but the object holds %d bytes: transfer cut short", x, y, band, c, off, end, size)
		}
	}
	if written == 0 {
		t.incomplete = problem(ErrEmpty, "no pixels: every one of the %d blocks is sparse (never written)", n)
	}
	return nil
}

// readHeaderTags reads what header() and epsg() need. A defect there only
// makes header() decline (GDAL reads the tile and says what it thinks); a
// storage error is returned.
func (t *tiffInfo) readHeaderTags(r tiffReader) error {
	for _, u := range []struct {
		tag uint16
		dst *[]uint64
	}{
		{tagBitsPerSample, &t.bits}, {tagSampleFormat, &t.sampleFormat}, {tagCompression, &t.compression},
		{tagPhotometric, &t.photometric}, {tagLercParameters, &t.lerc}, {tagGeoKeyDirectory, &t.geoKeys},
		{tagNewSubfileType, &t.subfile},
	} {
		v, err := t.uints(r, u.tag, tiffMaxTagBytes)
		if err = t.declineOn(r, err); err != nil {
			return err
		}
		*u.dst = v
	}
	for _, d := range []struct {
		tag uint16
		dst *[]float64
	}{{tagModelPixelScale, &t.scale}, {tagModelTiepoint, &t.tiepoints}, {tagModelTransformation, &t.transform}} {
		v, err := t.doubles(r, d.tag)
		if err = t.declineOn(r, err); err != nil {
			return err
		}
		*d.dst = v
	}
	var err error
	if t.geoASCII, err = t.ascii(r, tagGeoASCIIParams); err != nil {
		if err = t.declineOn(r, err); err != nil {
			return err
		}
	}
	t.gdalMetadata, err = t.ascii(r, tagGDALMetadata)
	return t.declineOn(r, err)
}

// declineOn turns a defect (a *Problem) into a reason to decline, and
// returns any other error, and the reason reading stopped (storage failure,
// context, header budget) whatever the error.
func (t *tiffInfo) declineOn(r tiffReader, err error) error {
	if err == nil {
		return nil
	}
	if serr := r.o.storageErr(); serr != nil {
		return serr
	}
	var p *Problem
	if errors.As(err, &p) {
		t.decline("%s", p.Detail)
		return nil
	}
	return err
}

// incompleteProblem is the cut transfer or all-sparse image scanTIFF found,
// nil when every block is within the object.
func (t *tiffInfo) incompleteProblem() *Problem { return t.incomplete }

// GeoKeys epsg() knows, and the values under which GDAL reads exactly the
// EPSG code of ProjectedCSTypeGeoKey.
const (
	keyModelType       = 1024
	keyRasterType      = 1025
	keyCitation        = 1026
	keyGeographicType  = 2048
	keyGeogCitation    = 2049
	keyGeogAngularUnit = 2054
	keyProjectedCSType = 3072
	keyPCSCitation     = 3073
	keyProjLinearUnits = 3076

	rasterPixelIsArea  = 1
	rasterPixelIsPoint = 2
)

// geoKey is one GeoKey entry.
type geoKey struct{ loc, count, value uint64 }

// geoKeyMap decodes the GeoKeyDirectory; ok is false when it is absent or
// malformed or holds a key twice.
func (t *tiffInfo) geoKeyMap() (map[uint64]geoKey, bool) {
	k := t.geoKeys
	if len(k) < 4 || k[0] != 1 || k[1] != 1 || k[2] > 1 {
		return nil, false
	}
	n := k[3]
	if n > uint64(len(k)-4)/4 {
		return nil, false
	}
	keys := make(map[uint64]geoKey, n)
	for i := uint64(0); i < n; i++ {
		e := k[4+4*i : 8+4*i]
		if _, dup := keys[e[0]]; dup {
			return nil, false
		}
		keys[e[0]] = geoKey{loc: e[1], count: e[2], value: e[3]}
	}
	return keys, true
}

// epsg is the PCRS EPSG code the GeoKeys declare when they say exactly that
// and nothing GDAL would read differently: a projected model, metre units,
// no vertical, user-defined or unknown key.
func (t *tiffInfo) epsg() (int, bool) {
	keys, ok := t.geoKeyMap()
	if !ok {
		return 0, false
	}
	short := func(id, want uint64) bool {
		k, ok := keys[id]
		return ok && k.loc == 0 && k.count == 1 && k.value == want
	}
	pcs, ok := keys[keyProjectedCSType]
	if !ok || pcs.loc != 0 || pcs.count != 1 || !pcrsCRS(int(pcs.value)) || !short(keyModelType, 1) {
		return 0, false
	}
	for id, k := range keys {
		switch id {
		case keyModelType, keyProjectedCSType:
		case keyRasterType:
			if !short(id, rasterPixelIsArea) && !short(id, rasterPixelIsPoint) {
				return 0, false
			}
		case keyProjLinearUnits:
			if !short(id, 9001) { // metre
				return 0, false
			}
		case keyGeographicType:
			if !short(id, 4171) { // RGF93, the base of every PCRS CRS
				return 0, false
			}
		case keyGeogAngularUnit:
			if !short(id, 9102) { // degree
				return 0, false
			}
		case keyCitation, keyGeogCitation, keyPCSCitation:
			if !t.plainCitation(k) {
				return 0, false
			}
		default:
			return 0, false
		}
	}
	return int(pcs.value), true
}

// plainCitation says whether a citation key is a mere name. GDAL parses
// some citations (ESRI PE strings, IMAGINE's "Projection Name = ...", unit
// names), which may override the EPSG code's definition.
func (t *tiffInfo) plainCitation(k geoKey) bool {
	if k.loc != tagGeoASCIIParams || k.value > uint64(len(t.geoASCII)) || k.count > uint64(len(t.geoASCII))-k.value {
		return false
	}
	s := t.geoASCII[k.value : k.value+k.count]
	for _, marker := range []string{"=", "ESRI", "IMAGINE", "Zone", "zone", "PE String", "Units", "units"} {
		if strings.Contains(s, marker) {
			return false
		}
	}
	return true
}

// tiffCompressions are GDAL's COMPRESSION names by TIFF compression code.
var tiffCompressions = map[uint64]string{
	1: "NONE", 5: "LZW", 7: "JPEG", 8: "DEFLATE", 32946: "DEFLATE", 32773: "PACKBITS",
	34925: "LZMA", 50000: "ZSTD", 50001: "WEBP", 34887: "LERC",
}

// header is the Header exactly as plain GDAL 3.6.2 gives it for this file
// opened with no sibling, for the common PCRS shapes (8- or 16-bit RGB, JPEG
// YCbCr, grey); ok is false whenever anything might make GDAL say otherwise.
func (t *tiffInfo) header() (*Header, bool) {
	if gdalOnly || gdalTIFFConfigured() || t.unusual != "" || t.width == 0 || t.height == 0 {
		return nil, false
	}
	code, ok := t.epsg()
	if !ok {
		return nil, false
	}
	bands, ok := t.bands()
	if !ok {
		return nil, false
	}
	comp, ok := t.compressionName()
	if !ok {
		return nil, false
	}
	gt, ok := t.geoTransform()
	if !ok {
		return nil, false
	}
	if !t.plainMetadata() {
		return nil, false
	}
	for _, tag := range []uint16{tagColorMap, tagExtraSamples, tagIntergraphMatrix, tagGeoDoubleParams} {
		if _, ok := t.entries[tag]; ok {
			return nil, false
		}
	}
	if len(t.subfile) > 0 && (len(t.subfile) != 1 || t.subfile[0] != 0) {
		return nil, false // a reduced-resolution image or a mask first
	}
	return &Header{
		Driver: "GTiff", MimeType: "image/tiff",
		Width: int(t.width), Height: int(t.height),
		Bands: bands, GeoTransform: gt, EPSG: code,
		Compression: comp, OpenDriver: true,
	}, true
}

// TIFF Photometric and compression values header() knows.
const (
	photometricMinIsBlack = 1
	photometricRGB        = 2
	photometricYCbCr      = 6
	compressionJPEG       = 7
)

// bands are the bands' colour interpretations and data type as GDAL names
// them, for grey, RGB and JPEG-compressed YCbCr (which GDAL converts to RGB).
func (t *tiffInfo) bands() ([]Band, bool) {
	if len(t.photometric) != 1 || len(t.bits) != int(t.samples) {
		return nil, false
	}
	for _, b := range t.bits {
		if b != t.bits[0] {
			return nil, false
		}
	}
	for _, f := range t.sampleFormat {
		if len(t.sampleFormat) != int(t.samples) || f != 1 {
			return nil, false
		}
	}
	var dataType string
	switch t.bits[0] {
	case 8:
		dataType = "Byte"
	case 16:
		dataType = "UInt16"
	default:
		return nil, false
	}
	planar := uint64(1)
	if len(t.planar) > 0 {
		if len(t.planar) != 1 || t.planar[0] != 1 && t.planar[0] != 2 {
			return nil, false
		}
		planar = t.planar[0]
	}
	jpeg := len(t.compression) == 1 && t.compression[0] == compressionJPEG
	if jpeg && dataType != "Byte" {
		return nil, false
	}
	var colors []string
	switch {
	case t.samples == 1 && t.photometric[0] == photometricMinIsBlack:
		colors = []string{"Gray"}
	case t.samples == 3 && t.photometric[0] == photometricRGB:
		colors = []string{"Red", "Green", "Blue"}
	case t.samples == 3 && t.photometric[0] == photometricYCbCr && jpeg && planar == 1:
		colors = []string{"Red", "Green", "Blue"}
	default:
		return nil, false
	}
	bands := make([]Band, len(colors))
	for i, c := range colors {
		bands[i] = Band{Color: c, DataType: dataType}
	}
	return bands, true
}

// compressionName is GDAL's COMPRESSION metadata (NONE when it has none),
// with "YCbCr JPEG" reported as JPEG as readHeader does.
func (t *tiffInfo) compressionName() (string, bool) {
	if len(t.compression) == 0 {
		return "NONE", true
	}
	if len(t.compression) != 1 {
		return "", false
	}
	name, ok := tiffCompressions[t.compression[0]]
	if !ok {
		return "", false
	}
	if name == "LERC" {
		// LercParameters: version, then the compression applied after LERC.
		if len(t.lerc) != 2 {
			return "", false
		}
		switch t.lerc[1] {
		case 0:
		case 1:
			name = "LERC_DEFLATE"
		case 2:
			name = "LERC_ZSTD"
		default:
			return "", false
		}
	} else if len(t.lerc) > 0 {
		return "", false
	}
	return name, true
}

// geoTransform computes the geotransform as GDAL's GTiff driver does: from
// ModelPixelScale and a single ModelTiepoint, or from ModelTransformation,
// moved half a pixel up and left when the GeoKeys say PixelIsPoint. The
// products are rounded separately (float64 conversions forbid fused
// multiply-adds) to give GDAL's bits.
func (t *tiffInfo) geoTransform() ([6]float64, bool) {
	var gt [6]float64
	keys, _ := t.geoKeyMap()
	point := false
	if k, ok := keys[keyRasterType]; ok {
		point = k.value == rasterPixelIsPoint
	}
	switch {
	case t.scale != nil && t.tiepoints != nil && t.transform == nil:
		s, tp := t.scale, t.tiepoints
		if len(s) != 3 || len(tp) != 6 || !(s[0] > 0) || !(s[1] > 0) || tp[0] != 0 || tp[1] != 0 {
			return gt, false
		}
		gt = [6]float64{tp[3], s[0], 0, tp[4], 0, -s[1]}
		if point {
			gt[0] -= float64(gt[1] * 0.5)
			gt[3] -= float64(gt[5] * 0.5)
		}
	case t.transform != nil && t.scale == nil && t.tiepoints == nil:
		m := t.transform
		if len(m) != 16 || m[12] != 0 || m[13] != 0 || m[14] != 0 || m[15] != 1 {
			return gt, false
		}
		gt = [6]float64{m[3], m[0], m[1], m[7], m[4], m[5]}
		if point {
			gt[0] -= float64(float64(gt[1]*0.5) + float64(gt[2]*0.5))
			gt[3] -= float64(float64(gt[4]*0.5) + float64(gt[5]*0.5))
		}
	default:
		return gt, false
	}
	for _, v := range gt {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return gt, false
		}
	}
	// What readHeader refuses, GDAL's path refuses with its own words.
	if gt[1] == 0 || gt[5] == 0 && gt[4] == 0 || gt == [6]float64{0, 1, 0, 0, 0, 1} {
		return gt, false
	}
	return gt, true
}

// plainMetadata says whether GDAL_METADATA, when present, holds only
// dataset-level items GDAL merely lists: band items may set colour
// interpretation, offsets or scales, AREA_OR_POINT may move the
// geotransform, other domains may hold what GDAL reads as structure.
func (t *tiffInfo) plainMetadata() bool {
	if t.gdalMetadata == "" {
		return true
	}
	var md struct {
		Items []struct {
			Name   string `xml:"name,attr"`
			Domain string `xml:"domain,attr"`
			Sample string `xml:"sample,attr"`
			Role   string `xml:"role,attr"`
		} `xml:"Item"`
	}
	if err := xml.Unmarshal([]byte(strings.TrimRight(t.gdalMetadata, "\x00")), &md); err != nil {
		return false
	}
	for _, it := range md.Items {
		switch {
		case it.Sample != "" || it.Role != "":
			return false
		case it.Domain == "" && it.Name != "AREA_OR_POINT":
		case it.Domain == "IMAGE_STRUCTURE" && it.Name == "WEBP_LEVEL":
		default:
			return false
		}
	}
	return true
}

// gdalTIFFConfigured says whether the environment sets a GDAL option that
// changes how the GTiff driver reads georeferencing: header() follows
// GDAL's defaults only.
var gdalTIFFConfigured = sync.OnceValue(func() bool {
	for _, name := range []string{"GTIFF_POINT_GEO_IGNORE", "GTIFF_SRS_SOURCE", "GTIFF_HONOUR_NEGATIVE_SCALEY", "GDAL_GEOREF_SOURCES", "CONVERT_YCBCR_TO_RGB", "GTIFF_REPORT_COMPD_CS", "GDAL_CONFIG_FILE"} {
		if _, set := os.LookupEnv(name); set {
			return true
		}
	}
	return false
})
