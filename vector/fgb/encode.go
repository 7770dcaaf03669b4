package fgb

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

var le = binary.LittleEndian

// fbBuilder writes a FlatBuffers buffer front to back: the root offset,
// then each table preceded by its vtable, then what the table refers to.
// References (uoffsets) always point forward, so a table is written with
// zero references that patch fills in once their target is written.
// Positions are indices into b, which starts with room for the 4-byte size
// prefix. Alignment is counted from the prefix, not from the root: the
// flatgeobuf JavaScript reader copies each size-prefixed block to offset 0
// of a fresh buffer and views coordinates as a Float64Array there, and
// GDAL does the same with its own buffer.
type fbBuilder struct {
	b []byte
}

// fbField is one field of a table being written: its slot (the field's
// index in the schema), its size (1, 2, 4 or 8 bytes; references are 4)
// and, for scalars, its value's bits.
type fbField struct {
	slot int
	size int
	bits uint64
}

var zeros [256]byte

// reset empties the buffer, leaving room for the size prefix.
func (f *fbBuilder) reset() {
	f.b = append(f.b[:0], zeros[:4]...)
}

// sizePrefixed pads the block to a multiple of 8 bytes, so that blocks
// laid end to end after the 8 magic bytes all start 8-aligned (readers
// of the whole file view it as one buffer), and writes the prefix.
func (f *fbBuilder) sizePrefixed() []byte {
	f.pad(8)
	le.PutUint32(f.b, uint32(len(f.b)-4))
	return f.b
}

// pad aligns the end of the buffer to align bytes.
func (f *fbBuilder) pad(align int) {
	if r := len(f.b) % align; r != 0 {
		f.b = append(f.b, zeros[:align-r]...)
	}
}

// root reserves the buffer's root offset.
func (f *fbBuilder) root() int {
	p := len(f.b)
	f.b = append(f.b, 0, 0, 0, 0)
	return p
}

// patch sets the reference at position at to the object at position to.
func (f *fbBuilder) patch(at, to int) {
	le.PutUint32(f.b[at:], uint32(to-at))
}

// table writes a vtable then its table holding fields (at most 16, slots
// below 16), and returns the table's position; at receives each field's
// position, in fields' order, for patching references.
func (f *fbBuilder) table(fields []fbField, at []int) int {
	// Lay the fields out largest first after the vtable offset: each lands
	// aligned to its size when the table is aligned to the largest.
	var rel [16]int
	var done [16]bool
	size, align, slots := 4, 4, 0
	for _, want := range []int{8, 4, 2, 1} {
		for i, fl := range fields {
			if fl.size != want || done[i] {
				continue
			}
			done[i] = true
			size = (size + want - 1) / want * want
			rel[i] = size
			size += want
			align = max(align, want)
		}
	}
	for _, fl := range fields {
		slots = max(slots, fl.slot+1)
	}
	f.pad(2)
	vt := len(f.b)
	f.b = le.AppendUint16(f.b, uint16(4+2*slots))
	f.b = le.AppendUint16(f.b, uint16(size))
	for s := range slots {
		var off uint16
		for i, fl := range fields {
			if fl.slot == s {
				off = uint16(rel[i])
			}
		}
		f.b = le.AppendUint16(f.b, off)
	}
	f.pad(align)
	t := len(f.b)
	f.b = le.AppendUint32(f.b, uint32(int32(t-vt)))
	f.b = append(f.b, zeros[:size-4]...)
	for i, fl := range fields {
		p := t + rel[i]
		switch fl.size {
		case 1:
			f.b[p] = byte(fl.bits)
		case 2:
			le.PutUint16(f.b[p:], uint16(fl.bits))
		case 4:
			le.PutUint32(f.b[p:], uint32(fl.bits))
		case 8:
			le.PutUint64(f.b[p:], fl.bits)
		}
		at[i] = p
	}
	return t
}

// vector starts a vector of n elements of elemSize bytes, aligning both
// its length and its first element, and returns its position; the caller
// appends the elements.
func (f *fbBuilder) vector(elemSize, n int) int {
	f.pad(4)
	if elemSize == 8 && len(f.b)%8 == 0 {
		f.b = append(f.b, 0, 0, 0, 0)
	}
	p := len(f.b)
	f.b = le.AppendUint32(f.b, uint32(n))
	return p
}

// str writes a string: its length, bytes and terminating zero.
func (f *fbBuilder) str(s string) int {
	p := f.vector(1, len(s))
	f.b = append(f.b, s...)
	f.b = append(f.b, 0)
	return p
}

// refs writes a vector of n references, zero until patched, and returns
// its position; element i is at position+4+4*i.
func (f *fbBuilder) refs(n int) int {
	p := f.vector(4, n)
	for range n {
		f.b = append(f.b, 0, 0, 0, 0)
	}
	return p
}

func (f *fbBuilder) float64s(v ...float64) int {
	p := f.vector(8, len(v))
	for _, x := range v {
		f.b = le.AppendUint64(f.b, math.Float64bits(x))
	}
	return p
}

