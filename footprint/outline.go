package footprint

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/paulmach/orb"
)

// Tile is one readable tile's placement in its CRS. Quad is set, instead of
// Box, for tiles whose geotransform is rotated or sheared.
type Tile struct {
	EPSG int
	Box  Box
	Quad orb.Polygon
}

// Options tune the outline; zero values take the defaults. Lengths are in
// CRS units, metres for every projected CRS PCRS uses; for a geographic CRS
// they are taken as metres and converted to degrees.
type Options struct {
	Tolerance  float64 // snapping grid (DefaultTolerance)
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

// Projectors caches one Projector per CRS, and the failure for a code
// PROJ does not know, so that a delivery of such tiles asks once.
type Projectors struct {
	mu     sync.Mutex
	m      map[int]*Projector
	failed map[int]error
}

// Get returns the projector from EPSG:code to WGS84.
func (ps *Projectors) Get(code int) (*Projector, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.m[code]; ok {
		return p, nil
	}
	if err, ok := ps.failed[code]; ok {
		return nil, err
	}
	p, err := NewProjector(code)
	if err != nil {
		if ps.failed == nil {
			ps.failed = map[int]error{}
		}
		ps.failed[code] = err
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
	ps.m, ps.failed = nil, nil
}

// TilePolygon is one tile's outline in WGS84, densified like the livrable
// outline so that both agree. A tile that fails Check, or too small to
// draw at Decimals, gets an error wrapping ErrMisplaced.
func (ps *Projectors) TilePolygon(t Tile, o Options) (orb.Polygon, error) {
	o = o.withDefaults()
	p, err := ps.check(t)
	if err != nil {
		return nil, err
	}
	poly := t.Quad
	if poly == nil {
		poly = BoxPolygon(t.Box)
	}
	out, err := p.Polygon(poly, p.inUnits(o).MaxSegment)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMisplaced, err)
	case len(out) == 0:
		return nil, fmt.Errorf("%w: too small to draw at %d decimals", ErrMisplaced, Decimals)
	}
	return out, nil
}

// Outline is Place without the rejected tiles: it never fails.
func (ps *Projectors) Outline(tiles []Tile, o Options) (orb.MultiPolygon, float64, error) {
	r := ps.Place(tiles, o)
	return r.WGS84, r.Area, nil
}

// Result is a livrable's footprint and the tiles left out of it.
type Result struct {
	WGS84    orb.MultiPolygon // valid, finite, RFC 7946 orientation, rounded to Decimals where that keeps it valid
	Area     float64          // m², measured in the tiles' own CRSs
	Rejected []Rejected       // by increasing Index
}

// Rejected is a tile left out of the footprint: its index in the tiles
// given to Place, and why (an error wrapping ErrMisplaced).
type Rejected struct {
	Index int
	Err   error
}

// Place is the livrable's footprint in WGS84: the exact union of its
// tiles, per CRS in that CRS (rotated tiles through GEOS), then merged.
// Tiles that fail Check, or whose geometry GEOS cannot merge even once
// repaired, are left out and listed in Rejected: placing never fails.
//
// Beyond tiles and the result, Place holds one bit a tile (see
// PlaceStream), a few megabytes of batches, and the union's working
// memory (see the package doc: little for tiles on a grid). Reprojecting
// the corners leaves about 20 bytes of garbage per distinct corner (cgo
// copies in godal), some 25 bytes a tile on a grid.
func (ps *Projectors) Place(tiles []Tile, o Options) Result {
	var rejected []Rejected
	res := ps.PlaceEach(tiles, o, func(r Rejected) { rejected = append(rejected, r) })
	slices.SortFunc(rejected, func(a, b Rejected) int { return a.Index - b.Index })
	res.Rejected = rejected
	return res
}

// PlaceEach is Place giving each rejected tile to rejected as it is found,
// in no particular order, rather than in Result.Rejected: a delivery whose
// every tile is misplaced (a wrong EPSG code) would hold a million
// errors. It is PlaceStream over tiles, which never fails.
func (ps *Projectors) PlaceEach(tiles []Tile, o Options, rejected func(Rejected)) Result {
	res, _ := ps.PlaceStream(func(yield func(Tile) bool) error {
		for _, t := range tiles {
			if !yield(t) {
				break
			}
		}
		return nil
	}, o, rejected)
	return res
}

