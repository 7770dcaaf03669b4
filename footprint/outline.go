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

// group is the tiles of one CRS, by their index in Place's tiles: the
// boxes stay in the caller's slice.
type group struct {
	code          int
	p             *Projector
	tiles         []Tile
	quads         orb.MultiPolygon
	boxIx, quadIx []int32
}

// Place is the livrable's footprint in WGS84: the exact union of its
// tiles, per CRS in that CRS (rotated tiles through GEOS), then merged.
// Tiles that fail Check, or whose geometry GEOS cannot merge even once
// repaired, are left out and listed in Rejected: placing never fails.
//
// Beyond tiles and the result, Place holds 4 bytes a tile (its index in
// its CRS's list), a few megabytes of batches, and the union's working
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
// errors.
func (ps *Projectors) PlaceEach(tiles []Tile, o Options, rejected func(Rejected)) Result {
	o = o.withDefaults()
	var res Result
	reject := func(i int, err error) {
		rejected(Rejected{Index: i, Err: fmt.Errorf("%w: %w", ErrMisplaced, err)})
	}
	// Tiles sound in their own CRS, by CRS; only their indexes are kept,
	// each CRS's list sized once: corners are recomputed batch by batch
	// when reprojected, so that a million tiles never hold a million
	// corner sets at once.
	type list struct{ ix []int32 }
	count := map[int]int{}
	for _, t := range tiles {
		count[t.EPSG]++
	}
	byCode := make(map[int]*list, len(count))
	var last *list // the previous tile's CRS's: most deliveries have one
	lastCode := 0
	for i, t := range tiles {
		if _, err := corners(t); err != nil {
			reject(i, err)
			continue
		}
		if last == nil || t.EPSG != lastCode {
			if last, lastCode = byCode[t.EPSG], t.EPSG; last == nil {
				last = &list{ix: make([]int32, 0, count[t.EPSG])}
				byCode[t.EPSG] = last
			}
		}
		last.ix = append(last.ix, int32(i))
	}
	codes := make([]int, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []part
	for _, code := range codes {
		ix := byCode[code].ix
		delete(byCode, code)
		p, err := ps.Get(code)
		if err != nil {
			for _, i := range ix {
				reject(int(i), err)
			}
			continue
		}
		g := p.group(tiles, ix, o.withDefaults(), reject)
		pt, area := g.outline(p.inUnits(o), rejected)
		if len(pt.wgs84) > 0 {
			parts = append(parts, pt)
			res.Area += area
		}
	}
	res.WGS84 = merge(parts, rejected)
	return res
}

// group checks the tiles ix of p's CRS batch by batch and sorts the
// sound ones into boxes and quads. The boxes' indexes overwrite ix, which
// group owns from then on.
func (p *Projector) group(tiles []Tile, ix []int32, o Options, reject func(int, error)) *group {
	u := p.inUnits(o)
	g := &group{code: p.code, p: p, tiles: tiles}
	cs := make([][4]orb.Point, 0, min(len(ix), checkBatch))
	errs := make([]error, min(len(ix), checkBatch))
	var cb cornerBatch
	boxIx := ix[:0] // never written ahead of the index being read
	for from := 0; from < len(ix); from += checkBatch {
		batch := ix[from:min(from+checkBatch, len(ix))]
		cs = cs[:0]
		for _, i := range batch {
			c, _ := corners(tiles[i]) // sound: checked before grouping
			cs = append(cs, c)
		}
		p.checkCorners(cs, errs[:len(batch)], &cb)
		for k, i32 := range batch {
			i := int(i32)
			switch t := &tiles[i]; {
			case errs[k] != nil:
				reject(i, errs[k])
			case t.Quad == nil && (t.Box.MaxX-t.Box.MinX <= u.Tolerance || t.Box.MaxY-t.Box.MinY <= u.Tolerance):
				// The exact union would snap it away without a word.
				reject(i, fmt.Errorf("box %v within the snapping tolerance (%g)", t.Box, u.Tolerance))
			case t.Quad != nil:
				g.quads = append(g.quads, snapQuad(t.Quad, u.Tolerance))
				g.quadIx = append(g.quadIx, i32)
			default:
				boxIx = append(boxIx, i32)
			}
		}
	}
	g.boxIx = boxIx
	return g
}

// part is one CRS's outline in WGS84 and the tiles it is made of.
type part struct {
	code  int
	wgs84 orb.MultiPolygon
	ix    [2][]int32 // boxes, then rotated tiles
}

// rejectAll rejects the tiles ix for err, said of the CRS code.
func rejectAll(rejected func(Rejected), code int, ix []int32, err error) {
	for _, i := range ix {
		rejected(Rejected{Index: int(i), Err: fmt.Errorf("%w: EPSG:%d: %w", ErrMisplaced, code, err)})
	}
}

// outline unions the group in its CRS and reprojects it, rejecting the
// tiles it cannot place.
func (g *group) outline(o Options, rejected func(Rejected)) (part, float64) {
	tiles, boxIx := g.tiles, g.boxIx
	mp := union(len(boxIx), func(k int) Box { return tiles[boxIx[k]].Box }, o.Tolerance)
	ix := [2][]int32{boxIx}
	if len(g.quads) > 0 {
		u, err := unionAll(append(slices.Clip(g.quads), mp...))
		g.quads = nil
		if err != nil {
			rejectAll(rejected, g.code, g.quadIx, fmt.Errorf("rotated tiles cannot be merged: %w", err))
		} else {
			mp = u
			ix[1] = g.quadIx
		}
	}
	area := g.p.areaM2(mp)
	w, err := g.p.MultiPolygon(mp, o.MaxSegment)
	if err == nil && !allFinite(w) {
		err = errors.New("outline does not reproject to finite coordinates")
	}
	if err != nil {
		rejectAll(rejected, g.code, ix[0], err)
		rejectAll(rejected, g.code, ix[1], err)
		return part{}, 0
	}
	return part{code: g.code, wgs84: w, ix: ix}, area
}

// merge unions the CRSs' outlines in WGS84. A part GEOS cannot repair or
// merge has its tiles rejected.
func merge(parts []part, rejected func(Rejected)) orb.MultiPolygon {
	if len(parts) == 0 {
		return nil
	}
	if len(parts) == 1 {
		return finish(parts[0].wgs84)
	}
	var acc orb.MultiPolygon
	for _, pt := range parts {
		w, err := repair(pt.wgs84)
		var u orb.MultiPolygon
		if err == nil {
			u, err = union2(acc, w)
		}
		if err != nil {
			for _, ix := range pt.ix {
				for _, i := range ix {
					rejected(Rejected{Index: int(i), Err: fmt.Errorf("%w: EPSG:%d outline cannot be merged with the others: %w", ErrMisplaced, pt.code, err)})
				}
			}
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
