package footprint

// The reference of PlaceStream's differential tests: PlaceEach as it was
// before it streamed (commit f67c37d, when it held the tiles in a slice),
// copied unchanged but for its names. It shares with PlaceStream what that
// change left alone but for splitting it up: corners, checkCorners and
// union (compared with the frozen oldUnion by their own tests).

import (
	"errors"
	"fmt"
	"slices"

	"github.com/paulmach/orb"
)

// refGroup is the tiles of one CRS, by their index in Place's tiles: the
// boxes stay in the caller's slice.
type refGroup struct {
	code          int
	p             *Projector
	tiles         []Tile
	quads         orb.MultiPolygon
	boxIx, quadIx []int32
}

// refPlaceEach is PlaceEach giving each rejected tile to rejected as it is found,
// in no particular order, rather than in Result.Rejected: a delivery whose
// every tile is misplaced (a wrong EPSG code) would hold a million
// errors.
func (ps *Projectors) refPlaceEach(tiles []Tile, o Options, rejected func(Rejected)) Result {
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
	var parts []refPart
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
		g := p.refGroup(tiles, ix, o.withDefaults(), reject)
		pt, area := g.outline(p.inUnits(o), rejected)
		if len(pt.wgs84) > 0 {
			parts = append(parts, pt)
			res.Area += area
		}
	}
	res.WGS84 = refMerge(parts, rejected)
	return res
}

// refGroup checks the tiles ix of p's CRS batch by batch and sorts the
// sound ones into boxes and quads. The boxes' indexes overwrite ix, which
// group owns from then on.
func (p *Projector) refGroup(tiles []Tile, ix []int32, o Options, reject func(int, error)) *refGroup {
	u := p.inUnits(o)
	g := &refGroup{code: p.code, p: p, tiles: tiles}
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

// refPart is one CRS's outline in WGS84 and the tiles it is made of.
type refPart struct {
	code  int
	wgs84 orb.MultiPolygon
	ix    [2][]int32 // boxes, then rotated tiles
}

// refRejectAll rejects the tiles ix for err, said of the CRS code.
func refRejectAll(rejected func(Rejected), code int, ix []int32, err error) {
	for _, i := range ix {
		rejected(Rejected{Index: int(i), Err: fmt.Errorf("%w: EPSG:%d: %w", ErrMisplaced, code, err)})
	}
}

// outline unions the group in its CRS and reprojects it, rejecting the
// tiles it cannot place.
func (g *refGroup) outline(o Options, rejected func(Rejected)) (refPart, float64) {
	tiles, boxIx := g.tiles, g.boxIx
	mp := union(len(boxIx), func(k int) Box { return tiles[boxIx[k]].Box }, o.Tolerance)
	ix := [2][]int32{boxIx}
	if len(g.quads) > 0 {
		u, err := unionAll(append(slices.Clip(g.quads), mp...))
		g.quads = nil
		if err != nil {
			refRejectAll(rejected, g.code, g.quadIx, fmt.Errorf("rotated tiles cannot be merged: %w", err))
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
		refRejectAll(rejected, g.code, ix[0], err)
		refRejectAll(rejected, g.code, ix[1], err)
		return refPart{}, 0
	}
	return refPart{code: g.code, wgs84: w, ix: ix}, area
}

// refMerge unions the CRSs' outlines in WGS84. A part GEOS cannot repair or
// merge has its tiles rejected.
func refMerge(parts []refPart, rejected func(Rejected)) orb.MultiPolygon {
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
