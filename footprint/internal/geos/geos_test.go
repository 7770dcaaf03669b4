package geos

import (
	"errors"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/planar"
)

func mustWKB(t *testing.T, g orb.Geometry) []byte {
	t.Helper()
	raw, err := wkb.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func area(t *testing.T, raw []byte) float64 {
	t.Helper()
	g, err := wkb.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return planar.Area(g)
}

func TestOperations(t *testing.T) {
	bow := mustWKB(t, orb.Polygon{{{0, 0}, {2, 2}, {2, 0}, {0, 2}, {0, 0}}})
	if ok, err := Valid(bow); err != nil || ok {
		t.Errorf("bowtie valid=%v (%v)", ok, err)
	}
	fixed, err := MakeValid(bow)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Valid(fixed); err != nil || !ok {
		t.Errorf("repaired bowtie valid=%v (%v)", ok, err)
	}
	if a := area(t, fixed); a != 2 {
		t.Errorf("repaired bowtie area %v, want 2", a)
	}
	a := mustWKB(t, orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}})
	b := mustWKB(t, orb.Polygon{{{1, 0}, {2, 0}, {2, 1}, {1, 1}, {1, 0}}})
	u, err := Union(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := wkb.Unmarshal(u); g.GeoJSONType() != "Polygon" || area(t, u) != 2 {
		t.Errorf("union of neighbours: %v of area %v, want one polygon of area 2", g.GeoJSONType(), area(t, u))
	}
	overlapping := mustWKB(t, orb.MultiPolygon{{{{0, 0}, {2, 0}, {2, 2}, {0, 2}, {0, 0}}}, {{{1, 1}, {3, 1}, {3, 3}, {1, 3}, {1, 1}}}})
	if u, err = UnionCascaded(overlapping); err != nil || area(t, u) != 7 {
		t.Errorf("cascaded union: %v", err)
	}
	if u, err = Buffer0(bow); err != nil || area(t, u) <= 0 {
		t.Errorf("buffer 0: %v", err)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}} {
		if _, err := MakeValid(bad); !errors.Is(err, ErrGEOS) {
			t.Errorf("MakeValid(%v) = %v, want ErrGEOS", bad, err)
		}
		if _, err := Union(a, bad); !errors.Is(err, ErrGEOS) {
			t.Errorf("Union(a, %v) = %v, want ErrGEOS", bad, err)
		}
		if _, err := Valid(bad); !errors.Is(err, ErrGEOS) {
			t.Errorf("Valid(%v) = %v, want ErrGEOS", bad, err)
		}
	}
}
