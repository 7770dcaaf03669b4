package quality

import (
	"cmp"
	"fmt"
	"slices"
)

// cellAt is one occupied grid cell, column first: the group's tiles come
// sorted by x then y, so their cells come almost in this order and the
// sort below is nearly free.
type cellAt struct{ col, row int64 }

// run is a column's empty cells between two occupied ones: part of a hole
// unless its empty region reaches the outside.
type run struct {
	col      int64
	from, to int64 // rows, inclusive
	parent   int
	outside  bool
}

// holes lists the holes of one CRS's footprint as the missing grid cells:
// empty cells enclosed by the delivery's tiles, not the outside of a
// concave outline (empty space 4-connected to the outside is no hole).
// Work and memory follow the tiles, never the extent: each column's runs
// of empty cells between occupied ones are joined with the runs they
// share a row with in the neighbouring columns (union-find); a run that
// reaches past a neighbouring column's first or last tile, or that has a
// column without tiles beside it, reaches the outside, and so does every
// run joined to it. A hole's cells are counted with arithmetic; only the
// first MaxPerKind (in column, row order) are named.
func (c *checker) holes(g *group, names *pattern) {
	if !g.hasGrid {
		return
	}
	cols, runs := columnRuns(g.occupied())
	c.holesIn(g, cols, runs, names)
}

// holesIn is holes given the group's columns and their runs of empty
// cells.
func (c *checker) holesIn(g *group, cols []column, runs []run, names *pattern) {
	sets := &runSets{runs}
	for k := range cols {
		for _, adj := range []int{k - 1, k + 1} {
			var nb *column
			if adj >= 0 && adj < len(cols) && (cols[adj].col == cols[k].col-1 || cols[adj].col == cols[k].col+1) {
				nb = &cols[adj]
			}
			sets.joinColumns(&cols[k], nb)
		}
	}
	sx, sy := g.unkey(g.grid.sx), g.unkey(g.grid.sy)
	missing := c.lists[kindIndex(Missing)]
	for r := range runs {
		if sets.isOutside(r) {
			continue
		}
		c.found(Missing, int(min(runs[r].to-runs[r].from+1, maxCells)))
		for row := runs[r].from; row <= runs[r].to && !missing.full(); row++ {
			cell := g.cellBox(runs[r].col, row)
			c.offer(Missing, names.predict(cell, g.tol), "", func() Warning {
				return Warning{EPSG: g.epsg, Box: boxPtr(cell),
					Detail: fmt.Sprintf("No tile covers the %s x %s m cell at %s, %s (EPSG:%d), enclosed by the delivery's tiles.",
						num(sx), num(sy), num(cell[0]), num(cell[1]), g.epsg)}
			})
		}
	}
}

// maxCells bounds one run's count: a run is at most 2^41 cells long (the
// lattice's reach), and counts saturate (see found), but an int64
// difference of lattice rows must not be taken as more than that.
const maxCells = 1 << 42

// occupied is the cells the group's tiles occupy, each once, column
// first: the cell nearest each tile's lower-left corner (a shifted tile
// occupies the cell it was meant for), and, for a tile larger than a
// cell, every cell whose centre it covers, so that a mosaic among tiles
// leaves no false hole. Those extra cells are bounded like the overlap
// search's (maxCellsPerTile, filedPerTile on average).
func (g *group) occupied() []cellAt {
	out := make([]cellAt, 0, len(g.members))
	limit := cellLimit(len(g.members))
	for _, m := range g.members {
		g.occupies(m.key, len(out), limit, func(c cellAt) { out = append(out, c) })
	}
	slices.SortFunc(out, func(a, b cellAt) int { return cmp.Or(cmp.Compare(a.col, b.col), cmp.Compare(a.row, b.row)) })
	return slices.Compact(out)
}

// cellLimit bounds the cells n tiles are filed or occupy in all.
func cellLimit(n int) int { return filedPerTile*n + 1<<16 }

