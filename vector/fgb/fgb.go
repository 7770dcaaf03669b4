// Package fgb writes FlatGeobuf files (https://flatgeobuf.org, format 3)
// with their packed Hilbert R-tree spatial index, in memory that does not
// grow with the number of features.
//
// Write appends each encoded feature to a temporary features file and a
// fixed-size index item (its box, its place in that file) to a temporary
// items file. Close sorts the items on disk by the Hilbert value of their
// box's centre (sorted runs of bounded size, then k-way merges), copies the
// features in that order into a temporary file beside the destination while
// writing the index's leaves, builds the upper levels of the tree from the
// level below, and renames the result over the destination. Memory is a
// few megabytes of buffers plus the largest feature, whatever the count.
//
//	w, err := fgb.Create(ctx, "dalles.fgb", fgb.Schema{Name: "dalles",
//		GeometryType: fgb.Polygon, EPSG: 4326,
//		Columns: []fgb.Column{{Name: "nomImage", Type: fgb.ColString}}})
//	if err != nil { ... }
//	defer w.Abort() // no-op once Close has run
//	for ... {
//		err := w.Write(fgb.Feature{Geometry: fgb.BoxGeometry(x0, y0, x1, y1),
//			Values: []fgb.Value{fgb.String(name)}})
//		...
//	}
//	err = w.Close()
package fgb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// GeometryType is a layer's geometry type; the values are FlatGeobuf's
// (and WKB's) codes.
type GeometryType uint8

// The geometry types written.
const (
	Point        GeometryType = 1
	Polygon      GeometryType = 3
	MultiPolygon GeometryType = 6
)

func (t GeometryType) String() string {
	switch t {
	case Point:
		return "Point"
	case Polygon:
		return "Polygon"
	case MultiPolygon:
		return "MultiPolygon"
	}
	return fmt.Sprintf("GeometryType(%d)", uint8(t))
}

// ColumnType is an attribute column's type. The zero value is invalid.
type ColumnType uint8

// The column types written, with GDAL's reading of them.
const (
	ColBool   ColumnType = iota + 1 // boolean: OGR Integer(Boolean)
	ColInt                          // int32: OGR Integer
	ColLong                         // int64: OGR Integer64
	ColDouble                       // float64: OGR Real
	ColString                       // UTF-8 string: OGR String
)

// code is the type's FlatGeobuf ColumnType code.
func (t ColumnType) code() uint8 {
	switch t {
	case ColBool:
		return 2
	case ColInt:
		return 5
	case ColLong:
		return 7
	case ColDouble:
		return 10
	case ColString:
		return 11
	}
	return 0xff
}

func (t ColumnType) String() string {
	switch t {
	case ColBool:
		return "Bool"
	case ColInt:
		return "Int"
	case ColLong:
		return "Long"
	case ColDouble:
		return "Double"
	case ColString:
		return "String"
	}
	return fmt.Sprintf("ColumnType(%d)", uint8(t))
}

// Column is an attribute column. A column that is not Nullable refuses
// Null values (and GDAL reports it NOT NULL).
type Column struct {
	Name     string
	Type     ColumnType
	Nullable bool
}

// Schema describes the layer: its name, geometry type, columns and
// coordinate reference system (an EPSG code; 0 writes none).
type Schema struct {
	Name         string
	GeometryType GeometryType
	Columns      []Column
	EPSG         int
}

// Value is one attribute value: typed, or null. The zero Value is null.
type Value struct {
	typ ColumnType // 0: null
	s   string
	i   int64 // ColBool (0/1), ColInt, ColLong
	f   float64
}

// Null is the null value.
func Null() Value { return Value{} }

// String is a string value.
func String(s string) Value { return Value{typ: ColString, s: s} }

// Int is an int32 value.
func Int(v int32) Value { return Value{typ: ColInt, i: int64(v)} }

// Long is an int64 value.
func Long(v int64) Value { return Value{typ: ColLong, i: v} }

// Double is a float64 value.
func Double(v float64) Value { return Value{typ: ColDouble, f: v} }

