package fgb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// gdal runs a GDAL command-line tool and returns its standard output.
func gdal(t testing.TB, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run make test (it installs gdal-bin)", name)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	// GDAL reports read failures (a buffer failing verification, a bad
	// offset) as errors on stderr while still exiting 0.
	if s := stderr.String(); strings.Contains(s, "ERROR") {
		t.Fatalf("%s %s: %s", name, strings.Join(args, " "), s)
	}
	return stdout.String()
}

// geoJSON is ogr2ogr's GeoJSON output.
type geoJSON struct {
	Features []struct {
		Properties map[string]any `json:"properties"`
		Geometry   struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
	} `json:"features"`
}

// readGDAL has GDAL read the whole layer as GeoJSON, numbers exact.
func readGDAL(t testing.TB, path string, extra ...string) geoJSON {
	t.Helper()
	args := append([]string{"-f", "GeoJSON", "-lco", "SIGNIFICANT_FIGURES=17", "/vsistdout/", path}, extra...)
	out := gdal(t, "ogr2ogr", args...)
	d := json.NewDecoder(strings.NewReader(out))
	d.UseNumber()
	var g geoJSON
	if err := d.Decode(&g); err != nil {
		t.Fatalf("GDAL's GeoJSON: %v\n%.2000s", err, out)
	}
	return g
}

// ogrSummary is what ogrinfo -so tells of the layer.
type ogrSummary struct {
	count  int
	extent string
	text   string
}

func summary(t testing.TB, path string) ogrSummary {
	t.Helper()
	out := gdal(t, "ogrinfo", "-ro", "-al", "-so", path)
	s := ogrSummary{count: -1, text: out}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Feature Count: "); ok {
			s.count, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "Extent: "); ok {
			s.extent = strings.TrimSpace(v)
		}
	}
	return s
}

func extentString(b [4]float64) string {
	return fmt.Sprintf("(%f, %f) - (%f, %f)", b[0], b[1], b[2], b[3])
}

// The differential test's columns: every type, nullable or not.
var diffColumns = []Column{
	{Name: "id", Type: ColLong},
	{Name: "nom", Type: ColString, Nullable: true},
	{Name: "n32", Type: ColInt, Nullable: true},
	{Name: "n64", Type: ColLong, Nullable: true},
	{Name: "x", Type: ColDouble, Nullable: true},
	{Name: "ouvert", Type: ColBool, Nullable: true},
	{Name: "vide", Type: ColString, Nullable: true},
}

var diffStrings = []string{
	"Carcassonne — dalle é", "", "plain", "日本語のタイル", "carte 🗺", `quote " and \ backslash`,
	"tab\tnew\nline", strings.Repeat("long é ", 700),
}

func diffValues(r *rand.Rand, i int) []Value {
	pick := func(vs ...Value) Value { return vs[r.IntN(len(vs))] }
	return []Value{
		Long(int64(i)),
		pick(Null(), String(diffStrings[r.IntN(len(diffStrings))]), String(diffStrings[i%len(diffStrings)])),
		pick(Null(), Int(math.MinInt32), Int(math.MaxInt32), Int(0), Int(-1), Int(int32(r.Uint32()))),
		pick(Null(), Long(math.MinInt64), Long(math.MaxInt64), Long(1<<53+1), Long(r.Int64()-r.Int64())),
		pick(Null(), Double(0.1), Double(-1e300), Double(1.0/3), Double(5e-324), Double(0), Double(nano(r.NormFloat64()*1e3))),
		pick(Null(), Bool(true), Bool(false)),
		Null(),
	}
}

// randomRing is a closed ring of n points around (cx, cy): a star-shaped
// polygon, so never self-intersecting.
func randomRing(r *rand.Rand, cx, cy, radius float64, n int, clockwise bool) Ring {
	ring := make(Ring, 0, n+1)
	for k := range n {
		a := 2 * math.Pi * (float64(k) + r.Float64()*0.5) / float64(n)
		if clockwise {
			a = -a
		}
		rr := radius * (0.6 + 0.4*r.Float64())
		ring = append(ring, [2]float64{nano(cx + rr*math.Cos(a)), nano(cy + rr*math.Sin(a))})
	}
	return append(ring, ring[0])
}

