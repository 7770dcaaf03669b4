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
//     into vertical slabs; the y clusters index the rows. The values are
//     counted in a hash table of distinct values, so that a grid's million
//     tiles, which have a few thousand distinct values, never hold their
//     two million coordinates at once (nor sort them).
//  2. Each slab gets the merged y-intervals ("runs") of the boxes crossing
//     it: from a bitmap of the covered cells when slabs x rows fit in a few
//     bytes a box (any grid delivery), else from the boxes' intervals
//     gathered per slab and merged. Runs in neighbouring slabs that share
//     a length of edge belong to the same component (union-find).
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
// Cost is O(n log n) in the number of tiles plus the boundary size. Memory
// beyond the boxes is the boundary's and the output's, plus, when an axis
// has more than maxDistinct distinct values, a sort buffer of 16 bytes a
// box, and, when slabs x rows do not fit a bitmap of 8 bytes a box, 8
// bytes per box and slab it crosses. Orientation is RFC 7946's from the
// start (shells CCW, holes CW).
package footprint

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/paulmach/orb"
)

// Box is an axis-aligned tile footprint in its CRS.
type Box struct{ MinX, MinY, MaxX, MaxY float64 }

// DefaultTolerance is the snapping grid: tiles a few millimetres off the
// 200 m grid still share their edges.
const DefaultTolerance = 0.01

// span is a run of y indices [lo, hi), packed so that spans sort by lo.
type span uint64

func mkSpan(lo, hi int32) span { return span(uint64(uint32(lo))<<32 | uint64(uint32(hi))) }
func (s span) lo() int32       { return int32(uint32(s >> 32)) }
func (s span) hi() int32       { return int32(uint32(s)) }

// Union returns the exact union of boxes, snapped to tol, in the boxes' CRS.
func Union(boxes []Box, tol float64) orb.MultiPolygon {
	return union(len(boxes), func(i int) Box { return boxes[i] }, tol)
}

// union is Union of the n boxes box(0), …, box(n-1), which it reads a few
// times instead of copying them.
func union(n int, box func(int) Box, tol float64) orb.MultiPolygon {
	tol = unionTolerance(tol)
	var scratch []float64
	xs := newAxis(n, func(i int) (float64, float64) { b := box(i); return b.MinX, b.MaxX }, tol, &scratch)
	ys := newAxis(n, func(i int) (float64, float64) { b := box(i); return b.MinY, b.MaxY }, tol, &scratch)
	if xs.len() < 2 || ys.len() < 2 {
		return nil
	}
	runs, runStart := slabRuns(n, box, &xs, &ys)
	return runsOutline(runs, runStart, &xs, &ys)
}

func unionTolerance(tol float64) float64 {
	if tol <= 0 {
		return DefaultTolerance
	}
	return tol
}

// runsOutline is steps 2 (components) to 5 on the runs of step 2.
func runsOutline(runs []span, runStart []int32, xs, ys *clusters) orb.MultiPolygon {
	if len(runs) == 0 {
		return nil // every box thinner than the tolerance: no area
	}
	// Each phase's input is dead once the next has it, for the GC to take.
	rings := boundary(runs, runStart).trace()
	return assemble(rings, func(xi, yi int32) orb.Point {
		return orb.Point{xs.reps[xi], ys.reps[yi]}
	})
}

// slabRuns is step 2 without the components: the runs of every slab, in
// one array, slab s's at runs[runStart[s]:runStart[s+1]] by increasing y.
func slabRuns(n int, box func(int) Box, xs, ys *clusters) ([]span, []int32) {
	if bitmapFits(n, xs, ys) {
		return bitmapRuns(n, box, xs, ys)
	}
	return mergedRuns(n, box, xs, ys)
}

// bitmapFits says whether the n boxes' cells fit a bitmap of a few bytes a
// box (any grid delivery does), else their intervals are merged per slab.
func bitmapFits(n int, xs, ys *clusters) bool {
	return (xs.len()-1)*((ys.len()-1+63)/64) <= max(1<<17, n)
}

// bitmapRuns reads the runs off a bitmap of the covered cells.
func bitmapRuns(n int, box func(int) Box, xs, ys *clusters) ([]span, []int32) {
	m := newCellBitmap(xs, ys)
	for i := range n {
		m.add(box(i))
	}
	return m.runs()
}