// Bool is a boolean value.
func Bool(v bool) Value {
	if v {
		return Value{typ: ColBool, i: 1}
	}
	return Value{typ: ColBool}
}

// IsNull tells whether v is null.
func (v Value) IsNull() bool { return v.typ == 0 }

// Type is v's column type, 0 for null.
func (v Value) Type() ColumnType { return v.typ }

// Ring is a closed linear ring: at least 4 points, the last equal to the
// first.
type Ring [][2]float64

// Geometry is a feature's geometry: a point, a polygon (Polygons holds
// exactly one, its rings exterior first) or a multipolygon (one or more).
type Geometry struct {
	Type     GeometryType
	Point    [2]float64
	Polygons [][]Ring
}

// PointGeometry is the point (x, y).
func PointGeometry(x, y float64) Geometry {
	return Geometry{Type: Point, Point: [2]float64{x, y}}
}

// PolygonGeometry is the polygon of the rings, exterior first.
func PolygonGeometry(rings ...Ring) Geometry {
	return Geometry{Type: Polygon, Polygons: [][]Ring{rings}}
}

// MultiPolygonGeometry is the multipolygon of the polygons, each its rings
// exterior first.
func MultiPolygonGeometry(polygons ...[]Ring) Geometry {
	return Geometry{Type: MultiPolygon, Polygons: polygons}
}

// BoxGeometry is the rectangle polygon of the box, counter-clockwise.
func BoxGeometry(minX, minY, maxX, maxY float64) Geometry {
	return PolygonGeometry(Ring{{minX, minY}, {maxX, minY}, {maxX, maxY}, {minX, maxY}, {minX, minY}})
}

// Feature is one feature: its geometry and one value per column, in the
// schema's order.
type Feature struct {
	Geometry Geometry
	Values   []Value
}

// Limits on what Write accepts, so that neither this writer's memory nor a
// reader's is driven by one oversized input.
const (
	// MaxFeatures is the default and largest cap on the features of a
	// file (FeatureLimit option).
	MaxFeatures = 1 << 32
	// MaxStringLen is the longest string value or column name, in bytes.
	MaxStringLen = 1 << 20
	// MaxPoints is the most points (all rings together) in one geometry.
	MaxPoints = 1 << 20
	// MaxRings is the most rings in one geometry (all polygons together).
	MaxRings = 1 << 16
	// MaxPolygons is the most polygons in one multipolygon.
	MaxPolygons = 1 << 16
	// MaxFeatureSize is the largest encoded feature, in bytes; GDAL refuses
	// features over 100 MiB unless it checks them against the file size.
	MaxFeatureSize = 64 << 20
	// maxColumns: a column's index in a feature is a uint16.
	maxColumns = 1 << 16
	// maxHeaderSize is GDAL's limit on the header (10 MB).
	maxHeaderSize = 10 * 1024 * 1024
)