// Slots of the FlatGeobuf tables' fields (header.fbs, feature.fbs).
const (
	headerName, headerEnvelope, headerGeometryType = 0, 1, 2
	headerColumns, headerFeaturesCount             = 7, 8
	headerIndexNodeSize, headerCrs                 = 9, 10

	columnName, columnType, columnNullable = 0, 1, 7

	crsOrg, crsCode = 0, 1

	geometryEnds, geometryXY, geometryType, geometryParts = 0, 1, 6, 7

	featureGeometry, featureProperties = 0, 1
)

// encodeHeader encodes the size-prefixed header: env nil writes no
// envelope, index node size 0 says there is no index.
func encodeHeader(s *Schema, count uint64, env *[4]float64, indexNodeSize uint16) []byte {
	var f fbBuilder
	f.reset()
	root := f.root()
	fields := []fbField{
		{slot: headerGeometryType, size: 1, bits: uint64(s.GeometryType)},
		{slot: headerFeaturesCount, size: 8, bits: count},
		{slot: headerIndexNodeSize, size: 2, bits: uint64(indexNodeSize)},
	}
	if s.Name != "" {
		fields = append(fields, fbField{slot: headerName, size: 4})
	}
	if env != nil {
		fields = append(fields, fbField{slot: headerEnvelope, size: 4})
	}
	if len(s.Columns) > 0 {
		fields = append(fields, fbField{slot: headerColumns, size: 4})
	}
	if s.EPSG != 0 {
		fields = append(fields, fbField{slot: headerCrs, size: 4})
	}
	at := make([]int, len(fields))
	f.patch(root, f.table(fields, at))
	for i, fl := range fields {
		switch fl.slot {
		case headerName:
			f.patch(at[i], f.str(s.Name))
		case headerEnvelope:
			f.patch(at[i], f.float64s(env[:]...))
		case headerColumns:
			v := f.refs(len(s.Columns))
			f.patch(at[i], v)
			for j, c := range s.Columns {
				nullable := uint64(0)
				if c.Nullable {
					nullable = 1
				}
				cf := []fbField{
					{slot: columnName, size: 4},
					{slot: columnType, size: 1, bits: uint64(c.Type.code())},
					{slot: columnNullable, size: 1, bits: nullable},
				}
				var cat [3]int
				f.patch(v+4+4*j, f.table(cf, cat[:]))
				f.patch(cat[0], f.str(c.Name))
			}
		case headerCrs:
			cf := []fbField{
				{slot: crsOrg, size: 4},
				{slot: crsCode, size: 4, bits: uint64(uint32(int32(s.EPSG)))},
			}
			var cat [2]int
			f.patch(at[i], f.table(cf, cat[:]))
			f.patch(cat[0], f.str("EPSG"))
		}
	}
	return f.sizePrefixed()
}

// encoder encodes features, reusing its buffers.
type encoder struct {
	fb    fbBuilder
	props []byte
}

// feature checks and encodes ft for a layer of schema s: it returns the
// size-prefixed Feature buffer (valid until the next call) and the
// geometry's bounding box.
func (e *encoder) feature(s *Schema, ft *Feature) ([]byte, [4]float64, error) {
	var box [4]float64
	if len(ft.Values) != len(s.Columns) {
		return nil, box, invalid("%d values for %d columns", len(ft.Values), len(s.Columns))
	}
	if err := e.properties(s, ft.Values); err != nil {
		return nil, box, err
	}
	g := &ft.Geometry
	box, err := checkGeometry(s.GeometryType, g)
	if err != nil {
		return nil, box, err
	}

	f := &e.fb
	f.reset()
	root := f.root()
	fields := []fbField{{slot: featureGeometry, size: 4}, {slot: featureProperties, size: 4}}
	if len(e.props) == 0 {
		fields = fields[:1]
	}
	var at [2]int
	f.patch(root, f.table(fields, at[:]))
	switch {
	case g.Type == Point:
		var gat [1]int
		f.patch(at[0], f.table([]fbField{{slot: geometryXY, size: 4}}, gat[:]))
		f.patch(gat[0], f.float64s(g.Point[0], g.Point[1]))
	case s.GeometryType == MultiPolygon:
		var gat [2]int
		f.patch(at[0], f.table([]fbField{
			{slot: geometryType, size: 1, bits: uint64(MultiPolygon)},
			{slot: geometryParts, size: 4},
		}, gat[:]))
		parts := f.refs(len(g.Polygons))
		f.patch(gat[1], parts)
		for i, rings := range g.Polygons {
			f.patch(parts+4+4*i, e.polygon(rings, Polygon))
		}
	default:
		f.patch(at[0], e.polygon(g.Polygons[0], 0))
	}
	if len(e.props) > 0 {
		p := f.vector(1, len(e.props))
		f.b = append(f.b, e.props...)
		f.patch(at[1], p)
	}
	b := f.sizePrefixed()
	if len(b)-4 > MaxFeatureSize {
		return nil, box, invalid("feature over %d bytes", MaxFeatureSize)
	}
	return b, box, nil
}

