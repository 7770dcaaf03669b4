package corpus

import (
	"encoding/binary"
	"math"
	"sort"
)

// TIFF field types.
const (
	tASCII  = 2
	tShort  = 3
	tLong   = 4
	tDouble = 12
	tLong8  = 16
)

// byteOrder reads and appends: binary.BigEndian or binary.LittleEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

var typeSize = map[uint16]int{tASCII: 1, tShort: 2, tLong: 4, tDouble: 8, tLong8: 8}

// entry is one IFD entry. Its count is len(val)/size unless count is set
// (a hostile count); with at set, the value offset field holds at and val
// is not written (an array the file does not hold).
type entry struct {
	tag   uint16
	typ   uint16
	count uint64
	val   []byte
	at    *uint64
}

// tiffFile is a TIFF assembled here: header, then data, then IFDs.
type tiffFile struct {
	order byteOrder
	big   bool
	data  []byte
	ifds  [][]entry
	// firstIFD, when set, replaces the header's IFD offset; next[i], when
	// present, replaces IFD i's next-IFD offset (loops, wild offsets).
	firstIFD *uint64
	next     map[int]uint64
}

func (t *tiffFile) headerLen() int {
	if t.big {
		return 16
	}
	return 8
}

// dataAt is where data starts.
func (t *tiffFile) dataAt() uint64 { return uint64(t.headerLen()) }

func (t *tiffFile) bytes() []byte {
	o := t.order
	var out []byte
	if o == binary.BigEndian {
		out = append(out, 'M', 'M')
	} else {
		out = append(out, 'I', 'I')
	}
	if t.big {
		out = o.AppendUint16(out, 43)
		out = o.AppendUint16(out, 8)
		out = o.AppendUint16(out, 0)
		out = o.AppendUint64(out, 0)
	} else {
		out = o.AppendUint16(out, 42)
		out = o.AppendUint32(out, 0)
	}
	out = append(out, t.data...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	offsets := make([]uint64, len(t.ifds))
	nextFields := make([]int, len(t.ifds))
	for i, ifd := range t.ifds {
		offsets[i] = uint64(len(out))
		out, nextFields[i] = t.appendIFD(out, ifd)
	}
	first := uint64(0)
	if len(offsets) > 0 {
		first = offsets[0]
	}
	if t.firstIFD != nil {
		first = *t.firstIFD
	}
	t.putOffset(out, t.headerLen()-t.offSize(), first)
	for i := range t.ifds {
		nxt := uint64(0)
		if i+1 < len(offsets) {
			nxt = offsets[i+1]
		}
		if v, ok := t.next[i]; ok {
			nxt = v
		}
		t.putOffset(out, nextFields[i], nxt)
	}
	return out
}

func (t *tiffFile) offSize() int {
	if t.big {
		return 8
	}
	return 4
}

func (t *tiffFile) putOffset(b []byte, at int, v uint64) {
	if t.big {
		t.order.PutUint64(b[at:], v)
	} else {
		t.order.PutUint32(b[at:], uint32(v))
	}
}

// appendIFD writes the IFD and its out-of-line values; it returns where the
// next-IFD offset field is.
func (t *tiffFile) appendIFD(out []byte, ifd []entry) ([]byte, int) {
	o := t.order
	sort.Slice(ifd, func(i, j int) bool { return ifd[i].tag < ifd[j].tag })
	entryLen, countLen := 12, 2
	if t.big {
		entryLen, countLen = 20, 8
	}
	start := len(out)
	extra := start + countLen + len(ifd)*entryLen + t.offSize()
	if t.big {
		out = o.AppendUint64(out, uint64(len(ifd)))
	} else {
		out = o.AppendUint16(out, uint16(len(ifd)))
	}
	var tail []byte
	for _, e := range ifd {
		count := e.count
		if count == 0 {
			count = uint64(len(e.val) / typeSize[e.typ])
		}
		out = o.AppendUint16(out, e.tag)
		out = o.AppendUint16(out, e.typ)
		if t.big {
			out = o.AppendUint64(out, count)
		} else {
			out = o.AppendUint32(out, uint32(count))
		}
		field := make([]byte, t.offSize())
		switch {
		case e.at != nil:
			t.putOffset(field, 0, *e.at)
		case len(e.val) <= t.offSize():
			copy(field, e.val)
		default:
			if (extra+len(tail))%2 == 1 {
				tail = append(tail, 0)
			}
			t.putOffset(field, 0, uint64(extra+len(tail)))
			tail = append(tail, e.val...)
		}
		out = append(out, field...)
	}
	nextAt := len(out)
	out = append(out, make([]byte, t.offSize())...)
	return append(out, tail...), nextAt
}

func shorts(o byteOrder, v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = o.AppendUint16(b, x)
	}
	return b
}

