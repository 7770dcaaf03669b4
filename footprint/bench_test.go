package footprint

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/openpcrs/pcrs-indexer/footprint/internal/geos"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/planar"
)

// benchGrid is a square grid of 200 m tiles with 5% missing at random.
func benchGrid(n int, seed uint64) []Box {
	side := int(math.Ceil(math.Sqrt(float64(n) / 0.95)))
	r := rand.New(rand.NewPCG(seed, 42))
	boxes := make([]Box, 0, n)
	for i := 0; len(boxes) < n && i < side*side; i++ {
		if r.Float64() < 0.05 {
			continue
		}
		x, y := float64(i%side)*200+600000, float64(i/side)*200+6200000
		boxes = append(boxes, Box{x, y, x + 200, y + 200})
	}
	return boxes
}

func BenchmarkUnion(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		boxes := benchGrid(n, 1)
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if mp := Union(boxes, DefaultTolerance); len(mp) == 0 {
					b.Fatal("empty union")
				}
			}
		})
	}
}

// BenchmarkUnionGEOS does the same union through GEOS's cascaded union, as
// the scanner we replace could at best.
func BenchmarkUnionGEOS(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		boxes := benchGrid(n, 1)
		mp := make(orb.MultiPolygon, len(boxes))
		for i, bx := range boxes {
			mp[i] = BoxPolygon(bx)
		}
		raw, err := wkb.Marshal(mp)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := geos.UnionCascaded(raw)
				if err != nil || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestUnionMatchesGEOS: same area as GEOS's cascaded union on a benchmark
// grid, so the benchmarks compare equal work.
func TestUnionMatchesGEOS(t *testing.T) {
	boxes := benchGrid(2000, 3)
	mp := make(orb.MultiPolygon, len(boxes))
	for i, bx := range boxes {
		mp[i] = BoxPolygon(bx)
	}
	raw, err := wkb.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	out, err := geos.UnionCascaded(raw)
	if err != nil {
		t.Fatal(err)
	}
	g, err := wkb.Unmarshal(out)
	if err != nil {
		t.Fatal(err)
	}
	ours := Union(boxes, DefaultTolerance)
	if a, b := planar.Area(ours), planar.Area(g); math.Abs(a-b) > 1e-3*a {
		t.Errorf("area %v, GEOS %v", a, b)
	}
	var holes int
	for _, p := range ours {
		holes += len(p) - 1
	}
	var geosHoles int
	switch gg := g.(type) {
	case orb.Polygon:
		geosHoles = len(gg) - 1
	case orb.MultiPolygon:
		for _, p := range gg {
			geosHoles += len(p) - 1
		}
	}
	if holes != geosHoles {
		t.Errorf("%d holes, GEOS %d", holes, geosHoles)
	}
}

// BenchmarkPlace is the whole livrable footprint: checking every tile
// (four corners reprojected each), the exact union, reprojection and the
// final validity check.
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		boxes := benchGrid(n, 1)
		tiles := make([]Tile, len(boxes))
		for i, bx := range boxes {
			tiles[i] = Tile{EPSG: 2154, Box: bx}
		}
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			var ps Projectors
			defer ps.Close()
			b.ReportAllocs()
			for b.Loop() {
				if r := ps.Place(tiles, Options{}); len(r.WGS84) == 0 || len(r.Rejected) != 0 {
					b.Fatal("bad footprint")
				}
			}
		})
	}
}
