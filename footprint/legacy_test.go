package footprint

// A frozen copy of Place and Union as they were before their working
// memory was cut (commit f87a33c): the differential tests compare the
// current code against it, bit for bit. Do not edit it to follow the
// current code. The helpers both share (withDefaults, inUnits, snapQuad,
// unionAll, repair, union2, finish, areaM2, MultiPolygon, Get) were left
// unchanged by that work.

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

const oldCheckBatch = 4096

type oldRun struct {
	lo, hi int32 // y indices, lo < hi
	comp   int32 // index of this run, then union-find parent
}

// oldUnion returns the exact union of boxes, snapped to tol, in the boxes' CRS.
func oldUnion(boxes []Box, tol float64) orb.MultiPolygon {
	if tol <= 0 {
		tol = DefaultTolerance
	}
	xv := make([]float64, 0, 2*len(boxes))
	yv := make([]float64, 0, 2*len(boxes))
	for _, b := range boxes {
		xv = append(xv, b.MinX, b.MaxX)
		yv = append(yv, b.MinY, b.MaxY)
	}
	xs, ys := oldNewClusters(xv, tol), oldNewClusters(yv, tol)
	if xs.len() < 2 || ys.len() < 2 {
		return nil
	}
	nslab := xs.len() - 1

	type span struct{ xi0, xi1, yi0, yi1 int32 }
	spans := make([]span, 0, len(boxes))
	count := make([]int32, nslab+1)
	for _, b := range boxes {
		s := span{xs.index(b.MinX), xs.index(b.MaxX), ys.index(b.MinY), ys.index(b.MaxY)}
		if s.xi0 >= s.xi1 || s.yi0 >= s.yi1 {
			continue // thinner than the tolerance: no area
		}
		spans = append(spans, s)
		for x := s.xi0; x < s.xi1; x++ {
			count[x+1]++
		}
	}
	if len(spans) == 0 {
		return nil
	}
	// Intervals per slab, in one flat array indexed by slab (CSR).
	for i := 1; i <= nslab; i++ {
		count[i] += count[i-1]
	}
	ivals := make([]oldRun, count[nslab])
	fill := slices.Clone(count[:nslab])
	for _, s := range spans {
		for x := s.xi0; x < s.xi1; x++ {
			ivals[fill[x]] = oldRun{lo: s.yi0, hi: s.yi1}
			fill[x]++
		}
	}

	// Merge each slab's intervals into runs.
	runStart := make([]int32, nslab+1)
	runs := make([]oldRun, 0, len(ivals)/2+1)
	for s := range nslab {
		iv := ivals[count[s]:count[s+1]]
		slices.SortFunc(iv, func(a, b oldRun) int { return int(a.lo - b.lo) })
		for i := 0; i < len(iv); {
			lo, hi := iv[i].lo, iv[i].hi
			j := i + 1
			for j < len(iv) && iv[j].lo <= hi { // touching runs merge too
				hi = max(hi, iv[j].hi)
				j++
			}
			runs = append(runs, oldRun{lo: lo, hi: hi, comp: int32(len(runs))})
			i = j
		}
		runStart[s+1] = int32(len(runs))
	}

	// Components: runs of neighbouring slabs sharing an edge length.
	parent := make([]int32, len(runs))
	for i := range parent {
		parent[i] = int32(i)
	}
	for s := 0; s+1 < nslab; s++ {
		a, b := runs[runStart[s]:runStart[s+1]], runs[runStart[s+1]:runStart[s+2]]
		ai, bi := 0, 0
		for ai < len(a) && bi < len(b) {
			if max(a[ai].lo, b[bi].lo) < min(a[ai].hi, b[bi].hi) {
				oldUnite(parent, runStart[s]+int32(ai), runStart[s+1]+int32(bi))
			}
			if a[ai].hi < b[bi].hi {
				ai++
			} else {
				bi++
			}
		}
	}

	g := oldNewGraph(len(runs) * 4)
	for s := range nslab {
		for i, r := range runs[runStart[s]:runStart[s+1]] {
			c := oldFind(parent, runStart[s]+int32(i))
			g.add(oldVkey(int32(s), r.lo), oldVkey(int32(s+1), r.lo), oldEast, c)
			g.add(oldVkey(int32(s+1), r.hi), oldVkey(int32(s), r.hi), oldWest, c)
		}
	}
	for line := 0; line <= nslab; line++ {
		var left, right []oldRun
		var leftBase, rightBase int32
		if line > 0 {
			leftBase = runStart[line-1]
			left = runs[leftBase:runStart[line]]
		}
		if line < nslab {
			rightBase = runStart[line]
			right = runs[rightBase:runStart[line+1]]
		}
		oldVerticalEdges(g, int32(line), left, right, leftBase, rightBase, parent)
	}
	rings := g.trace()
	return oldAssemble(rings, func(xi, yi int32) orb.Point {
		return orb.Point{xs.reps[xi], ys.reps[yi]}
	})
}