// cellBitmap is the bitmap of the cells covered by boxes added one by one,
// words uint64s a slab.
type cellBitmap struct {
	xs, ys       *clusters
	nslab, words int
	cells        []uint64
}

func newCellBitmap(xs, ys *clusters) *cellBitmap {
	nslab, words := xs.len()-1, (ys.len()-1+63)/64
	return &cellBitmap{xs: xs, ys: ys, nslab: nslab, words: words, cells: make([]uint64, nslab*words)}
}

// add marks b's cells. It is false for a box with a value below every
// cluster, which no box among those clustered has: the boxes changed.
func (m *cellBitmap) add(b Box) bool {
	x0, x1 := m.xs.index(b.MinX), m.xs.index(b.MaxX)
	y0, y1 := m.ys.index(b.MinY), m.ys.index(b.MaxY)
	switch {
	case x0 >= x1 || y0 >= y1:
		return true // thinner than the tolerance: no area
	case x0 < 0 || y0 < 0:
		return false
	}
	w := m.words
	for x := int(x0); x < int(x1); x++ {
		setBits(m.cells[x*w:(x+1)*w], int(y0), int(y1))
	}
	return true
}

// runs reads the runs off the bitmap.
func (m *cellBitmap) runs() ([]span, []int32) {
	runStart := make([]int32, m.nslab+1)
	var runs []span
	for s := range m.nslab {
		col := m.cells[s*m.words : (s+1)*m.words]
		for at := nextBit(col, 0, 0); at >= 0; {
			end := nextBit(col, at, ^uint64(0))
			if end < 0 {
				end = len(col) * 64
			}
			runs = append(runs, mkSpan(int32(at), int32(end)))
			at = nextBit(col, end, 0)
		}
		runStart[s+1] = int32(len(runs))
	}
	return runs, runStart
}

// setBits sets bits [lo, hi) of row.
func setBits(row []uint64, lo, hi int) {
	for lo < hi {
		w, b := lo/64, lo%64
		m := ^uint64(0) << b
		if hi < (w+1)*64 {
			m &= ^uint64(0) >> (64 - hi%64)
		}
		row[w] |= m
		lo = (w + 1) * 64
	}
}

// nextBit is the index of the first bit from at on that is set (flip 0)
// or clear (flip all ones), -1 if none.
func nextBit(row []uint64, at int, flip uint64) int {
	w := at / 64
	if w >= len(row) {
		return -1
	}
	v := (row[w] ^ flip) &^ (1<<(at%64) - 1)
	for v == 0 {
		w++
		if w == len(row) {
			return -1
		}
		v = row[w] ^ flip
	}
	return w*64 + bits.TrailingZeros64(v)
}

// mergedRuns gathers each slab's box intervals (one array, indexed by slab)
// and merges them into runs in place.
func mergedRuns(n int, box func(int) Box, xs, ys *clusters) ([]span, []int32) {
	m := newSlabIntervals(xs, ys)
	for i := range n {
		m.count(box(i))
	}
	m.layout()
	for i := range n {
		m.put(box(i))
	}
	return m.runs()
}

// slabIntervals gathers the boxes' y-intervals per slab in two rounds over
// the boxes: count, then put; 8 bytes per box and slab it crosses.
type slabIntervals struct {
	xs, ys  *clusters
	nslab   int
	start   []int32 // slab s's intervals are ivals[start[s]:start[s+1]]
	ivals   []span
	fill    []int32
	foreign bool // a box with a value not clustered, or put where none was counted
}

func newSlabIntervals(xs, ys *clusters) *slabIntervals {
	nslab := xs.len() - 1
	return &slabIntervals{xs: xs, ys: ys, nslab: nslab, start: make([]int32, nslab+1)}
}