// randomPolygon is an exterior ring with, sometimes, holes inside it.
func randomPolygon(r *rand.Rand, cx, cy, radius float64) []Ring {
	rings := []Ring{randomRing(r, cx, cy, radius, 4+r.IntN(30), false)}
	for range r.IntN(3) {
		rings = append(rings, randomRing(r, cx+(r.Float64()-0.5)*radius*0.3, cy+(r.Float64()-0.5)*radius*0.3, radius*0.15, 3+r.IntN(6), true))
	}
	return rings
}

// nano rounds v to 1e-9. GDAL's GeoJSON writer prints doubles with 17
// significant digits, except that it rounds away a run of 9s or 0s (it
// printed 44.088728999999816 as 44.088729): values with few decimals come
// back exact, so that the comparison can be exact.
func nano(v float64) float64 { return math.Round(v*1e9) / 1e9 }

func diffGeometry(r *rand.Rand, lt GeometryType) Geometry {
	cx, cy := nano(-5+r.Float64()*15), nano(41+r.Float64()*10)
	switch {
	case lt == Point:
		return PointGeometry(cx, cy)
	case r.IntN(4) == 0:
		return BoxGeometry(cx, cy, nano(cx+r.Float64()*0.01), nano(cy+r.Float64()*0.01))
	case lt == MultiPolygon && r.IntN(2) == 0:
		var polys [][]Ring
		for k := range 1 + r.IntN(4) {
			polys = append(polys, randomPolygon(r, cx+float64(k)*0.5, cy, 0.2))
		}
		return MultiPolygonGeometry(polys...)
	}
	return PolygonGeometry(randomPolygon(r, cx, cy, 0.2)...)
}

func box(g Geometry) [4]float64 {
	b, err := checkGeometry(g.Type, &g)
	if err != nil {
		panic(err)
	}
	return b
}

func union(a, b [4]float64) [4]float64 {
	return [4]float64{min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])}
}

var emptyBox = [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}

// TestGDALReadsEverything writes layers of each geometry type with values
// of every column type (nulls, extremes, non-ASCII), has GDAL read them
// back, and compares every feature's values and geometry exactly.
func TestGDALReadsEverything(t *testing.T) {
	for _, lt := range []GeometryType{MultiPolygon, Polygon, Point} {
		t.Run(lt.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(lt), 7))
			path := filepath.Join(t.TempDir(), "diff.fgb")
			s := Schema{Name: "dalles_" + lt.String(), GeometryType: lt, Columns: diffColumns, EPSG: 4326}
			const n = 300
			var written []Feature
			env := emptyBox
			w, err := Create(context.Background(), path, s, RunSize(64))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			for i := range n {
				f := Feature{Geometry: diffGeometry(r, lt), Values: diffValues(r, i)}
				if err := w.Write(f); err != nil {
					t.Fatalf("feature %d: %v", i, err)
				}
				written = append(written, f)
				env = union(env, box(f.Geometry))
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			checkLayout(t, path, n)

			sum := summary(t, path)
			if sum.count != n || sum.extent != extentString(env) {
				t.Errorf("ogrinfo: %d features, extent %s; want %d, %s", sum.count, sum.extent, n, extentString(env))
			}
			for _, want := range []string{
				"Layer name: " + s.Name, `ID["EPSG",4326]`,
				"id: Integer64 (0.0) NOT NULL", "nom: String (0.0)", "n32: Integer (0.0)",
				"n64: Integer64 (0.0)", "x: Real (0.0)", "ouvert: Integer(Boolean) (0.0)",
				"Geometry: " + map[GeometryType]string{Point: "Point", Polygon: "Polygon", MultiPolygon: "Multi Polygon"}[lt],
			} {
				if !strings.Contains(sum.text, want) {
					t.Errorf("ogrinfo does not say %q:\n%s", want, sum.text)
				}
			}

			got := readGDAL(t, path)
			if len(got.Features) != n {
				t.Fatalf("GDAL read %d features, want %d", len(got.Features), n)
			}
			seen := map[int64]bool{}
			for _, gf := range got.Features {
				id, err := gf.Properties["id"].(json.Number).Int64()
				if err != nil || id < 0 || id >= n || seen[id] {
					t.Fatalf("feature id %v: %v (or seen twice)", gf.Properties["id"], err)
				}
				seen[id] = true
				want := written[id]
				for c, col := range diffColumns {
					if msg := compareValue(gf.Properties[col.Name], want.Values[c]); msg != "" {
						t.Errorf("feature %d column %s: %s", id, col.Name, msg)
					}
				}
				if msg := compareGeometry(lt, gf.Geometry.Type, gf.Geometry.Coordinates, want.Geometry); msg != "" {
					t.Errorf("feature %d geometry: %s", id, msg)
				}
			}
		})
	}
}

