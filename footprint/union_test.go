package footprint

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkt"
	"github.com/paulmach/orb/planar"
)

// grid builds 1 x 1 boxes from a picture: '#' is a tile, row 0 on top.
func grid(rows ...string) []Box {
	var out []Box
	for r, row := range rows {
		y := float64(len(rows) - 1 - r)
		for c, ch := range row {
			if ch == '#' {
				out = append(out, Box{float64(c), y, float64(c + 1), y + 1})
			}
		}
	}
	return out
}

func geosValid(t *testing.T, mp orb.MultiPolygon) {
	t.Helper()
	if ok, err := Valid(mp); err != nil || !ok {
		t.Errorf("GEOS says invalid (%v): %s", err, wkt.MarshalString(mp))
	}
}

func checkShape(t *testing.T, mp orb.MultiPolygon) {
	t.Helper()
	for _, p := range mp {
		for i, r := range p {
			want := orb.CCW
			if i > 0 {
				want = orb.CW
			}
			if r.Orientation() != want {
				t.Errorf("ring %d oriented %v, want %v", i, r.Orientation(), want)
			}
			for j := 1; j+1 < len(r); j++ {
				a, b, c := r[j-1], r[j], r[j+1]
				if a == b {
					t.Errorf("duplicate point %v", b)
				}
				if (a[0] == b[0] && b[0] == c[0]) || (a[1] == b[1] && b[1] == c[1]) {
					t.Errorf("collinear vertex %v", b)
				}
			}
		}
	}
}

func TestUnionShapes(t *testing.T) {
	tests := []struct {
		name                   string
		boxes                  []Box
		polygons, holes, verts int
		area                   float64
	}{
		{"single tile", grid("#"), 1, 0, 5, 1},
		{"block", grid("##", "##"), 1, 0, 5, 4},
		{"hole", grid("###", "#.#", "###"), 1, 1, 10, 8},
		{"island in a hole", grid("#####", "#...#", "#.#.#", "#...#", "#####"), 2, 1, 15, 17},
		{"hole in a hole's island", grid("#######", "#.....#", "#.###.#", "#.#.#.#", "#.###.#", "#.....#", "#######"), 2, 2, 20, 32},
		{"corner touch", grid("#.", ".#"), 2, 0, 10, 2},
		{"checkerboard", grid("#.#", ".#.", "#.#"), 5, 0, 25, 5},
		{"hole touching shell at a corner", grid("##.", "#.#", "###"), 1, 1, 12, 7},
		{"notch and hole", grid("###.", "#.##", "####"), 1, 1, 12, 10},
		{"L shape", grid("#.", "##"), 1, 0, 7, 3},
		{"duplicates and overlaps", append(grid("##"), Box{0.5, 0, 1.5, 1}, Box{0, 0, 1, 1}), 1, 0, 5, 2},
		{"jittered grid", []Box{{0, 0, 200.004, 200}, {199.996, 0.003, 400, 200.002}}, 1, 0, 5, 80000},
		{"jitter across a rounding line", []Box{{0, 0, 100.0049, 100}, {100.0051, 0, 200, 100.003}}, 1, 0, 5, 20000},
		{"degenerate box", []Box{{0, 0, 0.001, 10}}, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := Union(tt.boxes, DefaultTolerance)
			holes, verts := 0, 0
			for _, p := range mp {
				holes += len(p) - 1
				for _, r := range p {
					verts += len(r)
				}
			}
			if len(mp) != tt.polygons || holes != tt.holes || verts != tt.verts {
				t.Errorf("%d polygons, %d holes, %d vertices; want %d, %d, %d\n%s", len(mp), holes, verts, tt.polygons, tt.holes, tt.verts, wkt.MarshalString(mp))
			}
			if a := planar.Area(mp); math.Abs(a-tt.area) > 1e-3 {
				t.Errorf("area %v, want %v", a, tt.area)
			}
			checkShape(t, mp)
			if len(mp) > 0 {
				geosValid(t, mp)
			}
		})
	}
}