// oldClusters groups sorted values whose gaps are at most tol.
type oldClusters struct {
	starts []float64 // smallest value of each cluster
	reps   []float64 // the value each cluster is drawn at
}

// oldNewClusters sorts v in place and clusters it.
func oldNewClusters(v []float64, tol float64) oldClusters {
	slices.Sort(v)
	var c oldClusters
	for i := 0; i < len(v); {
		j := i + 1
		for j < len(v) && v[j]-v[j-1] <= tol {
			j++
		}
		c.starts = append(c.starts, v[i])
		c.reps = append(c.reps, math.Round(v[i+(j-1-i)/2]/tol)*tol)
		i = j
	}
	return c
}

func (c oldClusters) len() int { return len(c.starts) }

// index is the cluster holding v, which must be one of the clustered values.
func (c oldClusters) index(v float64) int32 {
	i, found := slices.BinarySearch(c.starts, v)
	if !found {
		i--
	}
	return int32(i)
}

func oldFind(parent []int32, i int32) int32 {
	for parent[i] != i {
		parent[i] = parent[parent[i]]
		i = parent[i]
	}
	return i
}

func oldUnite(parent []int32, a, b int32) {
	ra, rb := oldFind(parent, a), oldFind(parent, b)
	if ra != rb {
		parent[rb] = ra
	}
}

// oldVerticalEdges adds the boundary on one slab line: where only the left
// slab is covered the edge goes up (interior on its left), where only the
// right one is, down. llo and rlo are the still unconsumed bottoms of the
// current left and right runs.
func oldVerticalEdges(g *oldGraph, line int32, left, right []oldRun, leftBase, rightBase int32, parent []int32) {
	li, ri := 0, 0
	var llo, rlo int32
	if len(left) > 0 {
		llo = left[0].lo
	}
	if len(right) > 0 {
		rlo = right[0].lo
	}
	nextLeft := func() {
		li++
		if li < len(left) {
			llo = left[li].lo
		}
	}
	nextRight := func() {
		ri++
		if ri < len(right) {
			rlo = right[ri].lo
		}
	}
	for li < len(left) || ri < len(right) {
		switch {
		case li < len(left) && (ri == len(right) || left[li].hi <= rlo):
			g.add(oldVkey(line, llo), oldVkey(line, left[li].hi), oldNorth, oldFind(parent, leftBase+int32(li)))
			nextLeft()
		case ri < len(right) && (li == len(left) || right[ri].hi <= llo):
			g.add(oldVkey(line, right[ri].hi), oldVkey(line, rlo), oldSouth, oldFind(parent, rightBase+int32(ri)))
			nextRight()
		default:
			// Overlap: only the part below it is boundary.
			if llo < rlo {
				g.add(oldVkey(line, llo), oldVkey(line, rlo), oldNorth, oldFind(parent, leftBase+int32(li)))
			} else if rlo < llo {
				g.add(oldVkey(line, llo), oldVkey(line, rlo), oldSouth, oldFind(parent, rightBase+int32(ri)))
			}
			top := min(left[li].hi, right[ri].hi)
			if left[li].hi == top {
				nextLeft()
			} else {
				llo = top
			}
			if right[ri].hi == top {
				nextRight()
			} else {
				rlo = top
			}
		}
	}
}