// polygon writes a Geometry table for the rings: the flat coordinates,
// and the end of each ring (counted in points) when there are several.
// typ 0 leaves the type out (the header's applies).
func (e *encoder) polygon(rings []Ring, typ GeometryType) int {
	f := &e.fb
	fields := make([]fbField, 0, 3)
	fields = append(fields, fbField{slot: geometryXY, size: 4})
	if len(rings) > 1 {
		fields = append(fields, fbField{slot: geometryEnds, size: 4})
	}
	if typ != 0 {
		fields = append(fields, fbField{slot: geometryType, size: 1, bits: uint64(typ)})
	}
	var at [3]int
	t := f.table(fields, at[:])
	if len(rings) > 1 {
		p := f.vector(4, len(rings))
		end := 0
		for _, r := range rings {
			end += len(r)
			f.b = le.AppendUint32(f.b, uint32(end))
		}
		f.patch(at[1], p)
	}
	n := 0
	for _, r := range rings {
		n += len(r)
	}
	p := f.vector(8, 2*n)
	for _, r := range rings {
		for _, pt := range r {
			f.b = le.AppendUint64(f.b, math.Float64bits(pt[0]))
			f.b = le.AppendUint64(f.b, math.Float64bits(pt[1]))
		}
	}
	f.patch(at[0], p)
	return t
}

// properties encodes the non-null values into e.props: for each, the
// column's index (uint16) then the value, strings prefixed with their
// length (uint32), all little-endian.
func (e *encoder) properties(s *Schema, values []Value) error {
	e.props = e.props[:0]
	for i, v := range values {
		c := &s.Columns[i]
		if v.typ == 0 {
			if !c.Nullable {
				return invalid("column %q: null in a column not nullable", c.Name)
			}
			continue
		}
		if v.typ != c.Type {
			return invalid("column %q: %v value in a %v column", c.Name, v.typ, c.Type)
		}
		e.props = le.AppendUint16(e.props, uint16(i))
		switch v.typ {
		case ColBool:
			e.props = append(e.props, byte(v.i))
		case ColInt:
			e.props = le.AppendUint32(e.props, uint32(int32(v.i)))
		case ColLong:
			e.props = le.AppendUint64(e.props, uint64(v.i))
		case ColDouble:
			e.props = le.AppendUint64(e.props, math.Float64bits(v.f))
		case ColString:
			if len(v.s) > MaxStringLen {
				return invalid("column %q: string of %d bytes, over %d", c.Name, len(v.s), MaxStringLen)
			}
			if len(e.props)+4+len(v.s) > MaxFeatureSize {
				return invalid("feature over %d bytes", MaxFeatureSize)
			}
			if !utf8.ValidString(v.s) {
				return invalid("column %q: string not UTF-8", c.Name)
			}
			e.props = le.AppendUint32(e.props, uint32(len(v.s)))
			e.props = append(e.props, v.s...)
		}
	}
	return nil
}

// checkGeometry checks g for a layer of type lt and returns its bounding
// box. A MultiPolygon layer takes polygons too (written as multipolygons
// of one).
func checkGeometry(lt GeometryType, g *Geometry) ([4]float64, error) {
	box := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	ok := g.Type == lt || (lt == MultiPolygon && g.Type == Polygon)
	if !ok {
		return box, invalid("%v geometry in a %v layer", g.Type, lt)
	}
	if g.Type == Point {
		x, y := g.Point[0], g.Point[1]
		if !finite(x) || !finite(y) {
			return box, invalid("point (%v %v) not finite", x, y)
		}
		return [4]float64{x, y, x, y}, nil
	}
	switch {
	case len(g.Polygons) == 0:
		return box, invalid("empty %v", g.Type)
	case g.Type == Polygon && len(g.Polygons) != 1:
		return box, invalid("polygon holding %d polygons", len(g.Polygons))
	case len(g.Polygons) > MaxPolygons:
		return box, invalid("%d polygons, over %d", len(g.Polygons), MaxPolygons)
	}
	rings, points := 0, 0
	for _, p := range g.Polygons {
		if len(p) == 0 {
			return box, invalid("polygon without rings")
		}
		rings += len(p)
		if rings > MaxRings {
			return box, invalid("over %d rings", MaxRings)
		}
		for _, r := range p {
			points += len(r)
			if points > MaxPoints {
				return box, invalid("over %d points", MaxPoints)
			}
			if len(r) < 4 {
				return box, invalid("ring of %d points (4 at least)", len(r))
			}
			if r[0] != r[len(r)-1] {
				return box, invalid("ring not closed")
			}
			for _, pt := range r {
				if !finite(pt[0]) || !finite(pt[1]) {
					return box, invalid("point (%v %v) not finite", pt[0], pt[1])
				}
				box[0], box[1] = min(box[0], pt[0]), min(box[1], pt[1])
				box[2], box[3] = max(box[2], pt[0]), max(box[3], pt[1])
			}
		}
	}
	return box, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
