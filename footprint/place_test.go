package footprint

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

func l93(x, y float64) Tile {
	return Tile{EPSG: 2154, Box: Box{x, y, x + 200, y + 200}}
}

// rotated is a 200 m tile whose geotransform is rotated by angle radians,
// its origin (top-left corner) at x, y.
func rotated(x, y, angle float64) Tile {
	c, s := math.Cos(angle)*200, math.Sin(angle)*200
	p0 := orb.Point{x, y}
	p1 := orb.Point{x + c, y + s}
	p2 := orb.Point{x + c + s, y + s - c}
	p3 := orb.Point{x + s, y - c}
	q := orb.Polygon{{p0, p3, p2, p1, p0}}
	Orient(orb.MultiPolygon{q})
	return Tile{EPSG: 2154, Quad: q}
}

var pow32 = math.Pow(2, 32)

// hostile are tiles from broken or lying headers; want is a word of the
// reason Check must give.
var hostile = []struct {
	name string
	tile Tile
	want string
}{
	{"origin 1e308", Tile{EPSG: 2154, Box: Box{1e308, 1e308, 1e308 + 200, 1e308 + 200}}, "zero area"},
	{"origin 1e308 rotated", Tile{EPSG: 2154, Quad: orb.Polygon{{{1e308, 1e308}, {1e308, -1e308}, {-1e308, -1e308}, {-1e308, 1e308}, {1e308, 1e308}}}}, "out of range"},
	{"2^32 px sides", Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000 + pow32*0.2, 6600000 + pow32*0.2}}, "over"},
	{"2^31 px sides", Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000 + pow32/2*0.2, 6600200}}, "over"},
	{"NaN origin", Tile{EPSG: 2154, Box: Box{math.NaN(), 6600000, 700200, 6600200}}, "non-finite"},
	{"NaN scale", Tile{EPSG: 2154, Quad: orb.Polygon{{{700000, 6600000}, {math.NaN(), math.NaN()}, {700200, 6600200}, {700000, 6600200}, {700000, 6600000}}}}, "non-finite"},
	{"Inf side", Tile{EPSG: 2154, Box: Box{700000, 6600000, math.Inf(1), 6600200}}, "non-finite"},
	{"-Inf origin", Tile{EPSG: 3946, Box: Box{math.Inf(-1), math.Inf(-1), 1700200, 5200200}}, "non-finite"},
	{"resolution 0", Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000, 6600000}}, "zero area"},
	{"resolution 1e-300", Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000 + 1e-300*20000, 6600000 + 1e-300*20000}}, "zero area"},
	{"resolution 1e-8", Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000.0002, 6600000.0002}}, "under"},
	{"150 km tile", Tile{EPSG: 2154, Box: Box{700000, 6600000, 850000, 6600200}}, "over"},
	{"inverted box", Tile{EPSG: 2154, Box: Box{700200, 6600000, 700000, 6600200}}, "inverted"},
	{"4326 with Lambert-93 coordinates", Tile{EPSG: 4326, Box: Box{770549, 6600000, 770749, 6600200}}, "outside the Earth"},
	{"Lambert-93 with CC46 coordinates", Tile{EPSG: 2154, Box: Box{1700000, 5200000, 1700200, 5200200}}, "area of use"},
	{"CC46 1.5° north of its zone", Tile{EPSG: 3946, Box: Box{1700000, 5478000, 1700200, 5478200}}, "area of use"},
	{"4326 across the antimeridian", Tile{EPSG: 4326, Box: Box{179.999, -16.001, 180.001, -15.999}}, "outside the Earth"},
	{"UTM 60N across the antimeridian", Tile{EPSG: 32660, Box: Box{828900, 1106000, 829100, 1106200}}, "antimeridian"},
	{"bowtie", Tile{EPSG: 2154, Quad: orb.Polygon{{{700000, 6600000}, {700200, 6600200}, {700200, 6600000}, {700000, 6600200}, {700000, 6600000}}}}, "self-intersecting"},
	{"closed triangle", Tile{EPSG: 2154, Quad: orb.Polygon{{{700000, 6600000}, {700200, 6600200}, {700200, 6600000}, {700000, 6600000}}}}, "zero area"},
	{"quad of 3 points", Tile{EPSG: 2154, Quad: orb.Polygon{{{700000, 6600000}, {700200, 6600200}, {700200, 6600000}}}}, "3 points"},
	{"empty quad", Tile{EPSG: 2154, Quad: orb.Polygon{}}, "0 rings"},
	{"quad with a hole", Tile{EPSG: 2154, Quad: orb.Polygon{BoxPolygon(Box{700000, 6600000, 700200, 6600200})[0], BoxPolygon(Box{700050, 6600050, 700100, 6600100})[0]}}, "2 rings"},
	{"unknown EPSG", Tile{EPSG: 999999, Box: Box{700000, 6600000, 700200, 6600200}}, "EPSG:999999"},
}

