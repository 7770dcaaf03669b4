package quality

import (
	"cmp"
	"fmt"
	"slices"
)

// duplicates names the tiles whose box is another's on the group's
// lattice: the same ground delivered twice, in two folders or two
// formats. Copies are adjacent in the group's order, the smallest path
// first: each later copy is paired with that first one only, so the
// first is not blamed and n copies make n-1 warnings, not n²/2 pairs.
// g.rep marks the first of each box: only those take part in overlaps,
// the copies would repeat them.
func (c *checker) duplicates(g *group) {
	g.rep = make([]bool, len(g.members))
	first := 0
	for i, m := range g.members {
		if i == 0 || m.key != g.members[first].key {
			first, g.rep[i] = i, true
			continue
		}
		c.reportDuplicate(&c.tiles[m.tile], c.tiles[g.members[first].tile].Path)
	}
}

// reportDuplicate names t, a copy of the tile at orig.
func (c *checker) reportDuplicate(t *Tile, orig string) {
	c.report(Duplicate, t.Path, orig, func() Warning {
		return Warning{EPSG: int(t.attrs().EPSG), Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("It covers exactly the same ground as %s: the same tile delivered twice.", orig)}
	})
}

// The overlap search's bounds. A tile is filed under the cells it covers
// when they are few (maxCellsPerTile, and filedPerTile on average);
// others (a mosaic among tiles, a hostile header) are "big": compared with
// each other and with the filed tiles of their columns, up to maxBig of
// them. The pairs compared are bounded by the budget; past it, or past
// maxBig, the listing is partial and the count comes from countOverlaps,
// exact whatever the number of pairs.
const (
	maxCellsPerTile = 64
	filedPerTile    = 4
	maxBig          = 2048
	pairsPerTile    = 16
	basePairs       = 1 << 20
)

// span is a tile's box on the group's lattice with its upper edges one
// step lower: two tiles overlap by more than a sliver of the tolerance's
// width when their common part is more than one lattice step wide and
// high, that is when their spans meet (x0 < other's x1 and other's x0 <
// x1, the same in y). Integers, so the search, the count and the tests'
// pair by pair comparison agree exactly.
type span struct{ x0, y0, x1, y1 int64 }

func spanOf(key [4]int64) (span, bool) {
	s := span{key[0], key[1], key[2] - 1, key[3] - 1}
	return s, s.x0 < s.x1 && s.y0 < s.y1 // else thinner than the tolerance
}

func (a span) meets(b span) bool { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 }

// cells is the overlap search's grid on the lattice: the group's grid,
// or square cells of the median side from the origin when the tiles
// follow none.
type cells struct{ ox, oy, sx, sy int64 }

// at is the cell of the lattice point (x, y).
func (cs cells) at(x, y int64) [2]int64 {
	return [2]int64{floorDiv(x-cs.ox, cs.sx), floorDiv(y-cs.oy, cs.sy)}
}

// cellsOf is the first and last cells a span covers (its points x0 to
// x1-1: the common part of two meeting spans starts at a point of both).
func (cs cells) cellsOf(s span) (lo, hi [2]int64) {
	return cs.at(s.x0, s.y0), cs.at(s.x1-1, s.y1-1)
}

// filed is a tile (its position in the group) filed under one cell.
type filed struct {
	cell [2]int64
	pos  int32
}

// search finds the overlapping pairs of one group.
type search struct {
	c        *checker
	g        *group
	cells    cells
	filed    []filed
	big      []int32
	budget   int
	complete bool // every overlapping pair was found
	found    int
}

// overlaps finds the tiles of one CRS covering the same ground partly,
// with the area. Only tiles sharing a cell are compared, each pair in one
// cell only (the cell of their common part's lower-left corner), so a
// regular delivery costs O(n log n); the count stays exact when a hostile
// one exhausts the budget.
func (c *checker) overlaps(g *group) {
	s := &search{c: c, g: g, complete: true, cells: searchCells(g)}
	s.budget = c.opts.pairBudget
	if s.budget <= 0 {
		s.budget = pairsPerTile*len(g.members) + basePairs
	}
	s.file()
	s.inCells()
	s.bigOnes()
	n := s.found
	if !s.complete {
		n = countOverlaps(s.spans())
	}
	c.found(Overlap, n)
}