func longs(o byteOrder, v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = o.AppendUint32(b, x)
	}
	return b
}

func long8s(o byteOrder, v ...uint64) []byte {
	var b []byte
	for _, x := range v {
		b = o.AppendUint64(b, x)
	}
	return b
}

func doubles(o byteOrder, v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = o.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// geoTIFF describes a strip TIFF with GeoTIFF tags, written by tiff().
type geoTIFF struct {
	order        byteOrder
	big          bool
	width        int
	height       int
	bands        int // 1 (grey) or 3 (RGB), 8-bit
	rowsPerStrip int
	scale        [3]float64 // ModelPixelScale
	tiepoint     [6]float64 // ModelTiepoint
	// transform, when set, replaces scale and tiepoint (ModelTransformation).
	transform *[16]float64
	// geoKeys is the GeoKeyDirectory (header included); nil writes none.
	geoKeys []uint16
}

// epsgKeys declares a projected CRS by its EPSG code, pixels as areas.
func epsgKeys(code uint16) []uint16 {
	return []uint16{1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, code}
}

// newGeoTIFF is a 64 x 64 px RGB tile in Lambert-93, 8 rows per strip.
func newGeoTIFF(order byteOrder, big bool) geoTIFF {
	return geoTIFF{order: order, big: big, width: 64, height: 64, bands: 3, rowsPerStrip: 8,
		scale: [3]float64{0.5, 0.5, 0}, tiepoint: [6]float64{0, 0, 0, 700000, 6600032, 0},
		geoKeys: epsgKeys(2154)}
}

// file assembles the TIFF: uncompressed chunky strips.
func (g geoTIFF) file() *tiffFile {
	o := g.order
	t := &tiffFile{order: o, big: g.big}
	rowBytes := g.width * g.bands
	var offs, counts []uint64
	for y := 0; y < g.height; y += g.rowsPerStrip {
		rows := min(g.rowsPerStrip, g.height-y)
		offs = append(offs, t.dataAt()+uint64(len(t.data)))
		counts = append(counts, uint64(rows*rowBytes))
		for r := 0; r < rows; r++ {
			for x := 0; x < rowBytes; x++ {
				t.data = append(t.data, byte(x+(y+r)*2))
			}
		}
	}
	offType, offVals := uint16(tLong), func(v []uint64) []byte {
		l := make([]uint32, len(v))
		for i := range v {
			l[i] = uint32(v[i])
		}
		return longs(o, l...)
	}
	if g.big {
		offType, offVals = tLong8, func(v []uint64) []byte { return long8s(o, v...) }
	}
	photometric, bps := uint16(2), shorts(o, 8, 8, 8)
	if g.bands == 1 {
		photometric, bps = 1, shorts(o, 8)
	}
	ifd := []entry{
		{tag: 256, typ: tLong, val: longs(o, uint32(g.width))},
		{tag: 257, typ: tLong, val: longs(o, uint32(g.height))},
		{tag: 258, typ: tShort, val: bps},
		{tag: 259, typ: tShort, val: shorts(o, 1)},
		{tag: 262, typ: tShort, val: shorts(o, photometric)},
		{tag: 273, typ: offType, val: offVals(offs)},
		{tag: 277, typ: tShort, val: shorts(o, uint16(g.bands))},
		{tag: 278, typ: tLong, val: longs(o, uint32(g.rowsPerStrip))},
		{tag: 279, typ: offType, val: offVals(counts)},
		{tag: 284, typ: tShort, val: shorts(o, 1)},
	}
	if g.transform != nil {
		ifd = append(ifd, entry{tag: 34264, typ: tDouble, val: doubles(o, g.transform[:]...)})
	} else {
		ifd = append(ifd,
			entry{tag: 33550, typ: tDouble, val: doubles(o, g.scale[:]...)},
			entry{tag: 33922, typ: tDouble, val: doubles(o, g.tiepoint[:]...)})
	}
	if g.geoKeys != nil {
		ifd = append(ifd, entry{tag: 34735, typ: tShort, val: shorts(o, g.geoKeys...)})
	}
	t.ifds = [][]entry{ifd}
	return t
}

// set replaces (or adds) an entry of the first IFD.
func (t *tiffFile) set(e entry) {
	for i := range t.ifds[0] {
		if t.ifds[0][i].tag == e.tag {
			t.ifds[0][i] = e
			return
		}
	}
	t.ifds[0] = append(t.ifds[0], e)
}