// TestUnionOracle compares the union with a cell-by-cell oracle on random
// grids with gaps, duplicates, and jitter under the tolerance.
func TestUnionOracle(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			w, h := 2+r.IntN(12), 2+r.IntN(12)
			fill := 0.3 + 0.6*r.Float64()
			occ := make([][]bool, w)
			var boxes []Box
			jit := func() float64 { return (r.Float64() - 0.5) * 0.008 }
			for x := range w {
				occ[x] = make([]bool, h)
				for y := range h {
					if r.Float64() < fill {
						occ[x][y] = true
						n := 1 + r.IntN(2) // sometimes twice
						for range n {
							boxes = append(boxes, Box{float64(x)*200 + jit(), float64(y)*200 + jit(), float64(x+1)*200 + jit(), float64(y+1)*200 + jit()})
						}
					}
				}
			}
			r.Shuffle(len(boxes), func(i, j int) { boxes[i], boxes[j] = boxes[j], boxes[i] })
			mp := Union(boxes, DefaultTolerance)
			cells := 0
			for x := range w {
				for y := range h {
					if occ[x][y] {
						cells++
					}
					// Sample inside the cell, away from its edges.
					p := orb.Point{float64(x)*200 + 37 + r.Float64()*120, float64(y)*200 + 41 + r.Float64()*120}
					if got := planar.MultiPolygonContains(mp, p); got != occ[x][y] {
						t.Fatalf("point %v in cell %d,%d: inside=%v, want %v", p, x, y, got, occ[x][y])
					}
				}
			}
			if a, want := planar.Area(mp), float64(cells)*40000; math.Abs(a-want) > 1 {
				t.Errorf("area %v, want %v", a, want)
			}
			checkShape(t, mp)
			if len(mp) > 0 {
				geosValid(t, mp)
			}
		})
	}
}

// TestCountedClustersMatchSorted: clustering the distinct values and their
// counts gives the clusters of sorting every value, and gives up where it
// could not (both signs of zero, non-finite values or tolerance, too many
// distinct values); index agrees with a binary search on every value.
func TestCountedClustersMatchSorted(t *testing.T) {
	r := mix(3)
	negz := math.Copysign(0, -1)
	for k := range 300 {
		n := 1 + r.intn(3000)
		distinct := 1 + r.intn(1+[]int{5, 100, 5000}[k%3])
		pool := make([]float64, distinct)
		for i := range pool {
			pool[i] = float64(r.intn(1000))*[]float64{0.005, 0.01, 1, 200}[r.intn(4)] + float64(r.intn(3)-1)*1e-3
		}
		switch k % 10 {
		case 7:
			pool[0] = negz
		case 8:
			pool[0], pool[len(pool)-1] = negz, 0
		case 9:
			pool[0] = math.Inf(1 - 2*r.intn(2))
		}
		vals := make([]float64, 2*n)
		for i := range vals {
			vals[i] = pool[r.intn(len(pool))]
		}
		val := func(i int) (float64, float64) { return vals[2*i], vals[2*i+1] }
		tol := []float64{DefaultTolerance, 0.5, 1e-9, math.NaN()}[r.intn(4)]
		got, ok := countClusters(n, val, tol)
		want := newClusters(slices.Clone(vals), tol)
		var neg, pos, inf bool
		for _, v := range vals {
			neg = neg || v == 0 && math.Signbit(v)
			pos = pos || v == 0 && !math.Signbit(v)
			inf = inf || math.IsInf(v, 0)
		}
		if mustGiveUp := neg && pos || inf || math.IsNaN(tol); ok == mustGiveUp {
			t.Fatalf("set %d: counted=%v, want %v", k, ok, !mustGiveUp)
		}
		if !ok {
			continue
		}
		if !slices.Equal(bitsOf(got.starts), bitsOf(want.starts)) || !slices.Equal(bitsOf(got.reps), bitsOf(want.reps)) {
			t.Fatalf("set %d: clusters %v %v, want %v %v", k, got.starts, got.reps, want.starts, want.reps)
		}
		got.accelerate()
		for _, v := range vals {
			if i, j := got.index(v), want.index(v); i != j {
				t.Fatalf("set %d: index(%v) = %d, want %d", k, v, i, j)
			}
		}
	}
	// One distinct value too many gives up.
	many := func(i int) (float64, float64) { return float64(2 * i), float64(2*i + 1) }
	if _, ok := countClusters(maxDistinct/2, many, 0.1); !ok {
		t.Error("gave up at maxDistinct values")
	}
	if _, ok := countClusters(maxDistinct/2+1, many, 0.1); ok {
		t.Error("counted more than maxDistinct values")
	}
}

