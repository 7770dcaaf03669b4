package footprint

import (
	"fmt"
	"math"
	"math/rand/v2"
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