// crsOutline is a CRS's outline in WGS84 and its area, from the union mp
// of its boxes and its rotated tiles quads, given in units of the CRS.
// quadErr says why the rotated tiles were left out, err why the whole CRS
// was (the rotated tiles too unless quadErr already left them out).
func (p *Projector) crsOutline(mp, quads orb.MultiPolygon, o Options) (w orb.MultiPolygon, area float64, quadErr, err error) {
	if len(quads) > 0 {
		u, err := unionAll(append(slices.Clip(quads), mp...))
		if err != nil {
			quadErr = fmt.Errorf("rotated tiles cannot be merged: %w", err)
		} else {
			mp = u
		}
	}
	area = p.areaM2(mp)
	w, err = p.MultiPolygon(mp, o.MaxSegment)
	if err == nil && !allFinite(w) {
		err = errors.New("outline does not reproject to finite coordinates")
	}
	if err != nil {
		return nil, 0, quadErr, err
	}
	return w, area, quadErr, nil
}

// mergeError is why the tiles of a CRS whose outline cannot be merged with
// the others' are left out.
func mergeError(code int, err error) error {
	return fmt.Errorf("%w: EPSG:%d outline cannot be merged with the others: %w", ErrMisplaced, code, err)
}

// merge unions the CRSs' outlines in WGS84, giving failed the index of
// each part GEOS cannot repair or merge, which is left out.
func merge(parts []orb.MultiPolygon, failed func(int, error)) orb.MultiPolygon {
	if len(parts) == 0 {
		return nil
	}
	if len(parts) == 1 {
		return finish(parts[0])
	}
	var acc orb.MultiPolygon
	for k, pt := range parts {
		w, err := repair(pt)
		var u orb.MultiPolygon
		if err == nil {
			u, err = union2(acc, w)
		}
		if err != nil {
			failed(k, err)
			continue
		}
		acc = u
	}
	return finish(acc)
}

// finish rounds GEOS output, which adds intersection points with full
// precision, to Decimals, and repairs what rounding may break; if rounding
// keeps breaking it, the valid unrounded geometry wins.
func finish(mp orb.MultiPolygon) orb.MultiPolygon {
	for range 3 {
		r := rounded(mp)
		fixed, err := repair(r)
		if err != nil {
			return mp
		}
		if len(fixed) == len(r) && slices.EqualFunc(fixed, r, polygonEqual) {
			return r
		}
		mp = fixed
	}
	return mp
}

// rounded is a copy of mp rounded to Decimals, without the rings rounding
// collapsed.
func rounded(mp orb.MultiPolygon) orb.MultiPolygon {
	out := make(orb.MultiPolygon, 0, len(mp))
	for _, poly := range mp {
		var q orb.Polygon
		for i, r := range poly {
			rr := roundRing(slices.Clone(r))
			if len(rr) < 4 {
				if i == 0 {
					break
				}
				continue
			}
			q = append(q, rr)
		}
		if len(q) > 0 {
			out = append(out, q)
		}
	}
	Orient(out)
	return out
}

func polygonEqual(a, b orb.Polygon) bool {
	return slices.EqualFunc(a, b, func(x, y orb.Ring) bool { return slices.Equal(x, y) })
}

// snapQuad rounds a rotated tile's corners to the tolerance, so that
// neighbours computed from slightly different origins share their edges.
func snapQuad(q orb.Polygon, tol float64) orb.Polygon {
	out := make(orb.Polygon, len(q))
	for i, r := range q {
		out[i] = make(orb.Ring, len(r))
		for j, pt := range r {
			out[i][j] = orb.Point{math.Round(pt[0]/tol) * tol, math.Round(pt[1]/tol) * tol}
		}
		if len(r) > 0 && r[0] != r[len(r)-1] {
			out[i] = append(out[i], out[i][0])
		}
	}
	return out
}
