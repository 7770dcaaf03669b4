package footprint

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// FuzzUnion checks the union against a brute-force oracle (the occupied
// cells of a random grid) on random gaps, duplicates and jitter under the
// tolerance: same area, same answer at a sampled point of every cell, valid
// for GEOS, and the frozen Union's polygons bit for bit. Seeds are in
// testdata/fuzz/FuzzUnion.
func FuzzUnion(f *testing.F) {
	f.Add(uint64(1), uint8(5), uint8(4), uint8(128), uint8(30), uint8(8))
	f.Add(uint64(2), uint8(1), uint8(1), uint8(255), uint8(0), uint8(0))
	f.Add(uint64(3), uint8(16), uint8(16), uint8(128), uint8(100), uint8(10))
	f.Fuzz(func(t *testing.T, seed uint64, w, h, fill, dup, jitter uint8) {
		boxes, occ, cols, r := fuzzUnionGrid(seed, w, h, fill, dup, jitter)
		const size = 200.0
		mp := Union(boxes, DefaultTolerance)
		if d := sameMultiPolygon(mp, oldUnion(boxes, DefaultTolerance)); d != "" {
			t.Fatalf("differs from the frozen Union: %s", d)
		}

		cells := 0
		for i, o := range occ {
			if o {
				cells++
			}
			p := orb.Point{float64(i%cols)*size + 1 + r.Float64()*(size-2), float64(i/cols)*size + 1 + r.Float64()*(size-2)}
			if got := planar.MultiPolygonContains(mp, p); got != o {
				t.Fatalf("point %v: inside=%v, oracle says %v", p, got, o)
			}
		}
		if a, want := planar.Area(mp), float64(cells)*size*size; math.Abs(a-want) > 1e-6*want+1e-9 {
			t.Fatalf("area %v, oracle %v", a, want)
		}
		checkShape(t, mp)
		if len(mp) > 0 {
			geosValid(t, mp)
		}
	})
}

// fuzzUnionGrid is FuzzUnion's box set: cols columns of 200 m cells, occ
// saying which are covered, and the generator, for the rest of the test.
func fuzzUnionGrid(seed uint64, w, h, fill, dup, jitter uint8) ([]Box, []bool, int, *rand.Rand) {
	cols, rows := 1+int(w%24), 1+int(h%24)
	r := rand.New(rand.NewPCG(seed, uint64(cols)<<8|uint64(rows)))
	const size = 200.0
	// Jitter stays under half the tolerance so that edges snap together.
	amp := float64(jitter%11) / 10 * DefaultTolerance / 2
	jit := func() float64 { return (r.Float64()*2 - 1) * amp }
	occ := make([]bool, cols*rows)
	var boxes []Box
	for i := range occ {
		if r.IntN(256) >= int(fill) {
			continue
		}
		occ[i] = true
		x, y := float64(i%cols)*size, float64(i/cols)*size
		copies := 1
		if r.IntN(256) < int(dup) {
			copies = 2
		}
		for range copies {
			boxes = append(boxes, Box{x + jit(), y + jit(), x + size + jit(), y + size + jit()})
		}
	}
	r.Shuffle(len(boxes), func(i, j int) { boxes[i], boxes[j] = boxes[j], boxes[i] })
	return boxes, occ, cols, r
}

// fuzzCRSs are the CRSs of FuzzOutline's tiles, with the origin of a block
// of tiles well inside each one's area of use, and the tile side in CRS
// units.
var fuzzCRSs = []struct {
	code       int
	x, y, side float64
}{
	{2154, 700000, 6600000, 200},
	{3942, 1700000, 1200000, 200},
	{3943, 1700000, 2200000, 200},
	{3944, 1700000, 3200000, 200},
	{3945, 1700000, 4200000, 200},
	{3946, 1700000, 5200000, 200},
	{3947, 1700000, 6200000, 200},
	{3948, 1700000, 7200000, 200},
	{3949, 1700000, 8200000, 200},
	{3950, 1700000, 9200000, 200},
	{4326, 3, 46.5, 0.0025},
}