func bitsOf(v []float64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = math.Float64bits(x)
	}
	return out
}

// TestIndexSkewed: the lookup table stays exact when the starts crowd in a
// few buckets (one far outlier) or sit one ulp apart.
func TestIndexSkewed(t *testing.T) {
	var starts []float64
	for i := range 1000 {
		starts = append(starts, 600000+float64(i)*0.02)
	}
	starts = append(starts, 1e15)
	x := 1e9
	for range 100 {
		x = math.Nextafter(x, math.Inf(1))
		starts = append(starts, x)
	}
	slices.Sort(starts)
	c := clusters{starts: starts}
	c.accelerate()
	if c.first == nil {
		t.Fatal("no lookup table")
	}
	plain := clusters{starts: starts}
	for _, v := range append(slices.Clone(starts), 600000.01, 5e14, 1e300, -1e300, 0) {
		if i, j := c.index(v), plain.index(v); i != j {
			t.Errorf("index(%v) = %d, want %d", v, i, j)
		}
	}
}

// TestSlabRunsPaths: the bitmap and the merged intervals give the same
// runs.
func TestSlabRunsPaths(t *testing.T) {
	r := mix(5)
	for k := range 200 {
		boxes := randomBoxes(&r, 1+r.intn(300))
		box := func(i int) Box { return boxes[i] }
		var scratch []float64
		xs := newAxis(len(boxes), func(i int) (float64, float64) { return boxes[i].MinX, boxes[i].MaxX }, DefaultTolerance, &scratch)
		ys := newAxis(len(boxes), func(i int) (float64, float64) { return boxes[i].MinY, boxes[i].MaxY }, DefaultTolerance, &scratch)
		if xs.len() < 2 || ys.len() < 2 {
			continue
		}
		br, bs := bitmapRuns(len(boxes), box, &xs, &ys)
		mr, ms := mergedRuns(len(boxes), box, &xs, &ys)
		if !slices.Equal(br, mr) || !slices.Equal(bs, ms) {
			t.Fatalf("set %d: bitmap runs %v at %v, merged %v at %v", k, br, bs, mr, ms)
		}
	}
}

// TestBits: setBits and nextBit across word boundaries.
func TestBits(t *testing.T) {
	for _, tc := range [][2]int{{0, 1}, {0, 64}, {63, 65}, {5, 190}, {64, 128}, {127, 129}, {191, 192}} {
		row := make([]uint64, 3)
		setBits(row, tc[0], tc[1])
		if got := nextBit(row, 0, 0); got != tc[0] {
			t.Errorf("%v: first set bit %d", tc, got)
		}
		end := nextBit(row, tc[0], ^uint64(0))
		if end < 0 {
			end = 192
		}
		if end != tc[1] {
			t.Errorf("%v: first clear bit after %d", tc, end)
		}
		if got := nextBit(row, end, 0); got != -1 {
			t.Errorf("%v: set bit %d after the run", tc, got)
		}
	}
}

// TestMergeRuns: mergeRuns sorts any sequence in place, its companion
// alike.
func TestMergeRuns(t *testing.T) {
	r := mix(9)
	for range 500 {
		n := r.intn(60)
		ys, is := make([]int32, n), make([]int32, n)
		for i := range ys {
			ys[i], is[i] = int32(r.intn(20)), int32(i)
		}
		orig := slices.Clone(ys)
		mergeRuns(ys, is, nil, nil)
		if !slices.IsSorted(ys) {
			t.Fatalf("%v sorted to %v", orig, ys)
		}
		for k := range ys {
			if orig[is[k]] != ys[k] {
				t.Fatalf("%v: companion %v does not follow %v", orig, is, ys)
			}
		}
	}
}