func TestCheck(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	good := []struct {
		name string
		tile Tile
	}{
		{"Lambert-93", l93(700000, 6600000)},
		{"Lambert-93 Corsica", l93(1200000, 6100000)},
		{"CC46", Tile{EPSG: 3946, Box: Box{1700000, 5200000, 1700200, 5200200}}},
		// 0.5° beyond the zone's northern bound (47°N): near the edge.
		{"CC46 near its zone's edge", Tile{EPSG: 3946, Box: Box{1700000, 5366000, 1700200, 5366200}}},
		{"CC50", Tile{EPSG: 3950, Box: Box{1650000, 9200000, 1650200, 9200200}}},
		{"WGS84", Tile{EPSG: 4326, Box: Box{2.35, 48.85, 2.3525, 48.8525}}},
		{"rotated", rotated(700000, 6600200, 0.05)},
		{"UTM 60N west of the antimeridian", Tile{EPSG: 32660, Box: Box{800000, 1106000, 800200, 1106200}}},
	}
	for _, tt := range good {
		if err := ps.Check(tt.tile); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for _, tt := range hostile {
		err := ps.Check(tt.tile)
		if !errors.Is(err, ErrMisplaced) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want ErrMisplaced saying %q", tt.name, err, tt.want)
		}
		if _, terr := ps.TilePolygon(tt.tile, Options{}); !errors.Is(terr, ErrMisplaced) {
			t.Errorf("%s: TilePolygon gave %v, want ErrMisplaced", tt.name, terr)
		}
	}
}

// TestPlaceRejectsHostile: hostile tiles among good ones are left out and
// named, the good ones make a valid, finite, rounded outline.
func TestPlaceRejectsHostile(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	var tiles []Tile
	var bad []int
	for i, h := range hostile {
		tiles = append(tiles, l93(700000+float64(i)*200, 6600000))
		bad = append(bad, len(tiles))
		tiles = append(tiles, h.tile)
	}
	res := ps.Place(tiles, Options{})
	if len(res.Rejected) != len(bad) {
		t.Fatalf("%d rejected, want %d: %v", len(res.Rejected), len(bad), res.Rejected)
	}
	for k, r := range res.Rejected {
		if r.Index != bad[k] || !errors.Is(r.Err, ErrMisplaced) {
			t.Errorf("rejected %d (%v), want %d with ErrMisplaced", r.Index, r.Err, bad[k])
		}
	}
	// The good tiles form one 200 m strip.
	if len(res.WGS84) != 1 || len(res.WGS84[0]) != 1 {
		t.Errorf("want one polygon without hole, got %d polygons", len(res.WGS84))
	}
	if want := float64(len(hostile)) * 40000; math.Abs(res.Area-want) > 1e-6*want {
		t.Errorf("area %v m², want %v", res.Area, want)
	}
	checkOutput(t, res.WGS84)
}

// TestPlaceThinnerThanTolerance: a tile that passes Check but that the
// exact union would snap away is rejected, not silently lost.
func TestPlaceThinnerThanTolerance(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	thin := Tile{EPSG: 2154, Box: Box{700000, 6600000, 700000.5, 6600200}}
	if err := ps.Check(thin); err != nil {
		t.Fatalf("Check: %v", err)
	}
	res := ps.Place([]Tile{l93(700000, 6600000), thin}, Options{Tolerance: 1})
	if len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || !errors.Is(res.Rejected[0].Err, ErrMisplaced) {
		t.Errorf("rejected %v, want tile 1", res.Rejected)
	}
	checkOutput(t, res.WGS84)
}

