package quality

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// grid is a CRS's tile grid on the group's lattice (units of the
// tolerance): cells of sx by sy, the cell (0, 0) with its lower-left
// corner at (ox, oy), 0 ≤ ox < sx, 0 ≤ oy < sy.
type grid struct {
	ox, oy int64
	sx, sy int64
}

// learnGrid finds the grid most of a group's tiles follow: the most
// common width and height, then the most common phase of the lower-left
// corner modulo them. Each must be shared by more than half the tiles
// (within one lattice step, so that corners written a few millimetres
// apart by different software agree): without a majority there is no
// grid to measure tiles against, and nothing is called off it or missing.
func learnGrid(g *group) (grid, bool) {
	gr, ok, _ := learnGridOver(len(g.members), func(yield func([4]int64)) {
		for _, m := range g.members {
			yield(m.key)
		}
	}, 0)
	return gr, ok
}

// learnGridOver is learnGrid of the n lattice boxes keys yields, read
// twice. With limit > 0 a tally of more distinct values gives up: over.
func learnGridOver(n int, keys func(yield func([4]int64)), limit int) (gr grid, ok, over bool) {
	widths, heights := newTally(), newTally()
	widths.limit, heights.limit = limit, limit
	keys(func(k [4]int64) {
		widths.add(k[2] - k[0])
		heights.add(k[3] - k[1])
	})
	sx, okx := widths.majority(n, 0)
	sy, oky := heights.majority(n, 0)
	if widths.over || heights.over {
		return grid{}, false, true
	}
	// A cell of one or two lattice steps is no tiling: the tolerance
	// would swallow it.
	if !okx || !oky || sx < 3 || sy < 3 {
		return grid{}, false, false
	}
	xs, ys := newTally(), newTally()
	xs.limit, ys.limit = limit, limit
	keys(func(k [4]int64) {
		xs.add(floorMod(k[0], sx))
		ys.add(floorMod(k[1], sy))
	})
	ox, okx := xs.majority(n, sx)
	oy, oky := ys.majority(n, sy)
	if xs.over || ys.over {
		return grid{}, false, true
	}
	if !okx || !oky {
		return grid{}, false, false
	}
	return grid{ox: ox, oy: oy, sx: sx, sy: sy}, true, false
}

// nearest is the cell whose lower-left corner is nearest to the corner
// (x, y), and the corner's offset from it, in (-s/2, s/2] on each axis.
func (gr grid) nearest(x, y int64) (col, row, dx, dy int64) {
	col, dx = nearestStep(x-gr.ox, gr.sx)
	row, dy = nearestStep(y-gr.oy, gr.sy)
	return col, row, dx, dy
}

// nearestStep is the multiple of s nearest to d, and d's offset from it
// in (-s/2, s/2]: ceil(d/s - 1/2), in integers so that a corner half a
// cell off goes one way only.
func nearestStep(d, s int64) (int64, int64) {
	i := -floorDiv(s-2*d, 2*s)
	return i, d - i*s
}

// cellBox is the cell's box in the CRS.
func (g *group) cellBox(col, row int64) [4]float64 {
	gr := g.grid
	x, y := gr.ox+col*gr.sx, gr.oy+row*gr.sy
	return [4]float64{g.unkey(x), g.unkey(y), g.unkey(x + gr.sx), g.unkey(y + gr.sy)}
}

// unkey is a lattice value in the CRS's units; dividing by inv rather
// than multiplying by tol gives 50, not 50.000000000000004.
func (g *group) unkey(k int64) float64 { return float64(k) / g.inv }

// offGrid names the tiles whose lower-left corner or size departs from
// the group's grid by more than the tolerance, with the offset from their
// nearest cell. g.off keeps the verdict (an overlap is blamed on the tile
// off the grid) and c.offsets the offset (names judges such a tile at its
// cell). The lattice decides without reading the tile (see beyond).
func (c *checker) offGrid(g *group) {
	g.off = make([]bool, len(g.members))
	if !g.hasGrid {
		return
	}
	for i, m := range g.members {
		if off, ok := c.judgeGrid(g, m.key, &c.tiles[m.tile]); ok {
			g.off[i] = true
			c.offsets[m.tile] = off
		}
	}
}