// cells is b's slabs [x0, x1) and rows [y0, y1), or false if it has no
// area or a value below every cluster, which no box clustered has.
func (m *slabIntervals) cells(b Box) (x0, x1, y0, y1 int32, ok bool) {
	x0, x1 = m.xs.index(b.MinX), m.xs.index(b.MaxX)
	y0, y1 = m.ys.index(b.MinY), m.ys.index(b.MaxY)
	if x0 >= x1 || y0 >= y1 || x0 < 0 || y0 < 0 {
		m.foreign = m.foreign || x0 < x1 && y0 < y1
		return 0, 0, 0, 0, false
	}
	return x0, x1, y0, y1, true
}

func (m *slabIntervals) count(b Box) {
	if x0, x1, _, _, ok := m.cells(b); ok {
		for x := x0; x < x1; x++ {
			m.start[x+1]++
		}
	}
}

// layout sizes the intervals once every box is counted.
func (m *slabIntervals) layout() {
	for i := 1; i <= m.nslab; i++ {
		m.start[i] += m.start[i-1]
	}
	m.ivals = make([]span, m.start[m.nslab])
	m.fill = slices.Clone(m.start[:m.nslab])
}

func (m *slabIntervals) put(b Box) {
	x0, x1, y0, y1, ok := m.cells(b)
	if !ok {
		return
	}
	for x := x0; x < x1; x++ {
		if m.fill[x] == m.start[x+1] {
			m.foreign = true
			return
		}
		m.ivals[m.fill[x]] = mkSpan(y0, y1)
		m.fill[x]++
	}
}

// runs merges each slab's intervals into runs, in place.
func (m *slabIntervals) runs() ([]span, []int32) {
	m.fill = nil
	ivals, count, nslab := m.ivals, m.start, m.nslab
	// Runs overwrite the intervals they come from, never ahead of them.
	runs := ivals[:0]
	runStart := count // count[s] is read before runStart[s] is written
	for s := range nslab {
		iv := ivals[count[s]:count[s+1]]
		runStart[s] = int32(len(runs))
		slices.Sort(iv)
		for i := 0; i < len(iv); {
			lo, hi := iv[i].lo(), iv[i].hi()
			j := i + 1
			for j < len(iv) && iv[j].lo() <= hi { // touching runs merge too
				hi = max(hi, iv[j].hi())
				j++
			}
			runs = append(runs, mkSpan(lo, hi))
			i = j
		}
	}
	runStart[nslab] = int32(len(runs))
	if cap(runs) > 2*len(runs) {
		runs = slices.Clone(runs) // and the intervals can go
	}
	m.ivals, m.start = nil, nil
	return runs, runStart
}