// Errors. Write's errors wrap ErrInvalid when the feature is at fault.
var (
	ErrClosed  = errors.New("fgb: writer closed")
	ErrInvalid = errors.New("fgb: invalid")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Option tunes a Writer.
type Option func(*options)

type options struct {
	tempDir     string
	runSize     int
	maxFeatures uint64
}

// TempDir puts the temporary features, items and sort-run files in dir
// instead of beside the destination. The file being built is always
// beside the destination, so that renaming it over the destination is
// atomic.
func TempDir(dir string) Option { return func(o *options) { o.tempDir = dir } }

// RunSize sets how many index items (48 bytes each) Close sorts in memory
// at a time; more items than that are sorted in runs merged from disk.
// The default is 1<<16 (3 MiB).
func RunSize(n int) Option { return func(o *options) { o.runSize = max(n, 2) } }

// FeatureLimit caps the number of features (default MaxFeatures): Write
// fails beyond it.
func FeatureLimit(n uint64) Option { return func(o *options) { o.maxFeatures = min(n, MaxFeatures) } }

// Writer writes one FlatGeobuf file. It is not safe for concurrent use.
type Writer struct {
	ctx  context.Context
	path string
	s    Schema
	opt  options

	out   *os.File // the file being built, beside path
	feats *os.File // features, size-prefixed, in Write order
	items *os.File // one item per feature, in Write order
	temps []*os.File
	featW *bufio.Writer
	itemW *bufio.Writer

	count   uint64
	featEnd uint64 // bytes in feats
	maxSize uint32 // largest size-prefixed feature
	env     [4]float64

	enc  encoder
	item [itemSize]byte

	err     error // sticky: the first failure
	closed  bool
	renamed bool // out is at path now
}

// Create starts writing a FlatGeobuf file at path. Nothing at path changes
// until Close succeeds. ctx cancels Write and Close.
func Create(ctx context.Context, path string, s Schema, opts ...Option) (*Writer, error) {
	o := options{runSize: 1 << 16, maxFeatures: MaxFeatures}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	// The header's size does not depend on the count nor the envelope:
	// check it against GDAL's limit now rather than at Close.
	if h := encodeHeader(&s, 1, &[4]float64{}, nodeSize); len(h)-4 > maxHeaderSize {
		return nil, invalid("header of %d bytes, over %d", len(h)-4, maxHeaderSize)
	}
	s.Columns = append([]Column(nil), s.Columns...)
	w := &Writer{ctx: ctx, path: path, s: s, opt: o,
		env: [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}}
	var err error
	if w.out, err = w.temp(filepath.Dir(path), ".tmp"); err != nil {
		return nil, err
	}
	if w.feats, err = w.temp(w.tempDir(), ".features"); err != nil {
		w.Abort()
		return nil, err
	}
	if w.items, err = w.temp(w.tempDir(), ".items"); err != nil {
		w.Abort()
		return nil, err
	}
	w.featW = bufio.NewWriterSize(w.feats, 1<<18)
	w.itemW = bufio.NewWriterSize(w.items, 1<<16)
	return w, nil
}

// temp creates a temporary file in dir, named after the destination,
// removed by cleanup.
func (w *Writer) temp(dir, kind string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "."+filepath.Base(w.path)+".*"+kind)
	if err != nil {
		return nil, fmt.Errorf("fgb: %w", err)
	}
	w.temps = append(w.temps, f)
	return f, nil
}

func (s *Schema) check() error {
	switch s.GeometryType {
	case Point, Polygon, MultiPolygon:
	default:
		return invalid("geometry type %v (Point, Polygon or MultiPolygon)", s.GeometryType)
	}
	if len(s.Name) > MaxStringLen || !utf8.ValidString(s.Name) {
		return invalid("layer name: not UTF-8 or over %d bytes", MaxStringLen)
	}
	if s.EPSG < 0 || s.EPSG > math.MaxInt32 {
		return invalid("EPSG code %d", s.EPSG)
	}
	if len(s.Columns) > maxColumns {
		return invalid("%d columns, over %d", len(s.Columns), maxColumns)
	}
	seen := make(map[string]bool, len(s.Columns))
	for i, c := range s.Columns {
		if c.Name == "" || len(c.Name) > MaxStringLen || !utf8.ValidString(c.Name) {
			return invalid("column %d: name empty, not UTF-8 or too long", i)
		}
		if seen[c.Name] {
			return invalid("column %q twice", c.Name)
		}
		seen[c.Name] = true
		if c.Type.code() == 0xff {
			return invalid("column %q: type %v", c.Name, c.Type)
		}
	}
	return nil
}

