package quality

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// grid is a CRS's tile grid: square cells of size, the cell (0, 0) with
// its lower-left corner at (ox, oy).
type grid struct {
	epsg   int
	size   float64
	ox, oy float64
	// learned is false for the loose cells of tiles following no grid.
	learned bool
}

// cell is the cell whose lower-left corner is nearest to (x, y).
func (g grid) cell(x, y float64) (int64, int64) {
	return int64(math.Round((x - g.ox) / g.size)), int64(math.Round((y - g.oy) / g.size))
}

func (g grid) box(col, row int64) [4]float64 {
	x, y := g.ox+float64(col)*g.size, g.oy+float64(row)*g.size
	return [4]float64{x, y, x + g.size, y + g.size}
}

// cmKey is a length to the centimetre, for modes.
func cmKey(v float64) int64 { return int64(math.Round(v * 100)) }

// learnGrid finds the grid most of a CRS's tiles follow: the most common
// tile side, and the most common origin phase modulo that side. Without a
// clear majority (half the tiles on each) there is no grid to measure
// tiles against, and nothing is called off it.
func learnGrid(tiles []Tile, g []int32) (grid, bool) {
	sides := map[int64]int{}
	for _, i := range g {
		b := tiles[i].Box
		if w, h := cmKey(b[2]-b[0]), cmKey(b[3]-b[1]); w == h {
			sides[w]++
		}
	}
	side, ok := modeOf(sides)
	if !ok || side <= 0 || 2*sides[side] < len(g) {
		return grid{}, false
	}
	size := float64(side) / 100
	px, py := map[int64]int{}, map[int64]int{}
	for _, i := range g {
		b := tiles[i].Box
		px[cmKey(phase(b[0], size))]++
		py[cmKey(phase(b[1], size))]++
	}
	ox, okx := modeOf(px)
	oy, oky := modeOf(py)
	if !okx || !oky || 2*px[ox] < len(g) || 2*py[oy] < len(g) {
		return grid{}, false
	}
	return grid{epsg: tiles[g[0]].EPSG, size: size, ox: float64(ox) / 100, oy: float64(oy) / 100, learned: true}, true
}

// phase is v modulo size, in [0, size), rounded so that 0.999999 cm and
// 0 cm fall together.
func phase(v, size float64) float64 {
	p := math.Mod(v, size)
	if p < 0 {
		p += size
	}
	if size-p < 0.005 {
		p = 0
	}
	return p
}

// looseGrid is cells for the overlap search alone when the tiles follow no
// grid: the median side, from the CRS origin.
func looseGrid(tiles []Tile, g []int32) grid {
	sides := make([]float64, 0, len(g))
	for _, i := range g {
		b := tiles[i].Box
		sides = append(sides, max(b[2]-b[0], b[3]-b[1]))
	}
	slices.Sort(sides)
	return grid{epsg: tiles[g[0]].EPSG, size: max(sides[len(sides)/2], 1e-6)}
}

