// Package footprint turns tile boxes into a livrable's exact crenelated
// outline and reprojects it to WGS84.
//
// # Union of boxes
//
// North-up tiles are axis-aligned rectangles in their CRS, so their union is
// a rectilinear polygon set computed exactly, on integer cluster indices,
// without a general-purpose geometry engine:
//
//  1. Coordinates are snapped and compressed: sorted x values closer than
//     the tolerance (1 cm by default) to their neighbour fall into one
//     cluster, drawn at its median rounded to the tolerance. Clusters are
//     more than the tolerance apart, so their drawn values stay distinct
//     and ordered; unlike rounding to a grid, clustering never splits two
//     values on either side of a grid line. The x clusters cut the plane
//     into vertical slabs; the y clusters index the rows.
//  2. Each slab gets the merged y-intervals ("runs") of the boxes crossing
//     it. Runs in neighbouring slabs that share a length of edge belong to
//     the same component (union-find).
//  3. Boundary edges fall out directly: each run's bottom and top, and on
//     each slab line the symmetric difference of the two slabs' runs. Edges
//     are oriented with the interior on their left.
//  4. Rings are traced edge to edge. Where two tiles touch only at a corner
//     a vertex has two ways out; taking the left turn keeps the two tiles in
//     separate rings, and a ring that still comes back to such a vertex is
//     split there, so every ring is simple (OGC-valid).
//  5. Counter-clockwise rings are shells, clockwise ones holes; each ring
//     knows the component it bounds, so holes go to their shell without any
//     point-in-polygon search.
//
// Cost is O(n log n) in the number of tiles plus the boundary size; memory is
// linear. Orientation is RFC 7946's from the start (shells CCW, holes CW).
package footprint

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// Box is an axis-aligned tile footprint in its CRS.
type Box struct{ MinX, MinY, MaxX, MaxY float64 }

// DefaultTolerance is the snapping grid: tiles a few millimetres off the
// 200 m grid still share their edges.
const DefaultTolerance = 0.01

type run struct {
	lo, hi int32 // y indices, lo < hi
	comp   int32 // index of this run, then union-find parent
}

// Union returns the exact union of boxes, snapped to tol, in the boxes' CRS.
func Union(boxes []Box, tol float64) orb.MultiPolygon {
	if tol <= 0 {
		tol = DefaultTolerance
	}
	xv := make([]float64, 0, 2*len(boxes))
	yv := make([]float64, 0, 2*len(boxes))
	for _, b := range boxes {
		xv = append(xv, b.MinX, b.MaxX)
		yv = append(yv, b.MinY, b.MaxY)
	}
	xs, ys := newClusters(xv, tol), newClusters(yv, tol)
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
	ivals := make([]run, count[nslab])
	fill := slices.Clone(count[:nslab])
	for _, s := range spans {
		for x := s.xi0; x < s.xi1; x++ {
			ivals[fill[x]] = run{lo: s.yi0, hi: s.yi1}
			fill[x]++
		}
	}

	// Merge each slab's intervals into runs.
	runStart := make([]int32, nslab+1)
	runs := make([]run, 0, len(ivals)/2+1)
	for s := range nslab {
		iv := ivals[count[s]:count[s+1]]
		slices.SortFunc(iv, func(a, b run) int { return int(a.lo - b.lo) })
		for i := 0; i < len(iv); {
			lo, hi := iv[i].lo, iv[i].hi
			j := i + 1
			for j < len(iv) && iv[j].lo <= hi { // touching runs merge too
				hi = max(hi, iv[j].hi)
				j++
			}
			runs = append(runs, run{lo: lo, hi: hi, comp: int32(len(runs))})
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
				unite(parent, runStart[s]+int32(ai), runStart[s+1]+int32(bi))
			}
			if a[ai].hi < b[bi].hi {
				ai++
			} else {
				bi++
			}
		}
	}

	g := newGraph(len(runs) * 4)
	for s := range nslab {
		for i, r := range runs[runStart[s]:runStart[s+1]] {
			c := find(parent, runStart[s]+int32(i))
			g.add(vkey(int32(s), r.lo), vkey(int32(s+1), r.lo), east, c)
			g.add(vkey(int32(s+1), r.hi), vkey(int32(s), r.hi), west, c)
		}
	}
	for line := 0; line <= nslab; line++ {
		var left, right []run
		var leftBase, rightBase int32
		if line > 0 {
			leftBase = runStart[line-1]
			left = runs[leftBase:runStart[line]]
		}
		if line < nslab {
			rightBase = runStart[line]
			right = runs[rightBase:runStart[line+1]]
		}
		verticalEdges(g, int32(line), left, right, leftBase, rightBase, parent)
	}
	rings := g.trace()
	return assemble(rings, func(xi, yi int32) orb.Point {
		return orb.Point{xs.reps[xi], ys.reps[yi]}
	})
}

// clusters groups sorted values whose gaps are at most tol.
type clusters struct {
	starts []float64 // smallest value of each cluster
	reps   []float64 // the value each cluster is drawn at
}

// newClusters sorts v in place and clusters it.
func newClusters(v []float64, tol float64) clusters {
	slices.Sort(v)
	var c clusters
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

func (c clusters) len() int { return len(c.starts) }

// index is the cluster holding v, which must be one of the clustered values.
func (c clusters) index(v float64) int32 {
	i, found := slices.BinarySearch(c.starts, v)
	if !found {
		i--
	}
	return int32(i)
}

func find(parent []int32, i int32) int32 {
	for parent[i] != i {
		parent[i] = parent[parent[i]]
		i = parent[i]
	}
	return i
}

func unite(parent []int32, a, b int32) {
	ra, rb := find(parent, a), find(parent, b)
	if ra != rb {
		parent[rb] = ra
	}
}

// verticalEdges adds the boundary on one slab line: where only the left
// slab is covered the edge goes up (interior on its left), where only the
// right one is, down. llo and rlo are the still unconsumed bottoms of the
// current left and right runs.
func verticalEdges(g *graph, line int32, left, right []run, leftBase, rightBase int32, parent []int32) {
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
			g.add(vkey(line, llo), vkey(line, left[li].hi), north, find(parent, leftBase+int32(li)))
			nextLeft()
		case ri < len(right) && (li == len(left) || right[ri].hi <= llo):
			g.add(vkey(line, right[ri].hi), vkey(line, rlo), south, find(parent, rightBase+int32(ri)))
			nextRight()
		default:
			// Overlap: only the part below it is boundary.
			if llo < rlo {
				g.add(vkey(line, llo), vkey(line, rlo), north, find(parent, leftBase+int32(li)))
			} else if rlo < llo {
				g.add(vkey(line, llo), vkey(line, rlo), south, find(parent, rightBase+int32(ri)))
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