func searchCells(g *group) cells {
	if g.hasGrid {
		return cells{g.grid.ox, g.grid.oy, g.grid.sx, g.grid.sy}
	}
	sides := make([]int64, len(g.members))
	for i, m := range g.members {
		sides[i] = max(m.key[2]-m.key[0], m.key[3]-m.key[1])
	}
	side := max(nth(sides, len(sides)/2), 1)
	return cells{sx: side, sy: side}
}

func (s *search) span(pos int32) (span, bool) { return spanOf(s.g.members[pos].key) }

// file files each first-of-its-box tile under the cells its span covers.
// fileAlone says whether a tile over cols x rows cells is compared with
// every other rather than filed, had cells filed before it, limit in all.
func fileAlone(cols, rows int64, had, limit int) bool {
	return cols > maxCellsPerTile || rows > maxCellsPerTile || cols*rows > maxCellsPerTile || had+int(cols*rows) > limit
}

func (s *search) file() {
	limit := cellLimit(len(s.g.members))
	s.filed = make([]filed, 0, len(s.g.members)+len(s.g.members)/8) // on a grid, one cell each
	for i := range s.g.members {
		sp, ok := s.span(int32(i))
		if !s.g.rep[i] || !ok {
			continue
		}
		lo, hi := s.cells.cellsOf(sp)
		cols, rows := hi[0]-lo[0]+1, hi[1]-lo[1]+1
		if fileAlone(cols, rows, len(s.filed), limit) {
			if len(s.big) < maxBig {
				s.big = append(s.big, int32(i))
			} else {
				s.complete = false
			}
			continue
		}
		for col := lo[0]; col <= hi[0]; col++ {
			for row := lo[1]; row <= hi[1]; row++ {
				s.filed = append(s.filed, filed{[2]int64{col, row}, int32(i)})
			}
		}
	}
	slices.SortFunc(s.filed, func(a, b filed) int {
		return cmp.Or(cmp.Compare(a.cell[0], b.cell[0]), cmp.Compare(a.cell[1], b.cell[1]), cmp.Compare(a.pos, b.pos))
	})
}

// inCells compares the tiles sharing each cell. A cell whose pairs would
// overdraw the budget is skipped whole, so one hostile cell does not hide
// the overlaps of the others.
func (s *search) inCells() {
	for start := 0; start < len(s.filed); {
		end := start + 1
		for end < len(s.filed) && s.filed[end].cell == s.filed[start].cell {
			end++
		}
		k := end - start
		if pairs := k * (k - 1) / 2; pairs > s.budget {
			s.complete = false
		} else {
			s.budget -= pairs
			for a := start; a < end; a++ {
				for b := a + 1; b < end; b++ {
					s.pair(s.filed[a].pos, s.filed[b].pos, &s.filed[a].cell)
				}
			}
		}
		start = end
	}
}

// bigOnes compares the big tiles with each other, and with the filed
// tiles of the columns they span.
func (s *search) bigOnes() {
	for x, a := range s.big {
		for _, b := range s.big[x+1:] {
			if !s.spend() {
				return
			}
			s.pair(a, b, nil)
		}
		sp, _ := s.span(a)
		lo, hi := s.cells.cellsOf(sp)
		k, _ := slices.BinarySearchFunc(s.filed, lo[0], func(f filed, col int64) int { return cmp.Compare(f.cell[0], col) })
		for ; k < len(s.filed) && s.filed[k].cell[0] <= hi[0]; k++ {
			if !s.spend() {
				return
			}
			if row := s.filed[k].cell[1]; row >= lo[1] && row <= hi[1] {
				s.pair(a, s.filed[k].pos, &s.filed[k].cell)
			}
		}
	}
}

func (s *search) spend() bool {
	if s.budget <= 0 {
		s.complete = false
		return false
	}
	s.budget--
	return true
}

// pair reports a and b if they overlap; with a cell, only if that cell
// is the pair's own (the one its common part's lower-left corner is in),
// so that a pair sharing several cells is reported once.
func (s *search) pair(a, b int32, cell *[2]int64) {
	sa, _ := s.span(a)
	sb, _ := s.span(b)
	if !s.cells.found(sa, sb, cell) {
		return
	}
	s.found++
	s.report(a, b)
}

// found says whether spans a and b overlap and, looked for in cell (nil
// for every pair compared once), whether that cell is where this pair is
// counted: the one holding the overlap's lower-left corner.
func (cs cells) found(a, b span, cell *[2]int64) bool {
	if !a.meets(b) {
		return false
	}
	return cell == nil || cs.at(max(a.x0, b.x0), max(a.y0, b.y0)) == *cell
}

