package footprint

import (
	"fmt"

	"github.com/openpcrs/pcrs-indexer/footprint/internal/geos"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
)

// GEOS is the fallback, not the main path: it unions rotated tiles and the
// per-CRS outlines in WGS84, and repairs what rounding or a hostile tile
// made invalid.

// unionAll is the union of possibly overlapping polygons; an invalid input
// is repaired first.
func unionAll(mp orb.MultiPolygon) (orb.MultiPolygon, error) {
	if len(mp) == 0 {
		return nil, nil
	}
	raw, err := wkb.Marshal(mp)
	if err != nil {
		return nil, err
	}
	out, err := geos.UnionCascaded(raw)
	if err != nil {
		fixed, ferr := repair(mp)
		if ferr != nil {
			return nil, err
		}
		if raw, err = wkb.Marshal(fixed); err != nil {
			return nil, err
		}
		if out, err = geos.UnionCascaded(raw); err != nil {
			return nil, err
		}
	}
	return polygons(out)
}

// union2 is the union of two multipolygons, each repaired when GEOS
// refuses them as they are.
func union2(a, b orb.MultiPolygon) (orb.MultiPolygon, error) {
	if len(a) == 0 {
		return b, nil
	}
	if len(b) == 0 {
		return a, nil
	}
	out, err := geosUnion(a, b)
	if err == nil {
		return out, nil
	}
	ra, aerr := repair(a)
	rb, berr := repair(b)
	if aerr != nil || berr != nil {
		return nil, err
	}
	return geosUnion(ra, rb)
}

func geosUnion(a, b orb.MultiPolygon) (orb.MultiPolygon, error) {
	ra, err := wkb.Marshal(a)
	if err != nil {
		return nil, err
	}
	rb, err := wkb.Marshal(b)
	if err != nil {
		return nil, err
	}
	out, err := geos.Union(ra, rb)
	if err != nil {
		return nil, err
	}
	return polygons(out)
}

// repair returns mp itself when GEOS finds it valid, else its MakeValid
// polygons (zero-width buffer if that fails), without the lines and points
// a repair may leave.
func repair(mp orb.MultiPolygon) (orb.MultiPolygon, error) {
	if len(mp) == 0 {
		return nil, nil
	}
	raw, err := wkb.Marshal(mp)
	if err != nil {
		return nil, err
	}
	if ok, err := geos.Valid(raw); err == nil && ok {
		return mp, nil
	}
	out, err := geos.MakeValid(raw)
	if err != nil {
		if out, err = geos.Buffer0(raw); err != nil {
			return nil, err
		}
	}
	return polygons(out)
}

// polygons reads the polygons of a WKB geometry of any type, oriented per
// RFC 7946.
func polygons(raw []byte) (orb.MultiPolygon, error) {
	g, err := wkb.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("reading GEOS output: %w", err)
	}
	var mp orb.MultiPolygon
	var walk func(g orb.Geometry)
	walk = func(g orb.Geometry) {
		switch g := g.(type) {
		case orb.Polygon:
			if len(g) > 0 && len(g[0]) >= 4 {
				mp = append(mp, g)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				walk(p)
			}
		case orb.Collection:
			for _, s := range g {
				walk(s)
			}
		}
	}
	walk(g)
	Orient(mp)
	return mp, nil
}

// allFinite says whether every coordinate of mp is a finite number.
func allFinite(mp orb.MultiPolygon) bool {
	for _, p := range mp {
		for _, r := range p {
			for _, pt := range r {
				if !finite(pt[0]) || !finite(pt[1]) {
					return false
				}
			}
		}
	}
	return true
}
