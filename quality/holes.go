package quality

import (
	"cmp"
	"fmt"
	"slices"
)

// run is a row's empty cells between two occupied ones: a hole candidate.
type run struct {
	row      int64
	from, to int64 // columns, inclusive
	parent   int
	outside  bool
}

// holes lists the holes of one CRS's footprint as the missing grid cells:
// empty cells enclosed by the delivery, not the outside of its outline.
// Work and memory follow the tiles, never the extent: each row's empty
// runs between occupied cells are joined with the runs they touch in the
// rows above and below; a run touching a row's outside (beyond its first
// or last tile, or a row with no tile) is outside, and so is every run
// joined to it.
func (c *checker) holes(g []int32, gr grid, names namePattern) {
	type rc struct{ row, col int64 }
	occupied := make([]rc, 0, len(g))
	for _, i := range g {
		col, row := gr.cell(c.tiles[i].Box[0], c.tiles[i].Box[1])
		occupied = append(occupied, rc{row, col})
	}
	slices.SortFunc(occupied, func(a, b rc) int { return cmp.Or(cmp.Compare(a.row, b.row), cmp.Compare(a.col, b.col)) })
	occupied = slices.Compact(occupied)

	// rows[k] is the span of occupied[] holding one row, with its runs.
	type rowSpan struct {
		row            int64
		first, last    int64 // occupied columns
		runFrom, runTo int   // runs[runFrom:runTo]
	}
	var rows []rowSpan
	var runs []run
	for start := 0; start < len(occupied); {
		end := start
		for end < len(occupied) && occupied[end].row == occupied[start].row {
			end++
		}
		rs := rowSpan{row: occupied[start].row, first: occupied[start].col, last: occupied[end-1].col, runFrom: len(runs)}
		for k := start + 1; k < end; k++ {
			if occupied[k].col > occupied[k-1].col+1 {
				runs = append(runs, run{row: rs.row, from: occupied[k-1].col + 1, to: occupied[k].col - 1, parent: len(runs)})
			}
		}
		rs.runTo = len(runs)
		rows = append(rows, rs)
		start = end
	}
	uf := unionFind(runs)
	for k, rs := range rows {
		for _, adj := range []int{k - 1, k + 1} {
			var nb *rowSpan
			if adj >= 0 && adj < len(rows) && (rows[adj].row == rs.row-1 || rows[adj].row == rs.row+1) {
				nb = &rows[adj]
			}
			for r := rs.runFrom; r < rs.runTo; r++ {
				if nb == nil || runs[r].from < nb.first || runs[r].to > nb.last {
					uf.markOutside(r)
				}
			}
			if nb == nil {
				continue
			}
			// Runs of both rows sharing a column are one empty region.
			a, b := rs.runFrom, nb.runFrom
			for a < rs.runTo && b < nb.runTo {
				if runs[a].to >= runs[b].from && runs[b].to >= runs[a].from {
					uf.join(a, b)
				}
				if runs[a].to < runs[b].to {
					a++
				} else {
					b++
				}
			}
		}
	}
	for r := range runs {
		if uf.isOutside(r) {
			continue
		}
		for col := runs[r].from; col <= runs[r].to; col++ {
			if c.listed[Missing] >= c.opts.MaxPerKind {
				// Counted, not listed: a hole may be long.
				c.byKind[Missing] += int(runs[r].to - col + 1)
				c.truncated = true
				break
			}
			cell := gr.box(col, runs[r].row)
			c.add(Warning{Path: names.predict(cell, c.tol), Kind: Missing, EPSG: gr.epsg, Box: boxPtr(cell),
				Detail: fmt.Sprintf("no tile covers the %g m cell at %.2f, %.2f (EPSG:%d), inside the footprint", gr.size, cell[0], cell[1], gr.epsg)})
		}
	}
}

// runSets is a union-find over runs, an outside flag per set.
type runSets struct{ runs []run }

func unionFind(runs []run) *runSets { return &runSets{runs} }

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