// boundary is steps 2 (components) and 3: the boundary edges of the runs.
func boundary(runs []span, runStart []int32) *graph {
	nslab := len(runStart) - 1
	// Components: runs of neighbouring slabs sharing an edge length.
	parent := make([]int32, len(runs))
	for i := range parent {
		parent[i] = int32(i)
	}
	for s := 0; s+1 < nslab; s++ {
		a, b := runs[runStart[s]:runStart[s+1]], runs[runStart[s+1]:runStart[s+2]]
		ai, bi := 0, 0
		for ai < len(a) && bi < len(b) {
			if max(a[ai].lo(), b[bi].lo()) < min(a[ai].hi(), b[bi].hi()) {
				unite(parent, runStart[s]+int32(ai), runStart[s+1]+int32(bi))
			}
			if a[ai].hi() < b[bi].hi() {
				ai++
			} else {
				bi++
			}
		}
	}

	// Edges are counted first, so that they are stored once and exactly.
	emit := func(g *graph) {
		for s := range nslab {
			for i, r := range runs[runStart[s]:runStart[s+1]] {
				c := find(parent, runStart[s]+int32(i))
				g.add(int32(s), r.lo(), r.lo(), east, c)
				g.add(int32(s+1), r.hi(), r.hi(), west, c)
			}
		}
		for line := 0; line <= nslab; line++ {
			var left, right []span
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
	}
	counter := &graph{counting: true}
	emit(counter)
	g := &graph{edges: make([]edge, 0, counter.count)}
	emit(g)
	g.index(nslab + 1)
	return g
}

// clusters groups sorted values whose gaps are at most tol.
type clusters struct {
	starts []float64 // smallest value of each cluster
	reps   []float64 // the value each cluster is drawn at

	// A lookup table for index, when starts are finite and increasing:
	// bucket b = ⌊(v-lo)·inv⌋ holds starts[first[b]:first[b+1]].
	first   []int32
	lo, inv float64
}

// maxDistinct is the most distinct values of an axis counted before
// sorting them all at once instead: counting pays where many are equal.
const maxDistinct = 1 << 16

// newAxis clusters the 2n values val(0), …, val(n-1) of an axis. The sort
// buffer of the general case, 16 bytes a box, is kept in scratch for the
// other axis.
func newAxis(n int, val func(int) (float64, float64), tol float64, scratch *[]float64) clusters {
	if c, ok := countClusters(n, val, tol); ok {
		c.accelerate()
		return c
	}
	v := (*scratch)[:0]
	if cap(v) < 2*n {
		v = make([]float64, 0, 2*n)
	}
	for i := range n {
		lo, hi := val(i)
		v = append(v, lo, hi)
	}
	*scratch = v
	return sortedAxis(v, tol)
}

// sortedAxis is newAxis' general case on the values v, which it sorts.
func sortedAxis(v []float64, tol float64) clusters {
	c := newClusters(v, tol)
	c.accelerate()
	return c
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

// countClusters is newClusters on the distinct values and their counts. It
// gives up (false) where the result could differ from sorting all the
// values: a non-finite value or tolerance, both signs of zero (equal, but
// drawn differently), or more than maxDistinct distinct values.
func countClusters(n int, val func(int) (float64, float64), tol float64) (clusters, bool) {
	if !(tol > 0) {
		return clusters{}, false
	}
	var t valueCounts
	for i := range n {
		lo, hi := val(i)
		if !t.add(math.Float64bits(lo)) || !t.add(math.Float64bits(hi)) {
			return clusters{}, false
		}
	}
	return t.clusters(tol)
}

// clusters is countClusters once every value is counted; it empties t.
func (t *valueCounts) clusters(tol float64) (clusters, bool) {
	if t.zeros == 3 || !(tol > 0) {
		return clusters{}, false
	}
	type counted struct {
		v float64
		n uint32
	}
	vals := make([]counted, 0, t.n)
	for k, b := range t.keys {
		if t.counts[k] > 0 {
			vals = append(vals, counted{math.Float64frombits(b), t.counts[k]})
		}
	}
	*t = valueCounts{}
	slices.SortFunc(vals, func(a, b counted) int { return cmp.Compare(a.v, b.v) })
	var c clusters
	for i := 0; i < len(vals); {
		total := int(vals[i].n)
		j := i + 1
		for j < len(vals) && vals[j].v-vals[j-1].v <= tol {
			total += int(vals[j].n)
			j++
		}
		// The median is the value at rank (total-1)/2 within the cluster.
		k, seen := i, int(vals[i].n)
		for seen <= (total-1)/2 {
			k++
			seen += int(vals[k].n)
		}
		c.starts = append(c.starts, vals[i].v)
		c.reps = append(c.reps, math.Round(vals[k].v/tol)*tol)
		i = j
	}
	return c, true
}

// valueCounts counts finite float64 values by their bits, in an
// open-addressing hash table.
type valueCounts struct {
	keys   []uint64
	counts []uint32 // 0 for an empty slot
	n      int      // distinct values
	shift  uint     // 64 - log2(len(keys))
	last   int      // slot of the previous value: a row's boxes share theirs
	zeros  uint8    // 1: +0 seen, 2: -0 seen
}

// add counts the value of bits b; false if it is not finite or one
// distinct value too many.
func (t *valueCounts) add(b uint64) bool {
	if t.keys != nil && t.keys[t.last] == b && t.counts[t.last] > 0 {
		t.counts[t.last]++
		return true
	}
	const exp = 0x7ff << 52
	switch {
	case b&exp == exp:
		return false // NaN or infinite
	case b<<1 == 0:
		t.zeros |= 1 << (b >> 63)
	}
	if 2*(t.n+1) > len(t.keys) {
		if t.n+1 > maxDistinct {
			return false
		}
		t.grow()
	}
	mask := len(t.keys) - 1
	for k := int((b * 0x9e3779b97f4a7c15) >> t.shift); ; k = (k + 1) & mask {
		switch {
		case t.counts[k] == 0:
			t.keys[k], t.counts[k] = b, 1
			t.n++
			t.last = k
			return true
		case t.keys[k] == b:
			t.counts[k]++
			t.last = k
			return true
		}
	}
}

// grow doubles the table (1024 slots at first) and rehashes it.
func (t *valueCounts) grow() {
	keys, counts := t.keys, t.counts
	size := max(1024, 2*len(keys))
	t.keys, t.counts = make([]uint64, size), make([]uint32, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	for i, c := range counts {
		if c == 0 {
			continue
		}
		k := int((keys[i] * 0x9e3779b97f4a7c15) >> t.shift)
		for t.counts[k] != 0 {
			k = (k + 1) & mask
		}
		t.keys[k], t.counts[k] = keys[i], c
		if i == t.last {
			t.last = k
		}
	}
}

func (c clusters) len() int { return len(c.starts) }

// accelerate builds index's lookup table when starts are finite, strictly
// increasing and many enough for it to pay.
func (c *clusters) accelerate() {
	m := len(c.starts)
	if m < 16 {
		return
	}
	lo, hi := c.starts[0], c.starts[m-1]
	inv := float64(m) / (hi - lo)
	if !finite(lo) || !finite(hi) || !(inv > 0) || !finite(inv) {
		return
	}
	for i := 1; i < m; i++ {
		if !(c.starts[i-1] < c.starts[i]) {
			return
		}
	}
	c.lo, c.inv = lo, inv
	c.first = make([]int32, m+1)
	// first[b] is how many starts fall in buckets before b.
	for _, s := range c.starts {
		c.first[c.bucket(s)+1]++
	}
	for b := 1; b <= m; b++ {
		c.first[b] += c.first[b-1]
	}
}

// bucket is v's bucket: non-decreasing in v, so a start in an earlier
// bucket is below v and one in a later bucket above it.
func (c *clusters) bucket(v float64) int {
	f := (v - c.lo) * c.inv
	switch nb := len(c.first) - 1; {
	case !(f > 0):
		return 0
	case f >= float64(nb):
		return nb - 1
	default:
		return int(f)
	}
}

// index is the cluster holding v, which must be one of the clustered values:
// the last start at or below it.
func (c *clusters) index(v float64) int32 {
	if c.first == nil {
		i, found := slices.BinarySearch(c.starts, v)
		if !found {
			i--
		}
		return int32(i)
	}
	b := c.bucket(v)
	lo, hi := int(c.first[b]), int(c.first[b+1])
	for hi-lo > 8 {
		if mid := int(uint(lo+hi) >> 1); c.starts[mid] <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for lo < hi && c.starts[lo] <= v {
		lo++
	}
	return int32(lo - 1)
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
func verticalEdges(g *graph, line int32, left, right []span, leftBase, rightBase int32, parent []int32) {
	li, ri := 0, 0
	var llo, rlo int32
	if len(left) > 0 {
		llo = left[0].lo()
	}
	if len(right) > 0 {
		rlo = right[0].lo()
	}
	nextLeft := func() {
		li++
		if li < len(left) {
			llo = left[li].lo()
		}
	}
	nextRight := func() {
		ri++
		if ri < len(right) {
			rlo = right[ri].lo()
		}
	}
	for li < len(left) || ri < len(right) {
		switch {
		case li < len(left) && (ri == len(right) || left[li].hi() <= rlo):
			g.add(line, llo, left[li].hi(), north, find(parent, leftBase+int32(li)))
			nextLeft()
		case ri < len(right) && (li == len(left) || right[ri].hi() <= llo):
			g.add(line, right[ri].hi(), rlo, south, find(parent, rightBase+int32(ri)))
			nextRight()
		default:
			// Overlap: only the part below it is boundary.
			if llo < rlo {
				g.add(line, llo, rlo, north, find(parent, leftBase+int32(li)))
			} else if rlo < llo {
				g.add(line, llo, rlo, south, find(parent, rightBase+int32(ri)))
			}
			top := min(left[li].hi(), right[ri].hi())
			if left[li].hi() == top {
				nextLeft()
			} else {
				llo = top
			}
			if right[ri].hi() == top {
				nextRight()
			} else {
				rlo = top
			}
		}
	}
}
