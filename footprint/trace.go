package footprint

import (
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

type edge struct {
	from, to uint64
	d        dir
	comp     int32
}

// graph holds the boundary edges; every vertex has one way out, or two
// where tiles touch only at a corner.
type graph struct {
	edges []edge
	out   map[uint64][2]int32 // vertex → up to two outgoing edge indices (+1; 0 = none)
}

func newGraph(hint int) *graph {
	return &graph{edges: make([]edge, 0, hint), out: make(map[uint64][2]int32, hint)}
}

func (g *graph) add(from, to uint64, d dir, comp int32) {
	g.edges = append(g.edges, edge{from, to, d, comp})
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
func (g *graph) next(e *edge) int32 {
	o := g.out[e.to]
	if o[1] == 0 {
		return o[0] - 1
	}
	if g.edges[o[0]-1].d == (e.d+1)%4 {
		return o[0] - 1
	}
	return o[1] - 1
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
	for start := range g.edges {
		if used[start] {
			continue
		}
		// Collect the corners: vertices where the direction changes.
		var corners []uint64
		e := int32(start)
		for {
			used[e] = true
			n := g.next(&g.edges[e])
			if g.edges[n].d != g.edges[e].d {
				corners = append(corners, g.edges[e].to)
			}
			e = n
			if int(e) == start {
				break
			}
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
// counter-clockwise shell, and its clockwise rings are its holes.
func assemble(rings []tracedRing, pt func(xi, yi int32) orb.Point) orb.MultiPolygon {
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
			r = append(r, pt(unkey(v)))
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