// Write appends f; it keeps nothing of f once it returns. Any error is
// final: the writer keeps it, and Close returns it without touching the
// destination (a file missing features must not replace a good one).
func (w *Writer) Write(f Feature) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if err := w.write(&f); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *Writer) write(f *Feature) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.count >= w.opt.maxFeatures {
		return invalid("more than %d features", w.opt.maxFeatures)
	}
	buf, box, err := w.enc.feature(&w.s, f)
	if err != nil {
		return err
	}
	if _, err := w.featW.Write(buf); err != nil {
		return fmt.Errorf("fgb: writing features: %w", err)
	}
	it := item{minX: box[0], minY: box[1], maxX: box[2], maxY: box[3], off: w.featEnd, size: uint32(len(buf))}
	it.put(w.item[:])
	if _, err := w.itemW.Write(w.item[:]); err != nil {
		return fmt.Errorf("fgb: writing items: %w", err)
	}
	w.featEnd += uint64(len(buf))
	w.maxSize = max(w.maxSize, uint32(len(buf)))
	w.count++
	w.env[0], w.env[1] = min(w.env[0], box[0]), min(w.env[1], box[1])
	w.env[2], w.env[3] = max(w.env[2], box[2]), max(w.env[3], box[3])
	return nil
}

// Count is the number of features written so far.
func (w *Writer) Count() uint64 { return w.count }

// Close builds the file (mode 0644) and renames it over the destination.
// On any error (a failed Write before, the context cancelled, a full disk)
// nothing at the destination changes and no temporary file remains. Either
// way the Writer is done: a second Close returns ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	err := w.err
	if err == nil {
		err = w.finish()
	}
	w.cleanup()
	return err
}

// Abort drops the file being written and its temporaries. It does nothing
// after Close.
func (w *Writer) Abort() {
	if !w.closed {
		w.cleanup()
	}
}

func (w *Writer) cleanup() {
	w.closed = true
	for _, f := range w.temps {
		f.Close()
		if f == w.out && w.renamed {
			continue
		}
		os.Remove(f.Name())
	}
	w.temps = nil
}