type oldDir uint8

const (
	oldEast oldDir = iota
	oldNorth
	oldWest
	oldSouth
)

// oldVkey packs a vertex's compressed (x, y) indices.
func oldVkey(xi, yi int32) uint64 { return uint64(uint32(xi))<<32 | uint64(uint32(yi)) }

func oldUnkey(k uint64) (int32, int32) { return int32(uint32(k >> 32)), int32(uint32(k)) }

type oldEdge struct {
	from, to uint64
	d        oldDir
	comp     int32
}

// oldGraph holds the boundary edges; every vertex has one way out, or two
// where tiles touch only at a corner.
type oldGraph struct {
	edges []oldEdge
	out   map[uint64][2]int32 // vertex → up to two outgoing edge indices (+1; 0 = none)
}

func oldNewGraph(hint int) *oldGraph {
	return &oldGraph{edges: make([]oldEdge, 0, hint), out: make(map[uint64][2]int32, hint)}
}

func (g *oldGraph) add(from, to uint64, d oldDir, comp int32) {
	g.edges = append(g.edges, oldEdge{from, to, d, comp})
	o := g.out[from]
	if o[0] == 0 {
		o[0] = int32(len(g.edges))
	} else {
		o[1] = int32(len(g.edges))
	}
	g.out[from] = o
}

// next picks the edge leaving the end of e: the only one, or at a corner
// touch the left turn.
func (g *oldGraph) next(e *oldEdge) int32 {
	o := g.out[e.to]
	if o[1] == 0 {
		return o[0] - 1
	}
	if g.edges[o[0]-1].d == (e.d+1)%4 {
		return o[0] - 1
	}
	return o[1] - 1
}

// oldTracedRing is a closed vertex sequence (corners only, not repeated at the
// end) and the component it bounds.
type oldTracedRing struct {
	verts []uint64
	comp  int32
}

// trace follows every edge once, producing simple rings.
func (g *oldGraph) trace() []oldTracedRing {
	used := make([]bool, len(g.edges))
	var rings []oldTracedRing
	for start := range g.edges {
		if used[start] {
			continue
		}
		// Collect the corners: vertices where the direction changes.
		var oldCorners []uint64
		e := int32(start)
		for {
			used[e] = true
			n := g.next(&g.edges[e])
			if g.edges[n].d != g.edges[e].d {
				oldCorners = append(oldCorners, g.edges[e].to)
			}
			e = n
			if int(e) == start {
				break
			}
		}
		for _, r := range oldSplitAtRepeats(oldCorners) {
			rings = append(rings, oldTracedRing{verts: r, comp: g.edges[start].comp})
		}
	}
	return rings
}

// oldSplitAtRepeats cuts a closed ring that passes twice through a vertex into
// simple loops.
func oldSplitAtRepeats(ring []uint64) [][]uint64 {
	seen := make(map[uint64]int, len(ring))
	var stack []uint64
	var out [][]uint64
	for _, v := range ring {
		if at, ok := seen[v]; ok {
			loop := append([]uint64(nil), stack[at:]...)
			out = append(out, loop)
			for _, w := range stack[at+1:] {
				delete(seen, w)
			}
			stack = stack[:at+1]
			continue
		}
		seen[v] = len(stack)
		stack = append(stack, v)
	}
	return append(out, stack)
}

