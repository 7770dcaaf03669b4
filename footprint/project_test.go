package footprint

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

// TestDensifyKeepsShape: a 20 km outline edge, published after 50 m
// densification, stays within 5 cm of the true projected boundary; without
// densification it would not.
func TestDensifyKeepsShape(t *testing.T) {
	p, err := NewProjector(2154)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	box := Box{1_000_000, 6_800_000, 1_020_000, 6_800_200}
	truth, err := p.Polygon(orb.Polygon{densify(BoxPolygon(box)[0], 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		maxSeg  float64
		atMostM float64
		atLeast float64
	}{
		{DefaultMaxSegment, 0.05, 0},
		{1e9, math.Inf(1), 0.05}, // no densification: the chord strays
	} {
		pub, err := p.Polygon(BoxPolygon(box), tt.maxSeg)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for _, pt := range truth[0] {
			worst = math.Max(worst, distanceM(pub[0], pt))
		}
		if worst > tt.atMostM || worst < tt.atLeast {
			t.Errorf("max segment %v m: outline strays %.4f m from the true boundary, want within [%v, %v]", tt.maxSeg, worst, tt.atLeast, tt.atMostM)
		}
		t.Logf("max segment %v m: worst deviation %.4f m", tt.maxSeg, worst)
	}
}

// distanceM is the distance in metres from pt to the ring, on a local
// equirectangular approximation (exact enough at centimetres).
func distanceM(r orb.Ring, pt orb.Point) float64 {
	const mPerDeg = 111_320.0
	k := math.Cos(pt[1] * math.Pi / 180)
	best := math.Inf(1)
	for i := 0; i+1 < len(r); i++ {
		ax, ay := (r[i][0]-pt[0])*k*mPerDeg, (r[i][1]-pt[1])*mPerDeg
		bx, by := (r[i+1][0]-pt[0])*k*mPerDeg, (r[i+1][1]-pt[1])*mPerDeg
		dx, dy := bx-ax, by-ay
		f := 0.0
		if l := dx*dx + dy*dy; l > 0 {
			f = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l))
		}
		best = math.Min(best, math.Hypot(ax+f*dx, ay+f*dy))
	}
	return best
}

func TestRoundingKeepsRingsValid(t *testing.T) {
	// Two points closer than 1e-7° collapse; the ring must stay closed and
	// free of duplicates.
	r := roundRing(orb.Ring{{3, 46}, {3.00000001, 46}, {3.001, 46}, {3.001, 46.001}, {3, 46.001}, {3, 46}})
	if len(r) != 5 || r[0] != r[len(r)-1] {
		t.Errorf("rounded ring %v", r)
	}
	for i := 1; i < len(r); i++ {
		if r[i] == r[i-1] {
			t.Errorf("duplicate point %v", r[i])
		}
	}
}