func compareValue(got any, want Value) string {
	if want.IsNull() {
		if got != nil {
			return fmt.Sprintf("%v, want null", got)
		}
		return ""
	}
	switch want.typ {
	case ColString:
		if got != want.s {
			return fmt.Sprintf("%q, want %q", got, want.s)
		}
	case ColBool:
		if got != (want.i == 1) {
			return fmt.Sprintf("%v, want %v", got, want.i == 1)
		}
	case ColInt, ColLong:
		num, ok := got.(json.Number)
		if v, err := num.Int64(); !ok || err != nil || v != want.i {
			return fmt.Sprintf("%v, want %d", got, want.i)
		}
	case ColDouble:
		num, ok := got.(json.Number)
		if v, err := num.Float64(); !ok || err != nil || v != want.f {
			return fmt.Sprintf("%v, want %v", got, want.f)
		}
	}
	return ""
}

func compareGeometry(lt GeometryType, typ string, coords json.RawMessage, want Geometry) string {
	switch lt {
	case Point:
		var p [2]float64
		if typ != "Point" || json.Unmarshal(coords, &p) != nil || p != want.Point {
			return fmt.Sprintf("%s %s, want point %v", typ, coords, want.Point)
		}
		return ""
	case Polygon:
		var p []Ring
		if typ != "Polygon" || json.Unmarshal(coords, &p) != nil || !equalPolygons([][]Ring{p}, want.Polygons) {
			return fmt.Sprintf("%s %.300s, want %.300v", typ, coords, want.Polygons)
		}
		return ""
	}
	var mp [][]Ring
	if typ != "MultiPolygon" || json.Unmarshal(coords, &mp) != nil || !equalPolygons(mp, want.Polygons) {
		return fmt.Sprintf("%s %.300s, want %.300v", typ, coords, want.Polygons)
	}
	return ""
}

func equalPolygons(a, b [][]Ring) bool {
	return slices.EqualFunc(a, b, func(p, q []Ring) bool {
		return slices.EqualFunc(p, q, func(r, s Ring) bool { return slices.Equal(r, s) })
	})
}