// oldAssemble groups rings into polygons: each component has one
// counter-clockwise shell, and its clockwise rings are its holes.
func oldAssemble(rings []oldTracedRing, pt func(xi, yi int32) orb.Point) orb.MultiPolygon {
	type poly struct {
		shell orb.Ring
		holes []orb.Ring
	}
	byComp := map[int32]*poly{}
	var order []int32
	var orphans []orb.Ring
	toRing := func(vs []uint64) orb.Ring {
		r := make(orb.Ring, 0, len(vs)+1)
		for _, v := range vs {
			r = append(r, pt(oldUnkey(v)))
		}
		return append(r, r[0])
	}
	for _, tr := range rings {
		if len(tr.verts) < 4 {
			continue
		}
		r := toRing(tr.verts)
		p := byComp[tr.comp]
		if p == nil {
			p = &poly{}
			byComp[tr.comp] = p
			order = append(order, tr.comp)
		}
		if r.Orientation() == orb.CCW {
			if p.shell != nil {
				// A second shell for one component would be a bug in the
				// tracing; keep the geometry rather than lose area.
				orphans = append(orphans, r)
				continue
			}
			p.shell = r
		} else {
			p.holes = append(p.holes, r)
		}
	}
	mp := make(orb.MultiPolygon, 0, len(order)+len(orphans))
	for _, c := range order {
		p := byComp[c]
		mp = append(mp, append(orb.Polygon{p.shell}, p.holes...))
	}
	for _, r := range orphans {
		mp = append(mp, orb.Polygon{r})
	}
	return mp
}

// oldGroup is the tiles of one CRS.
type oldGroup struct {
	code          int
	p             *Projector
	boxes         []Box
	quads         orb.MultiPolygon
	boxIx, quadIx []int
}