// occupies gives emit the cells of the tile of lattice box key, had
// cells given before it, limit in all.
func (g *group) occupies(key [4]int64, had, limit int, emit func(cellAt)) {
	gr := g.grid
	col, row, _, _ := gr.nearest(key[0], key[1])
	emit(cellAt{col, row})
	had++
	c0, c1 := centresWithin(key[0]-gr.ox, key[2]-gr.ox, gr.sx)
	r0, r1 := centresWithin(key[1]-gr.oy, key[3]-gr.oy, gr.sy)
	if c1 < c0 || r1 < r0 || c0 == c1 && r0 == r1 {
		return // its own cell only, or not even that one's centre
	}
	n := (c1 - c0 + 1) * (r1 - r0 + 1)
	if c1-c0 >= maxCellsPerTile || r1-r0 >= maxCellsPerTile || n > maxCellsPerTile || had+int(n) > limit {
		return
	}
	for c := c0; c <= c1; c++ {
		for r := r0; r <= r1; r++ {
			emit(cellAt{c, r})
		}
	}
}

// centresWithin is the first and last cells of size s whose centre lies
// strictly between lo and hi (lattice units from the grid's origin):
// 2lo < (2i+1)s < 2hi.
func centresWithin(lo, hi, s int64) (int64, int64) {
	return floorDiv(2*lo-s, 2*s) + 1, -floorDiv(s-2*hi, 2*s) - 1
}

// column is one occupied column: its first and last occupied rows, and
// its runs.
type column struct {
	col            int64
	first, last    int64
	runFrom, runTo int // runs[runFrom:runTo]
}

// columnRuns splits the occupied cells (column first) into columns and
// the runs of empty cells between their occupied ones.
func columnRuns(occupied []cellAt) ([]column, []run) {
	var b runBuilder
	for _, cell := range occupied {
		b.add(cell)
	}
	return b.finish()
}

// runBuilder takes the occupied cells in (column, row) order, each once,
// and gathers the columns and their runs of empty cells.
type runBuilder struct {
	cols []column
	runs []run
	last cellAt
}

func (b *runBuilder) add(cell cellAt) {
	if n := len(b.cols); n > 0 && b.cols[n-1].col == cell.col {
		if cell.row > b.last.row+1 {
			b.runs = append(b.runs, run{col: cell.col, from: b.last.row + 1, to: cell.row - 1, parent: len(b.runs)})
		}
		b.cols[n-1].last, b.cols[n-1].runTo = cell.row, len(b.runs)
	} else {
		b.cols = append(b.cols, column{col: cell.col, first: cell.row, last: cell.row, runFrom: len(b.runs), runTo: len(b.runs)})
	}
	b.last = cell
}

func (b *runBuilder) finish() ([]column, []run) { return b.cols, b.runs }

// runSets is a union-find over runs, with an outside flag per set.
type runSets struct{ runs []run }

// joinColumns joins col's runs with the neighbouring column's runs they
// share a row with; with no occupied neighbour (nb nil), or past its
// first or last tile, a run reaches the outside.
func (u *runSets) joinColumns(col, nb *column) {
	for r := col.runFrom; r < col.runTo; r++ {
		if nb == nil || u.runs[r].from < nb.first || u.runs[r].to > nb.last {
			u.markOutside(r)
		}
	}
	if nb == nil {
		return
	}
	a, b := col.runFrom, nb.runFrom
	for a < col.runTo && b < nb.runTo {
		if u.runs[a].to >= u.runs[b].from && u.runs[b].to >= u.runs[a].from {
			u.join(a, b)
		}
		if u.runs[a].to < u.runs[b].to {
			a++
		} else {
			b++
		}
	}
}

func (u *runSets) find(i int) int {
	for u.runs[i].parent != i {
		u.runs[i].parent = u.runs[u.runs[i].parent].parent
		i = u.runs[i].parent
	}
	return i
}

func (u *runSets) join(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	u.runs[rb].parent = ra
	u.runs[ra].outside = u.runs[ra].outside || u.runs[rb].outside
}

func (u *runSets) markOutside(i int) { u.runs[u.find(i)].outside = true }

func (u *runSets) isOutside(i int) bool { return u.runs[u.find(i)].outside }
