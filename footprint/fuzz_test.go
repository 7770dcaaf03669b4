package footprint

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// FuzzUnion checks the union against a brute-force oracle (the occupied
// cells of a random grid) on random gaps, duplicates and jitter under the
// tolerance: same area, same answer at a sampled point of every cell, valid
// for GEOS. Seeds are in testdata/fuzz/FuzzUnion.
func FuzzUnion(f *testing.F) {
	f.Add(uint64(1), uint8(5), uint8(4), uint8(128), uint8(30), uint8(8))
	f.Add(uint64(2), uint8(1), uint8(1), uint8(255), uint8(0), uint8(0))
	f.Add(uint64(3), uint8(16), uint8(16), uint8(128), uint8(100), uint8(10))
	f.Fuzz(func(t *testing.T, seed uint64, w, h, fill, dup, jitter uint8) {
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
		mp := Union(boxes, DefaultTolerance)

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
