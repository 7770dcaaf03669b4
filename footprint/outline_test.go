package footprint

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

func TestOutlineWGS84(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	var tiles []Tile
	// 3 x 3 tiles of 200 m with a hole in the middle, and an island.
	for x := range 3 {
		for y := range 3 {
			if x == 1 && y == 1 {
				continue
			}
			tiles = append(tiles, Tile{EPSG: 2154, Box: Box{700000 + float64(x)*200, 6600000 + float64(y)*200, 700200 + float64(x)*200, 6600200 + float64(y)*200}})
		}
	}
	tiles = append(tiles, Tile{EPSG: 2154, Box: Box{702000, 6600000, 702200, 6600200}})
	mp, _, err := ps.Outline(tiles, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mp) != 2 || len(mp[0]) != 2 {
		t.Fatalf("want a polygon with a hole and an island, got %d polygons", len(mp))
	}
	checkRFC7946(t, mp)
	geosValid(t, mp)
	// Every tile, reprojected the same way, lies inside the outline.
	for _, tl := range tiles {
		poly, err := ps.TilePolygon(tl, Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := poly.Bound().Center()
		if !planar.MultiPolygonContains(mp, c) {
			t.Errorf("tile centre %v outside the outline", c)
		}
		for _, pt := range poly[0] {
			if !planar.MultiPolygonContains(mp, pt) && !onBoundary(mp, pt, 2e-7) {
				t.Errorf("tile corner %v outside the outline", pt)
			}
		}
	}
	// Lambert-93 origin (3°E, 46.5°N) maps near 700000, 6600000.
	if b := mp.Bound(); math.Abs(b.Min[0]-3) > 0.01 || math.Abs(b.Min[1]-46.5) > 0.01 {
		t.Errorf("outline bound %v not near 3°E 46.5°N", b)
	}
}

func TestOutlineTwoCRSs(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	// Two tiles of a livrable straddling a zone change: Lambert-93 and CC46.
	l93 := Tile{EPSG: 2154, Box: Box{700000, 6600000, 700200, 6600200}}
	tiles := []Tile{l93, {EPSG: 3946, Box: Box{1700200, 5200000, 1700400, 5200200}}}
	mp, _, err := ps.Outline(tiles, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mp) == 0 {
		t.Fatal("empty outline")
	}
	checkRFC7946(t, mp)
	geosValid(t, mp)
}

func TestRotatedTileFallsBack(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	quad := orb.Polygon{{{700200, 6600000}, {700400, 6600010}, {700390, 6600210}, {700190, 6600200}, {700200, 6600000}}}
	tiles := []Tile{{EPSG: 2154, Box: Box{700000, 6600000, 700200, 6600200}}, {EPSG: 2154, Quad: quad}}
	mp, _, err := ps.Outline(tiles, Options{})
	if err != nil {
		t.Fatal(err)
	}
	geosValid(t, mp)
	checkRFC7946(t, mp)
	if len(mp) != 1 {
		t.Errorf("overlapping rotated tile should merge into one polygon, got %d", len(mp))
	}
}

func checkRFC7946(t *testing.T, mp orb.MultiPolygon) {
	t.Helper()
	for _, p := range mp {
		for i, r := range p {
			want := orb.CCW
			if i > 0 {
				want = orb.CW
			}
			if r.Orientation() != want {
				t.Errorf("ring %d is %v, want %v", i, r.Orientation(), want)
			}
			for _, pt := range r {
				for _, v := range pt {
					if math.Abs(v*1e7-math.Round(v*1e7)) > 1e-6 {
						t.Fatalf("coordinate %v not rounded to 7 decimals", v)
					}
				}
			}
		}
	}
}

func onBoundary(mp orb.MultiPolygon, pt orb.Point, tol float64) bool {
	for _, p := range mp {
		for _, r := range p {
			for i := 0; i+1 < len(r); i++ {
				if planar.DistanceFromSegment(r[i], r[i+1], pt) <= tol {
					return true
				}
			}
		}
	}
	return false
}