// TestPlaceAntimeridianAndOtherCRS: a tile across the antimeridian among
// 818 good tiles of two other CRSs used to make the GEOS merge throw and
// the whole delivery fail.
func TestPlaceAntimeridianAndOtherCRS(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	var tiles []Tile
	for i := range 800 {
		tiles = append(tiles, l93(700000+float64(i%40)*200, 6600000+float64(i/40)*200))
	}
	for i := range 18 {
		tiles = append(tiles, Tile{EPSG: 3946, Box: Box{1700000 + float64(i)*200, 5200000, 1700200 + float64(i)*200, 5200200}})
	}
	tiles = append(tiles,
		Tile{EPSG: 4326, Box: Box{179.999, -16.001, 180.001, -15.999}},
		Tile{EPSG: 32660, Box: Box{828900, 1106000, 829100, 1106200}})
	res := ps.Place(tiles, Options{})
	if len(res.Rejected) != 2 || res.Rejected[0].Index != 818 || res.Rejected[1].Index != 819 {
		t.Fatalf("rejected %v, want tiles 818 and 819", res.Rejected)
	}
	if len(res.WGS84) != 2 {
		t.Errorf("want the two CRSs' blocks, got %d polygons", len(res.WGS84))
	}
	if want := 818 * 40000.0; math.Abs(res.Area-want) > 1e-6*want {
		t.Errorf("area %v m², want %v", res.Area, want)
	}
	checkOutput(t, res.WGS84)
}

// TestPlaceAdjacentRotated: rotated neighbours, whose shared corners come
// from separate origins with float noise, merge into one valid polygon.
func TestPlaceAdjacentRotated(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	const angle = 0.03
	c, s := math.Cos(angle)*200, math.Sin(angle)*200
	var tiles []Tile
	for i := range 3 {
		for j := range 2 {
			// Origins rounded to the millimetre, as a world file writes them.
			x := math.Round((700000+float64(i)*c+float64(j)*s)*1000) / 1000
			y := math.Round((6600200+float64(i)*s-float64(j)*c)*1000) / 1000
			tiles = append(tiles, rotated(x, y, angle))
		}
	}
	res := ps.Place(tiles, Options{})
	if len(res.Rejected) != 0 {
		t.Fatalf("rejected %v", res.Rejected)
	}
	if len(res.WGS84) != 1 || len(res.WGS84[0]) != 1 {
		t.Fatalf("want one polygon without hole, got %d polygons, %d rings", len(res.WGS84), len(res.WGS84[0]))
	}
	if want := 6 * 40000.0; math.Abs(res.Area-want) > 1 {
		t.Errorf("area %v m², want %v", res.Area, want)
	}
	checkOutput(t, res.WGS84)
}

// TestPlaceRotatedAndBoxes: a rotated tile overlapping north-up ones joins
// their outline.
func TestPlaceRotatedAndBoxes(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	tiles := []Tile{l93(700000, 6600000), l93(700200, 6600000), rotated(700390, 6600200, 0.05)}
	res := ps.Place(tiles, Options{})
	if len(res.Rejected) != 0 || len(res.WGS84) != 1 {
		t.Fatalf("%d polygons, rejected %v; want one polygon", len(res.WGS84), res.Rejected)
	}
	checkOutput(t, res.WGS84)
}

// TestRepairBowtie: a self-intersecting ring that reaches the union (it
// cannot through Place, whose Check rejects it) is split into its two
// triangles.
func TestRepairBowtie(t *testing.T) {
	bow := orb.MultiPolygon{{{{0, 0}, {2, 2}, {2, 0}, {0, 2}, {0, 0}}}}
	if ok, err := Valid(bow); err != nil || ok {
		t.Fatalf("bowtie valid=%v (%v), want invalid", ok, err)
	}
	fixed, err := repair(bow)
	if err != nil {
		t.Fatal(err)
	}
	geosValid(t, fixed)
	if a := planar.Area(fixed); math.Abs(a-2) > 1e-9 {
		t.Errorf("repaired area %v, want 2", a)
	}
	u, err := unionAll(append(bow, orb.Polygon{{{2, 0}, {3, 0}, {3, 1}, {2, 1}, {2, 0}}}))
	if err != nil {
		t.Fatal(err)
	}
	geosValid(t, u)
	if a := planar.Area(u); math.Abs(a-3) > 1e-9 {
		t.Errorf("union area %v, want 3", a)
	}
}