// finish writes the final file and renames it over the destination.
func (w *Writer) finish() error {
	if err := w.featW.Flush(); err != nil {
		return fmt.Errorf("fgb: writing features: %w", err)
	}
	if err := w.itemW.Flush(); err != nil {
		return fmt.Errorf("fgb: writing items: %w", err)
	}
	if err := w.build(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	out := w.out
	if err := out.Chmod(0o644); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	if err := os.Rename(out.Name(), w.path); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	w.renamed = true
	// Make the rename durable; a failure here leaves a complete file.
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// nodeSize is the index's node size, as GDAL writes it.
const nodeSize = 16

// nodeItemSize is a node's size in the index: a box and an offset.
const nodeItemSize = 40

var magic = [8]byte{'f', 'g', 'b', 3, 'f', 'g', 'b', 1}

// build writes the magic bytes, the header, the index and the features
// into w.out.
func (w *Writer) build() error {
	n := w.count
	var hdr []byte
	if n == 0 {
		// No index (GDAL fails computing the size of an empty tree) and no
		// envelope.
		hdr = encodeHeader(&w.s, 0, nil, 0)
	} else {
		hdr = encodeHeader(&w.s, n, &w.env, nodeSize)
	}
	start := make([]byte, 0, len(magic)+len(hdr))
	start = append(start, magic[:]...)
	start = append(start, hdr...)
	if _, err := w.out.WriteAt(start, 0); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	if n == 0 {
		return nil
	}
	levels := treeLevels(n, nodeSize)
	indexAt := int64(len(start))
	numNodes := levels[0].start + levels[0].count
	featAt := indexAt + int64(numNodes)*nodeItemSize

	// Features in Hilbert order, and the leaves pointing at them.
	leafW := bufio.NewWriterSize(io.NewOffsetWriter(w.out, indexAt+int64(levels[0].start)*nodeItemSize), 1<<16)
	featW := bufio.NewWriterSize(io.NewOffsetWriter(w.out, featAt), 1<<18)
	buf := make([]byte, w.maxSize)
	var node [nodeItemSize]byte
	var pos, emitted uint64
	err := w.sortItems(func(it *item) error {
		b := buf[:it.size]
		if _, err := w.feats.ReadAt(b, int64(it.off)); err != nil {
			return fmt.Errorf("fgb: reading features: %w", err)
		}
		if uint64(le.Uint32(b))+4 != uint64(it.size) {
			return fmt.Errorf("fgb: features file corrupt at %d", it.off)
		}
		if _, err := featW.Write(b); err != nil {
			return fmt.Errorf("fgb: %w", err)
		}
		putNode(node[:], it.minX, it.minY, it.maxX, it.maxY, pos)
		if _, err := leafW.Write(node[:]); err != nil {
			return fmt.Errorf("fgb: %w", err)
		}
		pos += uint64(it.size)
		emitted++
		return nil
	})
	if err != nil {
		return err
	}
	if emitted != n || pos != w.featEnd {
		return fmt.Errorf("fgb: sorted %d features (%d bytes), wrote %d (%d bytes)", emitted, pos, n, w.featEnd)
	}
	if err := featW.Flush(); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	if err := leafW.Flush(); err != nil {
		return fmt.Errorf("fgb: %w", err)
	}
	return w.buildParents(levels, indexAt)
}

// buildParents writes each level of the tree above the leaves from the
// level below it, already in w.out: a parent covers nodeSize consecutive
// children and points at the first by its node index.
func (w *Writer) buildParents(levels []level, indexAt int64) error {
	var in, out [nodeItemSize]byte
	for l := 0; l+1 < len(levels); l++ {
		child, parent := levels[l], levels[l+1]
		r := bufio.NewReaderSize(io.NewSectionReader(w.out, indexAt+int64(child.start)*nodeItemSize, int64(child.count)*nodeItemSize), 1<<16)
		pw := bufio.NewWriterSize(io.NewOffsetWriter(w.out, indexAt+int64(parent.start)*nodeItemSize), 1<<16)
		var written uint64
		for first := uint64(0); first < child.count; first += nodeSize {
			if first%(1<<16) == 0 {
				if err := w.ctx.Err(); err != nil {
					return err
				}
			}
			box := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
			for c := first; c < min(first+nodeSize, child.count); c++ {
				if _, err := io.ReadFull(r, in[:]); err != nil {
					return fmt.Errorf("fgb: reading index: %w", err)
				}
				b := nodeBox(in[:])
				box[0], box[1] = min(box[0], b[0]), min(box[1], b[1])
				box[2], box[3] = max(box[2], b[2]), max(box[3], b[3])
			}
			putNode(out[:], box[0], box[1], box[2], box[3], child.start+first)
			if _, err := pw.Write(out[:]); err != nil {
				return fmt.Errorf("fgb: %w", err)
			}
			written++
		}
		if written != parent.count {
			return fmt.Errorf("fgb: index level %d: %d nodes, want %d", l+1, written, parent.count)
		}
		if err := pw.Flush(); err != nil {
			return fmt.Errorf("fgb: %w", err)
		}
	}
	return nil
}

// level is one level of the packed R-tree: its first node's index in the
// index (stored root level first) and its number of nodes.
type level struct{ start, count uint64 }

// treeLevels lists the tree's levels bottom-up: levels[0] holds the n
// leaves (stored last), the last level the root (stored first, node 0).
// Like the format's reference, a single leaf still gets a root above it.
func treeLevels(n, nodeSize uint64) []level {
	counts := []uint64{n}
	total := n
	for c := n; ; {
		c = (c + nodeSize - 1) / nodeSize
		counts = append(counts, c)
		total += c
		if c == 1 {
			break
		}
	}
	levels := make([]level, len(counts))
	end := total
	for i, c := range counts {
		end -= c
		levels[i] = level{start: end, count: c}
	}
	return levels
}

func putNode(b []byte, minX, minY, maxX, maxY float64, offset uint64) {
	le.PutUint64(b[0:], math.Float64bits(minX))
	le.PutUint64(b[8:], math.Float64bits(minY))
	le.PutUint64(b[16:], math.Float64bits(maxX))
	le.PutUint64(b[24:], math.Float64bits(maxY))
	le.PutUint64(b[32:], offset)
}

func nodeBox(b []byte) [4]float64 {
	return [4]float64{
		math.Float64frombits(le.Uint64(b[0:])),
		math.Float64frombits(le.Uint64(b[8:])),
		math.Float64frombits(le.Uint64(b[16:])),
		math.Float64frombits(le.Uint64(b[24:])),
	}
}