// FuzzOutline places random deliveries mixing good tiles (north-up and
// rotated, touching, overlapping, in several CRSs, with sub-tolerance
// jitter) and hostile ones (NaN, Inf, huge, tiny, bowtie, wrong CRS,
// antimeridian, random bits). Place must not panic, must reject every
// hostile tile and no good one, must give a valid, finite, rounded
// outline containing every good tile's centre, and must give the frozen
// Place's result bit for bit. Seeds and findings are in
// testdata/fuzz/FuzzOutline.
func FuzzOutline(f *testing.F) {
	f.Add(uint64(1), uint8(20), uint8(0), uint8(1), uint8(0))
	f.Add(uint64(2), uint8(30), uint8(60), uint8(255), uint8(40))
	f.Add(uint64(3), uint8(12), uint8(200), uint8(3), uint8(128))
	f.Add(uint64(4), uint8(40), uint8(30), uint8(0x81), uint8(255))
	var ps Projectors
	f.Cleanup(ps.Close)
	f.Fuzz(func(t *testing.T, seed uint64, n, hostileRate, crsMask, rotateRate uint8) {
		tiles, kinds := fuzzDelivery(seed, n, hostileRate, crsMask, rotateRate)

		res := ps.Place(tiles, Options{})
		if d := sameResult(res, ps.oldPlace(tiles, Options{})); d != "" {
			t.Fatalf("differs from the frozen Place: %s", d)
		}

		rejected := map[int]bool{}
		last := -1
		for _, rj := range res.Rejected {
			if rj.Index <= last || rj.Index >= len(tiles) || !errors.Is(rj.Err, ErrMisplaced) {
				t.Fatalf("bad rejection %d (%v) after %d", rj.Index, rj.Err, last)
			}
			last = rj.Index
			rejected[rj.Index] = true
		}
		goods := 0
		for i, k := range kinds {
			switch {
			case k == 0 && rejected[i]:
				t.Fatalf("good tile %d %+v rejected: %v", i, tiles[i], res.Rejected)
			case k == 1 && !rejected[i]:
				t.Fatalf("hostile tile %d %+v not rejected", i, tiles[i])
			case k == 0:
				goods++
			}
		}
		if !allFinite(res.WGS84) || math.IsNaN(res.Area) || math.IsInf(res.Area, 0) {
			t.Fatalf("non-finite output: area %v", res.Area)
		}
		if goods == 0 {
			return
		}
		checkOutput(t, res.WGS84)
		for i, k := range kinds {
			if k != 0 {
				continue
			}
			poly, err := ps.TilePolygon(tiles[i], Options{})
			if err != nil {
				t.Fatalf("good tile %d: %v", i, err)
			}
			if c := poly.Bound().Center(); !planar.MultiPolygonContains(res.WGS84, c) {
				t.Fatalf("good tile %d's centre %v outside the outline", i, c)
			}
		}
	})
}

// fuzzDelivery is FuzzOutline's delivery: its tiles and their kinds (0
// good, 1 hostile, 2 random bits).
func fuzzDelivery(seed uint64, n, hostileRate, crsMask, rotateRate uint8) ([]Tile, []int) {
	r := rand.New(rand.NewPCG(seed, uint64(n)<<16|uint64(hostileRate)<<8|uint64(crsMask)))
	var crss []int
	for i := range fuzzCRSs {
		if crsMask&(1<<(i%8)) != 0 {
			crss = append(crss, i)
		}
	}
	if len(crss) == 0 {
		crss = []int{0}
	}
	count := 1 + int(n%48)
	tiles := make([]Tile, 0, count)
	kinds := make([]int, 0, count) // 0 good, 1 hostile, 2 random bits
	for range count {
		c := fuzzCRSs[crss[r.IntN(len(crss))]]
		jit := func() float64 { return (r.Float64()*2 - 1) * c.side * 1e-5 }
		x := c.x + float64(r.IntN(6))*c.side + jit()
		y := c.y + float64(r.IntN(6))*c.side + jit()
		good := Tile{EPSG: c.code, Box: Box{x, y, x + c.side + jit(), y + c.side + jit()}}
		if r.IntN(256) < int(rotateRate) {
			good = fuzzRotated(c.code, x, y, c.side, (r.Float64()*2-1)*0.2, r.IntN(2) == 0)
		}
		if r.IntN(256) >= int(hostileRate) {
			tiles, kinds = append(tiles, good), append(kinds, 0)
			continue
		}
		h, kind := fuzzHostile(r, good, c.side)
		tiles, kinds = append(tiles, h), append(kinds, kind)
	}
	return tiles, kinds
}

