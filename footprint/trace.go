package footprint

import (
	"slices"

	"github.com/paulmach/orb"
)

type dir uint8

const (
	east dir = iota
	north
	west
	south
)

// vkey packs a vertex's compressed (x, y) indices.
func vkey(xi, yi int32) uint64 { return uint64(uint32(xi))<<32 | uint64(uint32(yi)) }

func unkey(k uint64) (int32, int32) { return int32(uint32(k >> 32)), int32(uint32(k)) }

// edge goes from (x, y) to (x+1, y) going east, (x-1, y) going west, or
// (x, toY) going north or south.
type edge struct {
	x, y, toY int32
	comp      int32
	d         dir
}

func (e *edge) to() (int32, int32) {
	switch e.d {
	case east:
		return e.x + 1, e.toY
	case west:
		return e.x - 1, e.toY
	}
	return e.x, e.toY
}

// graph holds the boundary edges; every vertex has one way out, or two
// where tiles touch only at a corner. Once built, index sorts the edges by
// the vertex they leave, without a hash map: those leaving line x are
// byFrom[lineStart[x]:lineStart[x+1]], by increasing y (fromY).
type graph struct {
	edges     []edge
	lineStart []int32
	byFrom    []int32
	fromY     []int32

	counting bool // add only counts
	count    int
}

func (g *graph) add(x, y, toY int32, d dir, comp int32) {
	if g.counting {
		g.count++
		return
	}
	g.edges = append(g.edges, edge{x: x, y: y, toY: toY, comp: comp, d: d})
}

// index builds the lookup of the edges by the vertex they leave, for
// lines 0 to lines-1.
func (g *graph) index(lines int) {
	start := make([]int32, lines+1)
	for i := range g.edges {
		start[g.edges[i].x+1]++
	}
	for x := 1; x <= lines; x++ {
		start[x] += start[x-1]
	}
	byFrom := make([]int32, len(g.edges))
	fill := slices.Clone(start[:lines])
	for i := range g.edges {
		x := g.edges[i].x
		byFrom[fill[x]] = int32(i)
		fill[x]++
	}
	fromY := make([]int32, len(byFrom))
	for k, i := range byFrom {
		fromY[k] = g.edges[i].y
	}
	// Each line's edges come in a few increasing runs (the left slab's
	// tops, the right slab's bottoms, the line's own edges): merge them.
	var tmpY, tmpI []int32
	for x := range lines {
		tmpY, tmpI = mergeRuns(fromY[start[x]:start[x+1]], byFrom[start[x]:start[x+1]], tmpY, tmpI)
	}
	g.lineStart, g.byFrom, g.fromY = start, byFrom, fromY
}

// mergeRuns sorts ys in place, and is alike, by merging the increasing
// runs of ys pairwise until one is left. tmpY and tmpI are buffers, given
// back for the next call.
func mergeRuns(ys, is, tmpY, tmpI []int32) ([]int32, []int32) {
	for {
		sorted := true
		tmpY, tmpI = tmpY[:0], tmpI[:0]
		for lo := 0; lo < len(ys); {
			mid := lo + 1
			for mid < len(ys) && ys[mid-1] <= ys[mid] {
				mid++
			}
			hi := mid
			if hi < len(ys) {
				sorted = false
				hi++
				for hi < len(ys) && ys[hi-1] <= ys[hi] {
					hi++
				}
			}
			a, b := lo, mid
			for a < mid || b < hi {
				if b == hi || a < mid && ys[a] <= ys[b] {
					tmpY, tmpI = append(tmpY, ys[a]), append(tmpI, is[a])
					a++
				} else {
					tmpY, tmpI = append(tmpY, ys[b]), append(tmpI, is[b])
					b++
				}
			}
			lo = hi
		}
		if sorted {
			return tmpY, tmpI
		}
		copy(ys, tmpY)
		copy(is, tmpI)
	}
}

// next picks the edge leaving the end of edge e: the only one, or at a
// corner touch the left turn (one of the two always is); two says which.
func (g *graph) next(e int32) (n int32, two bool) {
	x, y := g.edges[e].to()
	ys := g.fromY[g.lineStart[x]:g.lineStart[x+1]]
	k, _ := slices.BinarySearch(ys, y)
	k += int(g.lineStart[x])
	n = g.byFrom[k]
	if k+1 == int(g.lineStart[x+1]) || g.fromY[k+1] != y {
		return n, false
	}
	if g.edges[n].d == (g.edges[e].d+1)%4 {
		return n, true
	}
	return g.byFrom[k+1], true
}

// tracedRing is a closed vertex sequence (corners only, not repeated at the
// end) and the component it bounds.
type tracedRing struct {
	verts []uint64
	comp  int32
}

// trace follows every edge once, producing simple rings.
func (g *graph) trace() []tracedRing {
	used := make([]bool, len(g.edges))
	var rings []tracedRing
	var corners []uint64
	for start := range g.edges {
		if used[start] {
			continue
		}
		// Collect the corners: vertices where the direction changes.
		corners = corners[:0]
		touch := false
		e := int32(start)
		for {
			used[e] = true
			n, two := g.next(e)
			touch = touch || two
			if g.edges[n].d != g.edges[e].d {
				corners = append(corners, vkey(g.edges[e].to()))
			}
			e = n
			if int(e) == start {
				break
			}
		}
		if !touch {
			// Only a vertex with two ways out can come twice.
			rings = append(rings, tracedRing{verts: slices.Clone(corners), comp: g.edges[start].comp})
			continue
		}
		for _, r := range splitAtRepeats(corners) {
			rings = append(rings, tracedRing{verts: r, comp: g.edges[start].comp})
		}
	}
	return rings
}

// splitAtRepeats cuts a closed ring that passes twice through a vertex into
// simple loops.
func splitAtRepeats(ring []uint64) [][]uint64 {
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

// assemble groups rings into polygons: each component has one
// counter-clockwise shell, and its clockwise rings are its holes. Each
// traced ring's vertices are let go once drawn.
func assemble(rings []tracedRing, pt func(xi, yi int32) orb.Point) orb.MultiPolygon {
	byComp := map[int32]orb.Polygon{} // the shell first, nil until found
	var order []int32
	var orphans []orb.Ring
	toRing := func(vs []uint64) orb.Ring {
		r := make(orb.Ring, 0, len(vs)+1)
		for _, v := range vs {
			r = append(r, pt(unkey(v)))
		}
		return append(r, r[0])
	}
	for i := range rings {
		tr := &rings[i]
		if len(tr.verts) < 4 {
			continue
		}
		r := toRing(tr.verts)
		tr.verts = nil
		p, ok := byComp[tr.comp]
		if !ok {
			p = orb.Polygon{nil}
			order = append(order, tr.comp)
		}
		if r.Orientation() == orb.CCW {
			if p[0] != nil {
				// A second shell for one component would be a bug in the
				// tracing; keep the geometry rather than lose area.
				orphans = append(orphans, r)
				continue
			}
			p[0] = r
		} else {
			p = append(p, r)
		}
		byComp[tr.comp] = p
	}
	mp := make(orb.MultiPolygon, 0, len(order)+len(orphans))
	for _, c := range order {
		mp = append(mp, byComp[c])
	}
	for _, r := range orphans {
		mp = append(mp, orb.Polygon{r})
	}
	return mp
}