// oldPlace is the livrable's footprint in WGS84: the exact union of its
// tiles, per CRS in that CRS (rotated tiles through GEOS), then merged.
// Tiles that fail Check, or whose geometry GEOS cannot merge even once
// repaired, are left out and listed in Rejected: placing never fails.
func (ps *Projectors) oldPlace(tiles []Tile, o Options) Result {
	o = o.withDefaults()
	var res Result
	reject := func(i int, err error) {
		res.Rejected = append(res.Rejected, Rejected{Index: i, Err: fmt.Errorf("%w: %w", ErrMisplaced, err)})
	}
	// Tiles sound in their own CRS, by CRS; only their indexes are kept:
	// corners are recomputed batch by batch when reprojected, so that a
	// million tiles never hold a million corner sets at once.
	byCode := map[int][]int32{}
	for i, t := range tiles {
		if _, err := oldCorners(t); err != nil {
			reject(i, err)
			continue
		}
		byCode[t.EPSG] = append(byCode[t.EPSG], int32(i))
	}
	codes := make([]int, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []oldPart
	for _, code := range codes {
		ix := byCode[code]
		delete(byCode, code)
		p, err := ps.Get(code)
		if err != nil {
			for _, i := range ix {
				reject(int(i), err)
			}
			continue
		}
		g := p.oldGroupOf(tiles, ix, o.withDefaults(), reject)
		pt, area := g.outline(p.inUnits(o), &res.Rejected)
		if len(pt.wgs84) > 0 {
			parts = append(parts, pt)
			res.Area += area
		}
	}
	res.WGS84 = oldMerge(parts, &res.Rejected)
	slices.SortFunc(res.Rejected, func(a, b Rejected) int { return a.Index - b.Index })
	return res
}

// oldGroupOf checks the tiles ix of p's CRS batch by batch and sorts the
// sound ones into boxes and quads.
func (p *Projector) oldGroupOf(tiles []Tile, ix []int32, o Options, reject func(int, error)) *oldGroup {
	u := p.inUnits(o)
	g := &oldGroup{code: p.code, p: p, boxes: make([]Box, 0, len(ix)), boxIx: make([]int, 0, len(ix))}
	cs := make([][4]orb.Point, 0, min(len(ix), oldCheckBatch))
	errs := make([]error, min(len(ix), oldCheckBatch))
	for from := 0; from < len(ix); from += oldCheckBatch {
		batch := ix[from:min(from+oldCheckBatch, len(ix))]
		cs = cs[:0]
		for _, i := range batch {
			c, _ := oldCorners(tiles[i]) // sound: checked before grouping
			cs = append(cs, c)
		}
		p.oldCheckCorners(cs, errs[:len(batch)])
		for k, i32 := range batch {
			i := int(i32)
			switch t := tiles[i]; {
			case errs[k] != nil:
				reject(i, errs[k])
			case t.Quad == nil && (t.Box.MaxX-t.Box.MinX <= u.Tolerance || t.Box.MaxY-t.Box.MinY <= u.Tolerance):
				// The exact union would snap it away without a word.
				reject(i, fmt.Errorf("box %v within the snapping tolerance (%g)", t.Box, u.Tolerance))
			case t.Quad != nil:
				g.quads = append(g.quads, snapQuad(t.Quad, u.Tolerance))
				g.quadIx = append(g.quadIx, i)
			default:
				g.boxes = append(g.boxes, t.Box)
				g.boxIx = append(g.boxIx, i)
			}
		}
	}
	return g
}

// oldPart is one CRS's outline in WGS84 and the tiles it is made of.
type oldPart struct {
	code  int
	wgs84 orb.MultiPolygon
	ix    []int
}

// outline unions the group in its CRS and reprojects it, rejecting the
// tiles it cannot place.
func (g *oldGroup) outline(o Options, rejected *[]Rejected) (oldPart, float64) {
	reject := func(ix []int, err error) {
		for _, i := range ix {
			*rejected = append(*rejected, Rejected{Index: i, Err: fmt.Errorf("%w: EPSG:%d: %w", ErrMisplaced, g.code, err)})
		}
	}
	mp := oldUnion(g.boxes, o.Tolerance)
	ix := g.boxIx
	if len(g.quads) > 0 {
		u, err := unionAll(append(slices.Clip(g.quads), mp...))
		if err != nil {
			reject(g.quadIx, fmt.Errorf("rotated tiles cannot be merged: %w", err))
		} else {
			mp = u
			ix = append(slices.Clip(ix), g.quadIx...)
		}
	}
	area := g.p.areaM2(mp)
	w, err := g.p.MultiPolygon(mp, o.MaxSegment)
	if err == nil && !allFinite(w) {
		err = errors.New("outline does not reproject to finite coordinates")
	}
	if err != nil {
		reject(ix, err)
		return oldPart{}, 0
	}
	return oldPart{code: g.code, wgs84: w, ix: ix}, area
}

// oldMerge unions the CRSs' outlines in WGS84. A part GEOS cannot repair or
// merge has its tiles rejected.
func oldMerge(parts []oldPart, rejected *[]Rejected) orb.MultiPolygon {
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
			for _, i := range pt.ix {
				*rejected = append(*rejected, Rejected{Index: i, Err: fmt.Errorf("%w: EPSG:%d outline cannot be merged with the others: %w", ErrMisplaced, pt.code, err)})
			}
			continue
		}
		acc = u
	}
	return finish(acc)
}

