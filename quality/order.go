package quality

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// maxCoord: a coordinate beyond is on no Earth in any CRS; such a box is
// left out of the geometric checks, and every coordinate kept divides by
// a tolerance without leaving int64 (see group.tol).
const maxCoord = 1e12

// finite says whether b is a box the geometric checks can use: finite,
// not inverted nor flat, within maxCoord.
func finite(b [4]float64) bool {
	for _, v := range b {
		if !(math.Abs(v) < maxCoord) { // false for NaN too
			return false
		}
	}
	return b[2] > b[0] && b[3] > b[1]
}

// compareTiles is a total order on what a tile is, path first: two tiles
// it calls equal are the same tile, so any choice made in this order
// (the first copy, which tiles are sampled, which pairs fit a budget) is
// the same whatever order the caller lists them in.
func compareTiles(a, b *Tile) int {
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	x, y := a.attrs(), b.attrs()
	if c := cmp.Compare(x.EPSG, y.EPSG); c != 0 {
		return c
	}
	for k := range a.Box {
		if c := cmp.Compare(a.Box[k], b.Box[k]); c != 0 {
			return c
		}
	}
	return cmp.Or(compareAttrs(x, y), cmp.Compare(a.Size, b.Size))
}

// compareAttrs orders attributes; tiles of one delivery mostly share them.
func compareAttrs(x, y *Attrs) int {
	if x == y {
		return 0
	}
	return cmp.Or(cmp.Compare(x.Width, y.Width), cmp.Compare(x.Height, y.Height), cmp.Compare(x.Resolution, y.Resolution),
		strings.Compare(x.Format, y.Format), strings.Compare(x.Compression, y.Compression), strings.Compare(x.Bands, y.Bands))
}

// member is one tile of a group: its box on the group's tolerance lattice
// (corner / tol, rounded) and its index in the caller's slice. Boxes equal
// on the lattice are the same ground: that is what makes a duplicate.
type member struct {
	key  [4]int64
	tile int32
}

// group is the tiles of one CRS: their grid, overlaps and holes are
// measured among themselves.
type group struct {
	epsg    int
	tol     float64 // the tolerance in the CRS's units
	inv     float64 // 1 / tol: key = round(v * inv)
	members []member
	// grid is the grid most tiles follow; hasGrid false without one.
	grid    grid
	hasGrid bool
	// off[i] says members[i] departs from the grid; rep[i] that it is the
	// first of its box (the others are its duplicates).
	off []bool
	rep []bool
}

func (g *group) key(v float64) int64 { return int64(math.Round(v * g.inv)) }

// order files the tiles with a finite box by CRS, each group sorted by
// lattice box then compareTiles, so that copies of one box are adjacent,
// the smallest path first, and every pass over a group is in one order
// whatever the caller's. c.group says each tile's group.
func (c *checker) order() {
	n := min(len(c.tiles), math.MaxInt32) // an int32 indexes the tiles
	c.tiles = c.tiles[:n]
	c.group = make([]int32, n)
	counts := map[int32]int{}
	for i := range c.tiles {
		if t := &c.tiles[i]; finite(t.Box) {
			counts[t.attrs().EPSG]++
		}
	}
	codes := sortedKeys(counts)
	index := make(map[int32]int32, len(codes))
	members := make([][]int32, len(codes))
	for k, code := range codes {
		index[code] = int32(k)
		members[k] = make([]int32, 0, counts[code])
	}
	for i := range c.tiles {
		c.group[i] = -1
		if t := &c.tiles[i]; finite(t.Box) {
			k := index[t.attrs().EPSG]
			c.group[i] = k
			members[k] = append(members[k], int32(i))
		}
	}
	for k, code := range codes {
		c.groups = append(c.groups, newGroup(c.tiles, int(code), members[k], c.opts.Tolerance))
		members[k] = nil
	}
}

// inOrder sorts tiles (indexes) by compareTiles: the passes that walk the
// caller's slice in its own order, for speed, report in this one.
func (c *checker) inOrder(idx []int32) []int32 {
	slices.SortFunc(idx, func(a, b int32) int { return compareTiles(&c.tiles[a], &c.tiles[b]) })
	return idx
}

func newGroup(tiles []Tile, epsg int, idx []int32, asked float64) *group {
	g := &group{epsg: epsg}
	g.tol = groupTolerance(tiles, idx, asked)
	g.inv = 1 / g.tol
	g.members = make([]member, len(idx))
	for k, i := range idx {
		b := &tiles[i].Box
		g.members[k] = member{key: [4]int64{g.key(b[0]), g.key(b[1]), g.key(b[2]), g.key(b[3])}, tile: i}
	}
	slices.SortFunc(g.members, func(a, b member) int {
		for k := range a.key {
			if c := cmp.Compare(a.key[k], b.key[k]); c != 0 {
				return c
			}
		}
		return compareTiles(&tiles[a.tile], &tiles[b.tile])
	})
	g.grid, g.hasGrid = learnGrid(g)
	return g
}

// groupTolerance is the tolerance for one CRS's tiles: the one asked, but
// never more than a thousandth of their median side, so that tiles in
// degrees are not all "on the same spot"; and never so fine that a
// coordinate over it leaves the 2^40 an int64 lattice key and a float64
// hold exactly.
func groupTolerance(tiles []Tile, idx []int32, asked float64) float64 {
	sides := make([]float64, len(idx))
	maxAbs := 0.0
	for k, i := range idx {
		b := &tiles[i].Box
		sides[k] = min(b[2]-b[0], b[3]-b[1])
		maxAbs = max(maxAbs, math.Abs(b[0]), math.Abs(b[1]), math.Abs(b[2]), math.Abs(b[3]))
	}
	median := nth(sides, len(sides)/2)
	return max(min(asked, median/1000), maxAbs*0x1p-40, 1e-300)
}

// nth is the k-th smallest of s (0-based), reordering s: a quickselect
// whose pivot is the median of three, falling back on a sort when the
// pivots go badly, so that a median costs O(n), never O(n²).
func nth[T cmp.Ordered](s []T, k int) T {
	lo, hi := 0, len(s) // the k-th is in s[lo:hi]
	for budget := 64; hi-lo > 16; budget-- {
		if budget == 0 {
			slices.Sort(s[lo:hi])
			return s[k]
		}
		mid := lo + (hi-lo)/2
		pivot := medianOf3(s[lo], s[mid], s[hi-1])
		// Three-way partition: < pivot, == pivot, > pivot.
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch cmp.Compare(s[i], pivot) {
			case -1:
				s[lt], s[i] = s[i], s[lt]
				lt++
				i++
			case 1:
				gt--
				s[i], s[gt] = s[gt], s[i]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return pivot
		}
	}
	slices.Sort(s[lo:hi])
	return s[k]
}

func medianOf3[T cmp.Ordered](a, b, c T) T {
	if cmp.Less(b, a) {
		a, b = b, a
	}
	if cmp.Less(c, b) {
		b = c
		if cmp.Less(b, a) {
			b = a
		}
	}
	return b
}