// report lists an overlap, blamed on the tile off the grid when only one
// is, else on the later path: the earlier delivery is not blamed.
func (s *search) report(a, b int32) {
	ta, tb := &s.c.tiles[s.g.members[a].tile], &s.c.tiles[s.g.members[b].tile]
	if blamesFirst(s.g.off[a], s.g.off[b], s.later(a, b)) {
		s.c.reportOverlap(ta, tb)
	} else {
		s.c.reportOverlap(tb, ta)
	}
}

// blamesFirst says whether an overlap of a and b is a's fault: a alone
// is off the grid, or both or neither are and a comes later.
func blamesFirst(offA, offB, aLater bool) bool {
	return offA != offB && offA || offA == offB && aLater
}

func (c *checker) reportOverlap(blamed, other *Tile) {
	c.offer(Overlap, blamed.Path, other.Path, func() Warning {
		p, q := blamed.Box, other.Box
		in := [4]float64{max(p[0], q[0]), max(p[1], q[1]), min(p[2], q[2]), min(p[3], q[3])}
		w, h := in[2]-in[0], in[3]-in[1]
		area := roundSig(w*h, 6)
		return Warning{AreaM2: area, EPSG: int(blamed.attrs().EPSG), Box: boxPtr(in),
			Detail: fmt.Sprintf("It covers %s m² (%s x %s m) of %s.", num(area), num(w), num(h), other.Path)}
	})
}

// later says whether a's path comes after b's (by position in the group
// for two tiles of one path, which the group's order decides).
func (s *search) later(a, b int32) bool {
	pa, pb := s.c.tiles[s.g.members[a].tile].Path, s.c.tiles[s.g.members[b].tile].Path
	return pa > pb || pa == pb && a > b
}

// spans is the spans of every tile that took part in the search.
func (s *search) spans() []span {
	out := make([]span, 0, len(s.g.members))
	for i := range s.g.members {
		if sp, ok := s.span(int32(i)); ok && s.g.rep[i] {
			out = append(out, sp)
		}
	}
	return out
}

// countOverlaps counts the pairs of spans that meet, without pairing
// them: a sweep along x in the order of the spans' x0, keeping the spans
// the sweep line crosses, with two Fenwick trees over y that count those
// entirely below or entirely above each new span. O(n log n) however
// many pairs there are (n stacked tiles make n²/2).
func countOverlaps(spans []span) int {
	ys := make([]int64, 0, 2*len(spans))
	for _, s := range spans {
		ys = append(ys, s.y0, s.y1)
	}
	slices.Sort(ys)
	ys = slices.Compact(ys)
	at := func(y int64) int { i, _ := slices.BinarySearch(ys, y); return i }

	byX0, byX1 := make([]int32, len(spans)), make([]int32, len(spans))
	for i := range spans {
		byX0[i], byX1[i] = int32(i), int32(i)
	}
	slices.SortFunc(byX0, func(a, b int32) int { return cmp.Compare(spans[a].x0, spans[b].x0) })
	slices.SortFunc(byX1, func(a, b int32) int { return cmp.Compare(spans[a].x1, spans[b].x1) })

	lows, highs := newFenwick(len(ys)), newFenwick(len(ys)) // y0s, y1s of the active spans
	active, total, gone := 0, 0, 0
	for _, i := range byX0 {
		r := spans[i]
		// A span ending at or before r starts before r: it was added.
		for ; gone < len(byX1) && spans[byX1[gone]].x1 <= r.x0; gone++ {
			old := spans[byX1[gone]]
			lows.add(at(old.y0), -1)
			highs.add(at(old.y1), -1)
			active--
		}
		below := highs.prefix(at(r.y0) + 1)     // y1 ≤ r.y0
		above := active - lows.prefix(at(r.y1)) // y0 ≥ r.y1
		total += active - below - above
		lows.add(at(r.y0), 1)
		highs.add(at(r.y1), 1)
		active++
	}
	return total
}

// fenwick counts values by index, with prefix sums in O(log n).
type fenwick []int

func newFenwick(n int) fenwick { return make(fenwick, n+1) }

func (f fenwick) add(i, d int) {
	for i++; i < len(f); i += i & -i {
		f[i] += d
	}
}

// prefix is the count at indexes < i.
func (f fenwick) prefix(i int) int {
	n := 0
	for ; i > 0; i -= i & -i {
		n += f[i]
	}
	return n
}
