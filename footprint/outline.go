package footprint

import (
	"fmt"
	"slices"
	"sync"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// Tile is one readable tile's placement in its CRS. Quad is set, instead of
// Box, for tiles whose geotransform is rotated or sheared.
type Tile struct {
	EPSG int
	Box  Box
	Quad orb.Polygon
}

// Options tune the outline; zero values take the defaults.
type Options struct {
	Tolerance  float64 // snapping grid in CRS units (DefaultTolerance)
	MaxSegment float64 // densification before reprojection (DefaultMaxSegment)
}

func (o Options) withDefaults() Options {
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.MaxSegment <= 0 {
		o.MaxSegment = DefaultMaxSegment
	}
	return o
}

// Projectors caches one Projector per CRS.
type Projectors struct {
	mu sync.Mutex
	m  map[int]*Projector
}

// Get returns the projector from EPSG:code to WGS84.
func (ps *Projectors) Get(code int) (*Projector, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.m[code]; ok {
		return p, nil
	}
	p, err := NewProjector(code)
	if err != nil {
		return nil, err
	}
	if ps.m == nil {
		ps.m = map[int]*Projector{}
	}
	ps.m[code] = p
	return p, nil
}

// Close releases every projector.
func (ps *Projectors) Close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.m {
		p.Close()
	}
	ps.m = nil
}

// TilePolygon is one tile's outline in WGS84, densified like the livrable
// outline so that both agree.
func (ps *Projectors) TilePolygon(t Tile, o Options) (orb.Polygon, error) {
	o = o.withDefaults()
	p, err := ps.Get(t.EPSG)
	if err != nil {
		return nil, err
	}
	poly := t.Quad
	if poly == nil {
		poly = BoxPolygon(t.Box)
	}
	return p.Polygon(poly, o.MaxSegment)
}

// Outline is the livrable's footprint in WGS84: the exact union of its
// tiles, per CRS in that CRS, then merged. It also returns the area in
// square metres, measured in the tiles' own CRSs.
func (ps *Projectors) Outline(tiles []Tile, o Options) (orb.MultiPolygon, float64, error) {
	o = o.withDefaults()
	type group struct {
		boxes []Box
		quads orb.MultiPolygon
	}
	groups := map[int]*group{}
	for _, t := range tiles {
		g := groups[t.EPSG]
		if g == nil {
			g = &group{}
			groups[t.EPSG] = g
		}
		if t.Quad != nil {
			g.quads = append(g.quads, t.Quad)
		} else {
			g.boxes = append(g.boxes, t.Box)
		}
	}
	codes := make([]int, 0, len(groups))
	for c := range groups {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []orb.MultiPolygon
	var area float64
	for _, code := range codes {
		g := groups[code]
		mp := Union(g.boxes, o.Tolerance)
		if len(g.quads) > 0 {
			var err error
			if mp, err = GeneralUnion(mp, g.quads); err != nil {
				return nil, 0, fmt.Errorf("EPSG:%d rotated tiles: %w", code, err)
			}
		}
		area += planar.Area(mp)
		p, err := ps.Get(code)
		if err != nil {
			return nil, 0, err
		}
		w, err := p.MultiPolygon(mp, o.MaxSegment)
		if err != nil {
			return nil, 0, fmt.Errorf("EPSG:%d: %w", code, err)
		}
		parts = append(parts, w)
	}
	if len(parts) == 1 {
		return parts[0], area, nil
	}
	merged, err := GeneralUnion(parts...)
	if err != nil {
		return nil, 0, fmt.Errorf("merging CRSs: %w", err)
	}
	// GEOS adds intersection points with full precision.
	for _, poly := range merged {
		for i, r := range poly {
			poly[i] = roundRing(r)
		}
	}
	Orient(merged)
	return merged, area, nil
}