// offGrid names the tiles whose corner or side departs from the grid by
// more than the tolerance, with the offset from their nearest cell.
func (c *checker) offGrid(g []int32, gr grid) {
	tol := c.tol
	for _, i := range g {
		t := c.tiles[i]
		b := t.Box
		col, row := gr.cell(b[0], b[1])
		cell := gr.box(col, row)
		dx, dy := b[0]-cell[0], b[1]-cell[1]
		w, h := b[2]-b[0], b[3]-b[1]
		if math.Abs(dx) <= tol && math.Abs(dy) <= tol && math.Abs(w-gr.size) <= tol && math.Abs(h-gr.size) <= tol {
			continue
		}
		off := [2]float64{round2(dx), round2(dy)}
		detail := fmt.Sprintf("its corner is %.2f m east and %.2f m north of the delivery's %g m grid", off[0], off[1], gr.size)
		if math.Abs(w-gr.size) > tol || math.Abs(h-gr.size) > tol {
			detail += fmt.Sprintf(", and it is %.2f x %.2f m", w, h)
		}
		c.add(Warning{Path: t.Path, Kind: OffGrid, Offset: &off, EPSG: t.EPSG, Box: boxPtr(b), Detail: detail})
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// maxCellsPerTile bounds the cells one tile is filed under for the overlap
// search: a tile covering more (a wrong resolution, a hostile header) is
// compared with the other big tiles only.
const (
	maxCellsPerTile = 64
	maxBigTiles     = 2048
	// maxBoxesPerCell bounds the distinct boxes compared pairwise in one
	// cell; identical boxes are duplicates, found without pairing.
	maxBoxesPerCell = 64
)

// filed is a tile filed under one cell of the overlap search.
type filed struct {
	col, row int64
	tile     int32
}

// overlaps finds the tiles of one CRS covering the same ground: wholly
// (duplicates, blamed on the later path) or partly (with the area). Each
// tile is filed under the cells it covers, shrunk by the tolerance so that
// neighbours touching along an edge share none; only tiles sharing a cell
// are compared, and each pair is reported in one cell only.
func (c *checker) overlaps(g []int32, gr grid) {
	tol := c.tol
	var cells []filed
	var big []int32
	// Bounded whatever the tiles' sizes: past this, a tile spanning many
	// cells goes with the big ones.
	budget := 4*len(g) + 1<<16
	for _, i := range g {
		b := c.tiles[i].Box
		c0, r0 := floorCell(gr, b[0]+tol, b[1]+tol)
		c1, r1 := floorCell(gr, b[2]-tol, b[3]-tol)
		if c1 < c0 || r1 < r0 {
			continue // thinner than the tolerance: nothing to overlap
		}
		if c1-c0 > maxCellsPerTile || r1-r0 > maxCellsPerTile || (c1-c0+1)*(r1-r0+1) > maxCellsPerTile || len(cells)+int((c1-c0+1)*(r1-r0+1)) > budget {
			if len(big) < maxBigTiles {
				big = append(big, i)
			}
			continue
		}
		for col := c0; col <= c1; col++ {
			for row := r0; row <= r1; row++ {
				cells = append(cells, filed{col, row, i})
			}
		}
	}
	slices.SortFunc(cells, func(a, b filed) int {
		return cmp.Or(cmp.Compare(a.col, b.col), cmp.Compare(a.row, b.row), cmp.Compare(a.tile, b.tile))
	})
	for start := 0; start < len(cells); {
		end := start
		for end < len(cells) && cells[end].col == cells[start].col && cells[end].row == cells[start].row {
			end++
		}
		if end-start > 1 {
			ids := make([]int32, 0, end-start)
			for _, f := range cells[start:end] {
				ids = append(ids, f.tile)
			}
			c.compare(ids, gr, cells[start].col, cells[start].row, true)
		}
		start = end
	}
	c.compare(big, gr, 0, 0, false)
}

func floorCell(g grid, x, y float64) (int64, int64) {
	return int64(math.Floor((x - g.ox) / g.size)), int64(math.Floor((y - g.oy) / g.size))
}

// compare reports the duplicates and overlaps among tiles sharing a cell
// (col, row); inCell false compares a plain list (the big tiles).
func (c *checker) compare(ids []int32, gr grid, col, row int64, inCell bool) {
	tol := c.tol
	// Identical boxes first: the first path is the delivery, the others
	// its copies. Only one of each set is compared with the rest.
	slices.SortFunc(ids, func(a, b int32) int {
		return cmp.Or(boxCmp(c.tiles[a].Box, c.tiles[b].Box, tol), cmp.Compare(c.tiles[a].Path, c.tiles[b].Path))
	})
	var reps []int32
	for k, i := range ids {
		if k > 0 && boxCmp(c.tiles[ids[k-1]].Box, c.tiles[i].Box, tol) == 0 {
			first := reps[len(reps)-1]
			if !inCell || c.ownsPair(gr, col, row, c.tiles[first].Box, c.tiles[i].Box) {
				t := c.tiles[i]
				c.add(Warning{Path: t.Path, Kind: Duplicate, Other: c.tiles[first].Path, EPSG: t.EPSG, Box: boxPtr(t.Box),
					Detail: fmt.Sprintf("the same ground as %s: the same tile delivered twice?", c.tiles[first].Path)})
			}
			continue
		}
		reps = append(reps, i)
	}
	if len(reps) > maxBoxesPerCell {
		c.truncated = true
		reps = reps[:maxBoxesPerCell]
	}
	for x := range reps {
		for y := x + 1; y < len(reps); y++ {
			a, b := c.tiles[reps[x]], c.tiles[reps[y]]
			in := [4]float64{max(a.Box[0], b.Box[0]), max(a.Box[1], b.Box[1]), min(a.Box[2], b.Box[2]), min(a.Box[3], b.Box[3])}
			if in[2]-in[0] <= tol || in[3]-in[1] <= tol {
				continue
			}
			if inCell && !c.ownsPair(gr, col, row, a.Box, b.Box) {
				continue
			}
			c.addOverlap(a, b, in, gr)
		}
	}
}

// ownsPair says whether (col, row) is the one cell a pair is reported in:
// the cell of their common part's shrunk lower-left corner.
func (c *checker) ownsPair(gr grid, col, row int64, a, b [4]float64) bool {
	tol := c.tol
	cc, rr := floorCell(gr, max(a[0], b[0])+tol, max(a[1], b[1])+tol)
	return cc == col && rr == row
}

func (c *checker) addOverlap(a, b Tile, in [4]float64, gr grid) {
	path, other := a, b
	aOff, bOff := c.onGrid(a, gr), c.onGrid(b, gr)
	switch {
	case aOff && !bOff:
		path, other = b, a
	case aOff == bOff && a.Path < b.Path:
		path, other = b, a
	}
	area := (in[2] - in[0]) * (in[3] - in[1])
	c.add(Warning{Path: path.Path, Kind: Overlap, Other: other.Path, AreaM2: math.Round(area*100) / 100, EPSG: path.EPSG, Box: boxPtr(in),
		Detail: fmt.Sprintf("covers %.0f m² of %s", area, other.Path)})
}

// onGrid says whether t sits on the grid (always true without one).
func (c *checker) onGrid(t Tile, gr grid) bool {
	if !gr.learned {
		return true
	}
	col, row := gr.cell(t.Box[0], t.Box[1])
	cell := gr.box(col, row)
	tol := c.tol
	for k := range cell {
		if math.Abs(cell[k]-t.Box[k]) > tol {
			return false
		}
	}
	return true
}

// boxCmp orders boxes by their corners on the tolerance's lattice, so
// that boxes written by different software compare equal: a strict order,
// as sorting needs.
func boxCmp(a, b [4]float64, tol float64) int {
	for k := range a {
		if c := cmp.Compare(math.Round(a[k]/tol), math.Round(b[k]/tol)); c != 0 {
			return c
		}
	}
	return 0
}

// groupTolerance is the tolerance for one CRS's tiles: the one asked, but
// never more than a thousandth of their median side, so that tiles in
// degrees (a geographic CRS) are not all "on the same spot".
func groupTolerance(tiles []Tile, g []int32, asked float64) float64 {
	sides := make([]float64, 0, len(g))
	for _, i := range g {
		b := tiles[i].Box
		sides = append(sides, min(b[2]-b[0], b[3]-b[1]))
	}
	slices.Sort(sides)
	return min(asked, sides[len(sides)/2]/1000)
}