// tileBoxes writes n random boxes (with their id as the only column) and
// returns them.
func tileBoxes(t testing.TB, path string, n int, opts ...Option) [][4]float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 11))
	s := Schema{Name: "boxes", GeometryType: Polygon, EPSG: 4326, Columns: []Column{{Name: "id", Type: ColLong}}}
	w, err := Create(context.Background(), path, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	boxes := make([][4]float64, n)
	for i := range boxes {
		x, y := -5+r.Float64()*14, 41+r.Float64()*10
		b := [4]float64{x, y, x + r.Float64()*0.05, y + r.Float64()*0.05}
		if r.IntN(50) == 0 { // a few large ones
			b[2], b[3] = x+r.Float64()*3, y+r.Float64()*3
		}
		boxes[i] = b
		if err := w.Write(Feature{Geometry: BoxGeometry(b[0], b[1], b[2], b[3]), Values: []Value{Long(int64(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return boxes
}

// spatialIDs has GDAL answer a spatial filter, and returns the ids found.
func spatialIDs(t testing.TB, path string, q [4]float64) []int {
	t.Helper()
	args := []string{"-f", "CSV", "/vsistdout/", path, "-select", "id", "-spat"}
	for _, v := range q {
		args = append(args, strconv.FormatFloat(v, 'g', -1, 64))
	}
	out := gdal(t, "ogr2ogr", args...)
	var ids []int
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i == 0 || line == "" { // the CSV header
			continue
		}
		id, err := strconv.Atoi(strings.Trim(line, `"`))
		if err != nil {
			t.Fatalf("CSV line %q", line)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func bruteForce(boxes [][4]float64, q [4]float64) []int {
	var ids []int
	for i, b := range boxes {
		if b[0] <= q[2] && b[2] >= q[0] && b[1] <= q[3] && b[3] >= q[1] {
			ids = append(ids, i)
		}
	}
	return ids
}

// TestSpatialFilter: GDAL answers spatial filters through the index with
// exactly the features a brute force finds, on a three-level tree whose
// items were sorted in 100 runs merged in two passes.
func TestSpatialFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "boxes.fgb")
	const n = 10_000
	boxes := tileBoxes(t, path, n, RunSize(100))
	checkLayout(t, path, n)
	env := emptyBox
	for _, b := range boxes {
		env = union(env, b)
	}
	if s := summary(t, path); s.count != n || s.extent != extentString(env) {
		t.Errorf("ogrinfo: %d features, extent %s; want %d, %s", s.count, s.extent, n, extentString(env))
	}
	r := rand.New(rand.NewPCG(3, 4))
	queries := [][4]float64{
		{0, 45, 1, 46},
		{-5.5, 40, -4, 52}, // a strip along the west edge
		{2.5, 43.5, 2.6, 43.6},
		{20, 20, 21, 21}, // nothing there
		{env[0], env[1], env[0] + 0.001, env[1] + 0.001},
	}
	for range 10 {
		x, y := -5+r.Float64()*14, 41+r.Float64()*10
		queries = append(queries, [4]float64{x, y, x + r.Float64()*2, y + r.Float64()*2})
	}
	nonEmpty := 0
	for _, q := range queries {
		got, want := spatialIDs(t, path, q), bruteForce(boxes, q)
		if !slices.Equal(got, want) {
			t.Errorf("box %v: GDAL found %d features, brute force %d", q, len(got), len(want))
		}
		if len(want) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < 10 {
		t.Errorf("only %d queries found anything", nonEmpty)
	}
}

// TestGDALUsesIndex proves that GDAL's answer comes from the index: once a
// leaf's box is moved away in the file, GDAL no longer finds that feature
// where it is, which a scan would.
func TestGDALUsesIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "boxes.fgb")
	boxes := tileBoxes(t, path, 1000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lay := parseLayout(t, b)
	// The first leaf: which feature is it?
	leaf := lay.indexAt + int(lay.levels[0].start)*nodeItemSize
	id := lay.featureID(t, b, le.Uint64(b[leaf+32:]))
	q := boxes[id]
	if got := spatialIDs(t, path, q); !slices.Contains(got, id) {
		t.Fatalf("feature %d not found in its own box", id)
	}
	putNode(b[leaf:], 100, 80, 101, 81, le.Uint64(b[leaf+32:]))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := spatialIDs(t, path, q); slices.Contains(got, id) {
		t.Errorf("feature %d still found once its leaf moved: GDAL did not use the index", id)
	}
}

// TestTreeShapes: counts where the tree's shape is tricky (no index, one
// leaf under a root, full and just-over-full nodes and levels).
func TestTreeShapes(t *testing.T) {
	for _, n := range []int{0, 1, 2, 15, 16, 17, 255, 256, 257, 4097} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "boxes.fgb")
			boxes := tileBoxes(t, path, n, RunSize(7))
			checkLayout(t, path, n)
			// Sorted in one run in memory, or in runs merged once or twice
			// from disk: the same bytes.
			other := filepath.Join(dir, "one-run.fgb")
			tileBoxes(t, other, n)
			a, _ := os.ReadFile(path)
			if b, _ := os.ReadFile(other); !bytes.Equal(a, b) {
				t.Error("the file depends on the sort's run size")
			}
			s := summary(t, path)
			if s.count != n {
				t.Errorf("ogrinfo counts %d features, want %d", s.count, n)
			}
			if got := readGDAL(t, path); len(got.Features) != n {
				t.Errorf("GDAL read %d features, want %d", len(got.Features), n)
			}
			if n == 0 {
				if s.extent != "" {
					t.Errorf("empty layer with extent %s", s.extent)
				}
				return
			}
			env := emptyBox
			for _, b := range boxes {
				env = union(env, b)
			}
			if s.extent != extentString(env) {
				t.Errorf("extent %s, want %s", s.extent, extentString(env))
			}
			for _, q := range [][4]float64{
				{0, 45, 3, 48}, {-5, 41, -2, 44},
				{boxes[0][0], boxes[0][1], boxes[0][0] + 1e-9, boxes[0][1] + 1e-9},
			} {
				if got, want := spatialIDs(t, path, q), bruteForce(boxes, q); !slices.Equal(got, want) {
					t.Errorf("box %v: GDAL found %v, brute force %v", q, got, want)
				}
			}
		})
	}
}

// TestSamePlace: features all at one point (an extent of zero width and
// height) are still all indexed and found.
func TestSamePlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.fgb")
	w, err := Create(context.Background(), path, Schema{GeometryType: Point, Columns: []Column{{Name: "id", Type: ColLong}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	const n = 40
	for i := range n {
		if err := w.Write(Feature{Geometry: PointGeometry(2.35, 48.85), Values: []Value{Long(int64(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, path, n)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if got := spatialIDs(t, path, [4]float64{2.3, 48.8, 2.4, 48.9}); !slices.Equal(got, want) {
		t.Errorf("GDAL found %v", got)
	}
	if s := summary(t, path); s.count != n || !strings.Contains(s.text, "Layer name: unknown") {
		t.Errorf("ogrinfo: %s", s.text)
	}
}

func TestTreeLevels(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want []level
	}{
		{1, []level{{1, 1}, {0, 1}}},
		{2, []level{{1, 2}, {0, 1}}},
		{16, []level{{1, 16}, {0, 1}}},
		{17, []level{{3, 17}, {1, 2}, {0, 1}}},
		{256, []level{{17, 256}, {1, 16}, {0, 1}}},
		{257, []level{{20, 257}, {3, 17}, {1, 2}, {0, 1}}},
	} {
		if got := treeLevels(c.n, 16); !slices.Equal(got, c.want) {
			t.Errorf("treeLevels(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

// TestHilbert: the first 4^k ranks fill the 2^k lower left square, each
// step to a neighbouring cell.
func TestHilbert(t *testing.T) {
	const side = 32
	at := make(map[uint32][2]uint32)
	for x := range uint32(side) {
		for y := range uint32(side) {
			at[hilbert(x, y)] = [2]uint32{x, y}
		}
	}
	for d := range uint32(side * side) {
		c, ok := at[d]
		if !ok {
			t.Fatalf("rank %d not in the %dx%d corner", d, side, side)
		}
		if d > 0 {
			p := at[d-1]
			if dist := absDiff(c[0], p[0]) + absDiff(c[1], p[1]); dist != 1 {
				t.Fatalf("ranks %d and %d: cells %v and %v", d-1, d, p, c)
			}
		}
	}
	if hilbert(0, 0) != 0 || hilbert(hilbertMax, 0) != math.MaxUint32 {
		t.Errorf("curve ends: %d, %d", hilbert(0, 0), hilbert(hilbertMax, 0))
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// layout is a written file's structure, read back independently of GDAL.
type layout struct {
	hdr      fbTable
	count    uint64
	nodeSize uint16
	env      []float64
	indexAt  int
	featAt   int
	levels   []level
}

// fbTable reads a FlatBuffers table, checking alignment and bounds the way
// FlatBuffers verifiers do.
type fbTable struct {
	t   testing.TB
	buf []byte
	pos int
}

// fbRoot reads a size-prefixed block at offset at of a file, as readers
// do: the block must start 8-aligned in the file (readers of the whole
// file use it in place) and alignment inside is counted from its prefix
// (range readers copy it to offset 0 of a fresh buffer).
func fbRoot(t testing.TB, file []byte, at int) fbTable {
	t.Helper()
	if at%8 != 0 || at+4 > len(file) {
		t.Fatalf("flatbuffer block at %d: misaligned or out of the file", at)
	}
	size := int(le.Uint32(file[at:]))
	if size%8 != 4 || at+4+size > len(file) {
		t.Fatalf("flatbuffer block at %d: %d bytes, not padded to 8 or out of the file", at, size)
	}
	return fbTable{t, file[at : at+4+size], 0}.ref(4)
}

func (tb fbTable) check(pos, size int) {
	tb.t.Helper()
	if pos < 0 || pos+size > len(tb.buf) || pos%size != 0 {
		tb.t.Fatalf("flatbuffer: %d bytes at %d (buffer of %d): out of bounds or misaligned", size, pos, len(tb.buf))
	}
}

// ref follows the uoffset at pos to a table.
func (tb fbTable) ref(pos int) fbTable {
	tb.t.Helper()
	tb.check(pos, 4)
	p := pos + int(le.Uint32(tb.buf[pos:]))
	tb.check(p, 4)
	vt := p - int(int32(le.Uint32(tb.buf[p:])))
	tb.check(vt, 2)
	if n := int(le.Uint16(tb.buf[vt:])); n < 4 || n%2 != 0 || vt+n > len(tb.buf) {
		tb.t.Fatalf("flatbuffer: vtable of %d bytes at %d", n, vt)
	}
	return fbTable{tb.t, tb.buf, p}
}

// field is the position of field slot, 0 when absent.
func (tb fbTable) field(slot, size int) int {
	tb.t.Helper()
	vt := tb.pos - int(int32(le.Uint32(tb.buf[tb.pos:])))
	if 4+2*slot >= int(le.Uint16(tb.buf[vt:])) {
		return 0
	}
	off := int(le.Uint16(tb.buf[vt+4+2*slot:]))
	if off == 0 {
		return 0
	}
	tb.check(tb.pos+off, size)
	return tb.pos + off
}

// vector follows the reference at pos to a vector, returning the position
// of its first element and its length.
func (tb fbTable) vector(pos, elemSize int) (int, int) {
	tb.t.Helper()
	tb.check(pos, 4)
	p := pos + int(le.Uint32(tb.buf[pos:]))
	tb.check(p, 4)
	n := int(le.Uint32(tb.buf[p:]))
	if n > 0 {
		tb.check(p+4, elemSize)
		tb.check(p+4+(n-1)*elemSize, elemSize)
	}
	return p + 4, n
}

func parseLayout(t testing.TB, b []byte) layout {
	t.Helper()
	if len(b) < 12 || !bytes.Equal(b[:8], magic[:]) {
		t.Fatalf("no magic bytes")
	}
	hlen := int(le.Uint32(b[8:]))
	hdr := fbRoot(t, b, 8)
	l := layout{hdr: hdr, nodeSize: 16, indexAt: 12 + hlen}
	if p := hdr.field(headerFeaturesCount, 8); p != 0 {
		l.count = le.Uint64(hdr.buf[p:])
	}
	if p := hdr.field(headerIndexNodeSize, 2); p != 0 {
		l.nodeSize = le.Uint16(hdr.buf[p:])
	}
	if p := hdr.field(headerEnvelope, 4); p != 0 {
		e, n := hdr.vector(p, 8)
		for i := range n {
			l.env = append(l.env, math.Float64frombits(le.Uint64(hdr.buf[e+8*i:])))
		}
	}
	l.featAt = l.indexAt
	if l.nodeSize > 0 && l.count > 0 {
		l.levels = treeLevels(l.count, uint64(l.nodeSize))
		l.featAt += int(l.levels[0].start+l.levels[0].count) * nodeItemSize
	}
	return l
}

// featureID reads the id (column 0, a Long) of the feature at offset.
func (l layout) featureID(t testing.TB, b []byte, offset uint64) int {
	t.Helper()
	p := l.featAt + int(offset)
	ft := fbRoot(t, b, p)
	props, n := ft.vector(ft.field(featureProperties, 4), 1)
	if n < 10 || le.Uint16(ft.buf[props:]) != 0 {
		t.Fatalf("feature at %d: no id", offset)
	}
	return int(le.Uint64(ft.buf[props+2:]))
}

// checkLayout reads the file back: header, every node of the tree (each
// parent the union of its children and pointing at the first, leaves
// pointing at consecutive features, in Hilbert order) and every feature's
// buffer, through to the end of the file.
func checkLayout(t testing.TB, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := parseLayout(t, b)
	if l.count != uint64(n) {
		t.Fatalf("header counts %d features, want %d", l.count, n)
	}
	if n == 0 {
		if l.nodeSize != 0 || l.env != nil || len(b) != l.featAt {
			t.Fatalf("empty layer: node size %d, envelope %v, %d bytes after the header", l.nodeSize, l.env, len(b)-l.featAt)
		}
		return
	}
	if l.nodeSize != 16 || len(l.env) != 4 {
		t.Fatalf("node size %d, envelope %v", l.nodeSize, l.env)
	}
	node := func(i uint64) ([4]float64, uint64) {
		p := l.indexAt + int(i)*nodeItemSize
		return nodeBox(b[p:]), le.Uint64(b[p+32:])
	}
	for k := 1; k < len(l.levels); k++ {
		child, parent := l.levels[k-1], l.levels[k]
		for j := range parent.count {
			got, off := node(parent.start + j)
			first := child.start + 16*j
			if off != first {
				t.Fatalf("level %d node %d points at %d, want %d", k, j, off, first)
			}
			want := emptyBox
			for c := first; c < min(first+16, child.start+child.count); c++ {
				cb, _ := node(c)
				want = union(want, cb)
			}
			if got != want {
				t.Fatalf("level %d node %d box %v, children's %v", k, j, got, want)
			}
		}
	}
	root, _ := node(0)
	if root != [4]float64(l.env) {
		t.Errorf("root box %v, envelope %v", root, l.env)
	}
	curve := newHilbertCurve([4]float64(l.env))
	var pos uint64
	var prev uint32
	for i := range l.levels[0].count {
		bx, off := node(l.levels[0].start + i)
		if off != pos {
			t.Fatalf("leaf %d points at %d, want %d", i, off, pos)
		}
		h := curve.value(&item{minX: bx[0], minY: bx[1], maxX: bx[2], maxY: bx[3]})
		if h < prev {
			t.Fatalf("leaf %d out of Hilbert order", i)
		}
		prev = h
		p := l.featAt + int(pos)
		size := le.Uint32(b[p:])
		ft := fbRoot(t, b, p)
		if ft.field(featureGeometry, 4) == 0 {
			t.Fatalf("feature %d without geometry", i)
		}
		pos += 4 + uint64(size)
	}
	if l.featAt+int(pos) != len(b) {
		t.Fatalf("features end at %d, file at %d", l.featAt+int(pos), len(b))
	}
}

// countdown is a context cancelled after its Err has been asked n times.
type countdown struct {
	context.Context
	n *int
}

func (c countdown) Err() error {
	if *c.n <= 0 {
		return context.Canceled
	}
	*c.n--
	return nil
}

// dirNames lists a directory.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestFailedCloseKeepsOldFile: a write error, a context cancelled before
// or at any point during Close, or Abort, leave the previous file
// untouched and no temporary behind.
func TestFailedCloseKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dalles.fgb")
	old := []byte("the previous index")
	s := Schema{Name: "d", GeometryType: Polygon, Columns: []Column{{Name: "id", Type: ColLong}}, EPSG: 4326}
	write := func(ctx context.Context, n int, opts ...Option) (*Writer, error) {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Create(ctx, path, s, opts...)
		if err != nil {
			return nil, err
		}
		for i := range n {
			x := float64(i%100) * 0.01
			y := float64(i/100) * 0.01
			if err := w.Write(Feature{Geometry: BoxGeometry(x, y, x+0.01, y+0.01), Values: []Value{Long(int64(i))}}); err != nil {
				return w, err
			}
		}
		return w, nil
	}
	unchanged := func(what string) {
		t.Helper()
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, old) {
			t.Errorf("%s: the previous file changed (%v)", what, err)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"dalles.fgb"}) {
			t.Errorf("%s: left %v", what, names)
		}
	}

	t.Run("write error", func(t *testing.T) {
		w, err := write(context.Background(), 50)
		if err != nil {
			t.Fatal(err)
		}
		bad := Feature{Geometry: BoxGeometry(0, 0, 1, 1), Values: []Value{String("not a long")}}
		if err := w.Write(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Write: %v", err)
		}
		if err := w.Write(Feature{Geometry: BoxGeometry(0, 0, 1, 1), Values: []Value{Long(1)}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Write after a failure: %v, want the failure again", err)
		}
		if err := w.Close(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Close: %v, want the write's error", err)
		}
		unchanged("write error")
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("cancelled while writing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := write(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Write(Feature{Geometry: BoxGeometry(0, 0, 1, 1), Values: []Value{Long(1)}}); !errors.Is(err, context.Canceled) {
			t.Errorf("Write: %v", err)
		}
		if err := w.Close(); !errors.Is(err, context.Canceled) {
			t.Errorf("Close: %v", err)
		}
		unchanged("cancelled while writing")
	})

	t.Run("cancelled during close", func(t *testing.T) {
		// Cancel at each of Close's checks in turn (run sorting, merges,
		// features, each tree level, the rename), until Close gets through.
		const n = 3000
		for k := 0; ; k++ {
			left := 1 << 30
			ctx := countdown{context.Background(), &left}
			w, err := write(ctx, n, RunSize(20))
			if err != nil {
				t.Fatal(err)
			}
			left = k
			err = w.Close()
			if err == nil {
				checkLayout(t, path, n)
				if k < 5 {
					t.Errorf("Close checked its context only %d times", k)
				}
				break
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Close after %d checks: %v", k, err)
			}
			unchanged(fmt.Sprintf("cancelled after %d checks", k))
			if k > 10000 {
				t.Fatal("Close never succeeded")
			}
		}
	})

	t.Run("abort", func(t *testing.T) {
		w, err := write(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
		unchanged("abort")
		if err := w.Write(Feature{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Abort: %v", err)
		}
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("Close after Abort: %v", err)
		}
	})

	t.Run("feature limit", func(t *testing.T) {
		w, err := write(context.Background(), 11, FeatureLimit(10))
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("11 features past a limit of 10: %v", err)
		}
		if err := w.Close(); err == nil {
			t.Error("Close succeeded")
		}
		unchanged("feature limit")
	})

	t.Run("replaces", func(t *testing.T) {
		tmp := t.TempDir()
		w, err := write(context.Background(), 100, TempDir(tmp))
		if err != nil {
			t.Fatal(err)
		}
		if len(dirNames(t, tmp)) == 0 {
			t.Error("no temporaries in the TempDir")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Abort() // harmless after Close
		checkLayout(t, path, 100)
		if names := dirNames(t, dir); !slices.Equal(names, []string{"dalles.fgb"}) {
			t.Errorf("left %v", names)
		}
		if names := dirNames(t, tmp); len(names) != 0 {
			t.Errorf("left %v in the TempDir", names)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%v %v", fi, err)
		}
	})
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.fgb")
	cols := []Column{{Name: "a", Type: ColString}, {Name: "b", Type: ColInt, Nullable: true}}
	for _, s := range []Schema{
		{GeometryType: 2, Columns: cols},
		{GeometryType: Polygon, Columns: []Column{{Name: "a", Type: ColString}, {Name: "a", Type: ColInt}}},
		{GeometryType: Polygon, Columns: []Column{{Name: "", Type: ColString}}},
		{GeometryType: Polygon, Columns: []Column{{Name: "a"}}},
		{GeometryType: Polygon, Name: "\xff"},
		{GeometryType: Polygon, EPSG: -1},
	} {
		if w, err := Create(ctx, path, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("schema %+v: %v", s, err)
			if w != nil {
				w.Abort()
			}
		}
	}
	square := BoxGeometry(0, 0, 1, 1)
	good := []Value{String("x"), Null()}
	for name, c := range map[string]struct {
		lt GeometryType
		f  Feature
	}{
		"values count":    {Polygon, Feature{Geometry: square, Values: good[:1]}},
		"value type":      {Polygon, Feature{Geometry: square, Values: []Value{Int(1), Null()}}},
		"not nullable":    {Polygon, Feature{Geometry: square, Values: []Value{Null(), Null()}}},
		"not UTF-8":       {Polygon, Feature{Geometry: square, Values: []Value{String("\xc3"), Null()}}},
		"long string":     {Polygon, Feature{Geometry: square, Values: []Value{String(strings.Repeat("x", MaxStringLen+1)), Null()}}},
		"open ring":       {Polygon, Feature{Geometry: PolygonGeometry(Ring{{0, 0}, {1, 0}, {1, 1}, {0, 1}}), Values: good}},
		"short ring":      {Polygon, Feature{Geometry: PolygonGeometry(Ring{{0, 0}, {1, 0}, {0, 0}}), Values: good}},
		"no rings":        {Polygon, Feature{Geometry: PolygonGeometry(), Values: good}},
		"empty":           {MultiPolygon, Feature{Geometry: MultiPolygonGeometry(), Values: good}},
		"NaN":             {Polygon, Feature{Geometry: BoxGeometry(0, 0, math.NaN(), 1), Values: good}},
		"Inf point":       {Point, Feature{Geometry: PointGeometry(math.Inf(1), 0), Values: good}},
		"multi in poly":   {Polygon, Feature{Geometry: MultiPolygonGeometry([]Ring{square.Polygons[0][0]}), Values: good}},
		"point in poly":   {Polygon, Feature{Geometry: PointGeometry(0, 0), Values: good}},
		"poly in point":   {Point, Feature{Geometry: square, Values: good}},
		"zero geometry":   {Polygon, Feature{Values: good}},
		"too many points": {Polygon, Feature{Geometry: PolygonGeometry(make(Ring, MaxPoints+1)), Values: good}},
	} {
		w, err := Create(ctx, path, Schema{GeometryType: c.lt, Columns: cols})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(c.f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		w.Abort()
	}
	// What is valid: a polygon in a multipolygon layer, nulls where
	// nullable, the largest string.
	w, err := Create(ctx, path, Schema{GeometryType: MultiPolygon, Columns: cols})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, f := range []Feature{
		{Geometry: square, Values: good},
		{Geometry: square, Values: []Value{String(strings.Repeat("é", MaxStringLen/2)), Int(-7)}},
	} {
		if err := w.Write(f); err != nil {
			t.Error(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readGDAL(t, path)
	if len(got.Features) != 2 || got.Features[1].Geometry.Type != "MultiPolygon" ||
		len(got.Features[0].Properties["a"].(string))+len(got.Features[1].Properties["a"].(string)) != 1+MaxStringLen {
		t.Errorf("GDAL read %d features", len(got.Features))
	}
}