// oldCorners are the tile's four corners, in ring order, once its geometry is
// known to be finite and a convex quadrilateral of positive area.
func oldCorners(t Tile) ([4]orb.Point, error) {
	var c [4]orb.Point
	if t.Quad == nil {
		b := t.Box
		if b.MinX > b.MaxX || b.MinY > b.MaxY {
			// The exact union would drop it without a word.
			return c, fmt.Errorf("inverted box %v", b)
		}
		c = [4]orb.Point{{b.MinX, b.MinY}, {b.MaxX, b.MinY}, {b.MaxX, b.MaxY}, {b.MinX, b.MaxY}}
	} else {
		if len(t.Quad) != 1 {
			return c, fmt.Errorf("rotated tile of %d rings", len(t.Quad))
		}
		r := t.Quad[0]
		if len(r) == 5 && r[0] == r[4] {
			r = r[:4]
		}
		if len(r) != 4 {
			return c, fmt.Errorf("rotated tile of %d points", len(r))
		}
		copy(c[:], r)
	}
	for _, pt := range c {
		if !finite(pt[0]) || !finite(pt[1]) {
			return c, fmt.Errorf("non-finite corner %v", pt)
		}
	}
	// Convex with positive area: every turn goes the same way.
	var pos, neg int
	for i := range 4 {
		a, b, d := c[i], c[(i+1)%4], c[(i+2)%4]
		z := (b[0]-a[0])*(d[1]-b[1]) - (b[1]-a[1])*(d[0]-b[0])
		switch {
		case !finite(z):
			return c, fmt.Errorf("corner %v out of range", b)
		case z > 0:
			pos++
		case z < 0:
			neg++
		}
	}
	switch {
	case pos == 4 || neg == 4:
		return c, nil
	case pos > 0 && neg > 0:
		return c, errors.New("self-intersecting or concave outline")
	default:
		return c, errors.New("degenerate outline (zero area)")
	}
}

// oldCheckCorners reprojects each tile's corners and checks its size and
// place in WGS84; errs[i] is tile i's verdict.
func (p *Projector) oldCheckCorners(cs [][4]orb.Point, errs []error) {
	xs := make([]float64, 0, 4*min(len(cs), oldCheckBatch))
	ys := make([]float64, 0, cap(xs))
	ok := make([]bool, cap(xs))
	for from := 0; from < len(cs); from += oldCheckBatch {
		batch := cs[from:min(from+oldCheckBatch, len(cs))]
		xs, ys = xs[:0], ys[:0]
		for _, c := range batch {
			for _, pt := range c {
				xs, ys = append(xs, pt[0]), append(ys, pt[1])
			}
		}
		// The error only says that some point failed: ok says which.
		p.mu.Lock()
		_ = p.tr.TransformEx(xs, ys, nil, ok[:len(xs)])
		p.mu.Unlock()
		for i, c := range batch {
			errs[from+i] = p.oldCheckLonLat(c, xs[4*i:4*i+4], ys[4*i:4*i+4], ok[4*i:4*i+4])
		}
	}
}

// oldCheckLonLat judges one tile from its corners c and their reprojection.
func (p *Projector) oldCheckLonLat(c [4]orb.Point, lon, lat []float64, ok []bool) error {
	for i := range 4 {
		if !ok[i] || !finite(lon[i]) || !finite(lat[i]) {
			return fmt.Errorf("corner %v does not reproject to WGS84", c[i])
		}
		if lon[i] < -180 || lon[i] > 180 || lat[i] < -90 || lat[i] > 90 {
			return fmt.Errorf("corner %v reprojects outside the Earth (%g°E %g°N)", c[i], lon[i], lat[i])
		}
	}
	for i := range 4 {
		j := (i + 1) % 4
		if math.Abs(lon[j]-lon[i]) > 180 {
			return errors.New("crosses the antimeridian")
		}
		switch d := distance(lon[i], lat[i], lon[j], lat[j]); {
		case d < MinSide:
			return fmt.Errorf("side of %.3g m, under %g m", d, MinSide)
		case d > MaxSide:
			return fmt.Errorf("side of %.4g km, over %g km", d/1000, MaxSide/1000)
		}
	}
	if !p.hasArea {
		return nil
	}
	for i := range 4 {
		if !p.area.contains(orb.Point{lon[i], lat[i]}, AreaMargin) {
			return fmt.Errorf("at %.5f°E %.5f°N, more than %g° outside the area of use of EPSG:%d (%g°E..%g°E, %g°N..%g°N)",
				lon[i], lat[i], AreaMargin, p.code, p.area.West, p.area.East, p.area.South, p.area.North)
		}
	}
	return nil
}