// judgeGrid names t, of lattice box key, if it is off g's grid; ok says
// so, with its offset from its cell.
func (c *checker) judgeGrid(g *group, key [4]int64, t *Tile) (off [2]float64, ok bool) {
	gr := g.grid
	sx, sy := g.unkey(gr.sx), g.unkey(gr.sy)
	col, row, dx, dy := gr.nearest(key[0], key[1])
	b := &t.Box // read only when the lattice cannot tell
	cell := func() [4]float64 { return g.cellBox(col, row) }
	shifted := g.beyond(dx, func() float64 { return b[0] - cell()[0] }) ||
		g.beyond(dy, func() float64 { return b[1] - cell()[1] })
	resized := g.beyond(key[2]-key[0]-gr.sx, func() float64 { return b[2] - b[0] - sx }) ||
		g.beyond(key[3]-key[1]-gr.sy, func() float64 { return b[3] - b[1] - sy })
	if !shifted && !resized {
		return off, false
	}
	off = [2]float64{g.unkey(dx), g.unkey(dy)}
	c.report(OffGrid, t.Path, "", func() Warning {
		detail := fmt.Sprintf("Its lower-left corner is %s m east and %s m north of the nearest node of the delivery's %s x %s m grid",
			num(off[0]), num(off[1]), num(sx), num(sy))
		if resized {
			detail += fmt.Sprintf(", and it measures %s x %s m", num(b[2]-b[0]), num(b[3]-b[1]))
		}
		return Warning{Offset: &off, EPSG: int(t.attrs().EPSG), Box: boxPtr(*b), Detail: detail + "."}
	})
	return off, true
}

// beyond says whether a difference is more than the tolerance, from its
// value on the lattice d (a difference of values rounded to the lattice,
// off by less than a step from the true one): surely not at 0, surely at
// 2 steps or more; at one step the raw value decides. A grid-aligned
// delivery never reads its tiles here.
func (g *group) beyond(d int64, raw func() float64) bool {
	switch abs(d) {
	case 0:
		return false
	case 1:
		return math.Abs(raw()) > g.tol
	}
	return true
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// num writes a length for a sentence: 50, 0.25, 200.
func num(v float64) string { return strconv.FormatFloat(roundSig(v, 8), 'f', -1, 64) }

// tally counts values, most of which repeat the previous one (the tiles
// come sorted), without a map access for each.
type tally struct {
	counts map[int64]int
	last   int64
	run    int
	// limit > 0 stops counting past limit distinct values: over.
	limit int
	over  bool
}

func newTally() *tally { return &tally{counts: map[int64]int{}} }

func (t *tally) add(v int64) {
	if t.run > 0 && v == t.last {
		t.run++
		return
	}
	t.flush()
	t.last, t.run = v, 1
}

func (t *tally) flush() {
	if t.run > 0 && !t.over {
		t.counts[t.last] += t.run
		t.run = 0
		if t.limit > 0 && len(t.counts) > t.limit {
			t.over = true
			clear(t.counts)
		}
	}
}

// mode is the most common value, the smallest on a tie; false when
// nothing was counted.
func (t *tally) mode() (int64, bool) {
	t.flush()
	var mode int64
	best := 0
	for v, k := range t.counts {
		if k > best || k == best && v < mode {
			mode, best = v, k
		}
	}
	return mode, best > 0
}

// majority is the mode, if more than half of n share it within one step;
// period > 0 makes the values circular (phases modulo a cell size:
// period-1 is next to 0).
func (t *tally) majority(n int, period int64) (int64, bool) {
	mode, ok := t.mode()
	if !ok {
		return 0, false
	}
	near := [3]int64{mode - 1, mode, mode + 1}
	if period > 0 {
		near = [3]int64{floorMod(mode-1, period), mode, floorMod(mode+1, period)}
	}
	support := 0
	for k, v := range near {
		if !slices.Contains(near[:k], v) { // a period of 1 or 2 repeats
			support += t.counts[v]
		}
	}
	return mode, 2*support > n
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// floorMod is a modulo b in [0, b) (b > 0).
func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