// fuzzRotated is a side x side tile turned by angle radians about its
// corner x, y; mirrored, its ring runs the other way.
func fuzzRotated(code int, x, y, side, angle float64, mirrored bool) Tile {
	c, s := math.Cos(angle)*side, math.Sin(angle)*side
	ring := orb.Ring{{x, y}, {x + c, y + s}, {x + c - s, y + s + c}, {x - s, y + c}, {x, y}}
	if mirrored {
		ring.Reverse()
	}
	return Tile{EPSG: code, Quad: orb.Polygon{ring}}
}

// fuzzHostile spoils a good tile; kind is 1 when Place must reject the
// result, 2 when either answer will do.
func fuzzHostile(r *rand.Rand, good Tile, side float64) (Tile, int) {
	b := good.Box
	if good.Quad != nil {
		b = Box{good.Quad[0][0][0], good.Quad[0][0][1], good.Quad[0][0][0] + side, good.Quad[0][0][1] + side}
	}
	huge := math.Pow(2, 32) * side / 1000
	switch r.IntN(12) {
	case 0:
		b.MinX = math.NaN()
	case 1:
		b.MaxY = math.Inf(1 - 2*r.IntN(2))
	case 2:
		b = Box{1e308, 1e308, 1e308 + side, 1e308 + side}
	case 3:
		b.MaxX, b.MaxY = b.MinX+side*1e-300, b.MinY+side*1e-300
	case 4:
		b.MaxX, b.MaxY = b.MinX+huge, b.MinY+huge
	case 5:
		return Tile{EPSG: good.EPSG, Quad: orb.Polygon{{{b.MinX, b.MinY}, {b.MaxX, b.MaxY}, {b.MaxX, b.MinY}, {b.MinX, b.MaxY}, {b.MinX, b.MinY}}}}, 1
	case 6:
		return Tile{EPSG: 4326, Box: Box{770549, 6600000, 770749, 6600200}}, 1
	case 7:
		return Tile{EPSG: 4326, Box: Box{179.999, -16.001, 180.001, -15.999}}, 1
	case 8:
		return Tile{EPSG: 32660, Box: Box{828900, 1106000, 829100, 1106200}}, 1
	case 9:
		// A CC zone's coordinates, 2000 km south, under the next zone's code.
		if good.EPSG >= 3942 && good.EPSG < 3950 {
			return Tile{EPSG: good.EPSG + 1, Box: Box{b.MinX, b.MinY - 2_000_000, b.MaxX, b.MaxY - 2_000_000}}, 1
		}
		return Tile{EPSG: 2154, Box: Box{1700000, 5200000, 1700200, 5200200}}, 1
	case 10:
		q := good.Quad
		if q == nil {
			q = BoxPolygon(b)
		}
		q = orb.Polygon{slices.Clone(q[0])}
		q[0][1][0] = math.Float64frombits(r.Uint64())
		return Tile{EPSG: good.EPSG, Quad: q}, 2
	default:
		return Tile{EPSG: good.EPSG, Box: Box{
			math.Float64frombits(r.Uint64()), math.Float64frombits(r.Uint64()),
			math.Float64frombits(r.Uint64()), math.Float64frombits(r.Uint64()),
		}}, 2
	}
	return Tile{EPSG: good.EPSG, Box: b}, 1
}

// FuzzDensify: any four corners and segment length, finite or not, give a
// bounded ring and no panic, and reprojecting it gives finite coordinates
// or an error.
func FuzzDensify(f *testing.F) {
	f.Add(700000.0, 6600000.0, 700200.0, 6600200.0, 0.0, 0.0, 50.0)
	f.Add(1e308, 1e308, 1e308, -1e308, -1e308, 1e308, 50.0)
	f.Add(700000.0, 6600000.0, 700000+math.Pow(2, 32)*0.2, 6600200.0, 1.0, -1.0, 1e-300)
	f.Add(math.NaN(), 0.0, math.Inf(1), 0.0, math.Inf(-1), 0.0, math.NaN())
	p, err := NewProjector(2154)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.Close)
	f.Fuzz(func(t *testing.T, x0, y0, x1, y1, dx, dy, maxSeg float64) {
		r := orb.Ring{{x0, y0}, {x1, y1}, {x1 + dx, y1 + dy}, {x0 + dx, y0 + dy}, {x0, y0}}
		d := densify(r, maxSeg)
		if len(d) < len(r) || len(d) > MaxDensified+17*len(r) {
			t.Fatalf("%d points", len(d))
		}
		out, err := p.Polygon(orb.Polygon{r}, maxSeg)
		if err == nil && !allFinite(orb.MultiPolygon{out}) {
			t.Fatalf("non-finite output %v", out)
		}
	})
}