// TestDensifyBounded: rings from hostile headers densify into a bounded
// number of points, without panicking.
func TestDensifyBounded(t *testing.T) {
	rings := map[string]orb.Ring{
		"2^32 px sides": BoxPolygon(Box{700000, 6600000, 700000 + pow32*0.2, 6600000 + pow32*0.2})[0],
		"1e308 origin":  BoxPolygon(Box{1e308, 1e308, 1e308 + 1e300, 1e308 + 1e300})[0],
		"±1e308":        BoxPolygon(Box{-1e308, -1e308, 1e308, 1e308})[0],
		"NaN":           BoxPolygon(Box{math.NaN(), 0, 1, 1})[0],
		"Inf":           BoxPolygon(Box{0, 0, math.Inf(1), 1})[0],
		"empty":         {},
		"one point":     {{1, 1}},
	}
	for name, r := range rings {
		for _, seg := range []float64{DefaultMaxSegment, 1e-300, math.NaN(), math.Inf(1), -1} {
			d := densify(r, seg)
			if len(d) > MaxDensified+17*len(r) {
				t.Errorf("%s, max segment %v: %d points", name, seg, len(d))
			}
			if len(r) > 0 && (d[0] != r[0] && !math.IsNaN(r[0][0]) || len(d) < len(r)) {
				t.Errorf("%s, max segment %v: lost the ring's points", name, seg)
			}
		}
	}
	// The cap still spreads points evenly along a huge ring.
	d := densify(rings["2^32 px sides"], DefaultMaxSegment)
	if len(d) < MaxDensified {
		t.Errorf("2^32 px ring densified to only %d points", len(d))
	}
}

// TestPolygonHostile: reprojecting degenerate or non-finite rings returns
// an error or nothing, never a panic or a non-finite coordinate.
func TestPolygonHostile(t *testing.T) {
	p, err := NewProjector(2154)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, poly := range []orb.Polygon{
		{{}},
		{{{700000, 6600000}}},
		BoxPolygon(Box{1e308, 1e308, 1e308 + 1e300, 1e308 + 1e300}),
		BoxPolygon(Box{math.NaN(), 6600000, 700200, 6600200}),
		BoxPolygon(Box{700000, 6600000, math.Inf(1), 6600200}),
	} {
		out, err := p.Polygon(poly, DefaultMaxSegment)
		if err == nil && !allFinite(orb.MultiPolygon{out}) {
			t.Errorf("%v: non-finite output %v", poly, out)
		}
	}
}

// checkOutput: valid for GEOS, finite, rounded, RFC 7946 oriented.
func checkOutput(t *testing.T, mp orb.MultiPolygon) {
	t.Helper()
	if len(mp) == 0 {
		t.Fatal("empty outline")
	}
	if !allFinite(mp) {
		t.Fatal("non-finite coordinate")
	}
	geosValid(t, mp)
	checkRFC7946(t, mp)
}

// TestFinishRepairsRounding: two polygons a fraction of 1e-7° apart are
// valid, but rounded to Decimals they share an edge, which a MultiPolygon
// may not; finish hands back a valid, rounded geometry.
func TestFinishRepairsRounding(t *testing.T) {
	mp := orb.MultiPolygon{
		{{{3, 46}, {3.00100002, 46}, {3.00100002, 46.001}, {3, 46.001}, {3, 46}}},
		{{{3.00100004, 46}, {3.002, 46}, {3.002, 46.001}, {3.00100004, 46.001}, {3.00100004, 46}}},
	}
	geosValid(t, mp)
	if ok, err := Valid(rounded(mp)); err != nil || ok {
		t.Fatalf("rounded input valid=%v (%v): the test needs it invalid", ok, err)
	}
	out := finish(mp)
	checkOutput(t, out)
	if len(out) != 1 {
		t.Errorf("want the two halves as one polygon, got %d", len(out))
	}
}

func TestAreaOfUseContains(t *testing.T) {
	france := areaOfUse{West: -9.86, South: 41.15, East: 10.38, North: 51.56}
	pacific := areaOfUse{West: 170, South: -20, East: -170, North: 0} // across the antimeridian
	world := areaOfUse{West: -180, South: -90, East: 180, North: 90}
	for _, tt := range []struct {
		a    areaOfUse
		pt   orb.Point
		want bool
	}{
		{france, orb.Point{2.35, 48.85}, true},
		{france, orb.Point{11.3, 52.5}, true}, // within the margin
		{france, orb.Point{11.4, 48}, false},
		{france, orb.Point{3, 40.1}, false},
		{france, orb.Point{-190, 48}, false},
		{pacific, orb.Point{175, -10}, true},
		{pacific, orb.Point{-175, -10}, true},
		{pacific, orb.Point{180, -10}, true},
		{pacific, orb.Point{169.5, -10}, true},
		{pacific, orb.Point{168.5, -10}, false},
		{pacific, orb.Point{-169.5, -10}, true},
		{pacific, orb.Point{-168.5, -10}, false},
		{pacific, orb.Point{0, -10}, false},
		{world, orb.Point{-180, 90}, true},
		{world, orb.Point{0, 91.5}, false},
	} {
		if got := tt.a.contains(tt.pt, AreaMargin); got != tt.want {
			t.Errorf("%+v contains %v: %v, want %v", tt.a, tt.pt, got, tt.want)
		}
	}
}
