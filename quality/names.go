package quality

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Tile names usually encode the tile's place: `…_0651000_6226400.jp2`
// in metres, `…_6510_62264_…` in hectometres, `…_651_6227_…` in
// kilometres, from the lower-left or the upper-left corner. The pattern is
// learned from the delivery itself — which two digit groups, which unit,
// which corner most names agree with — never from a fixed list.
const (
	maxGroups       = 8  // digit groups read per name
	maxDigits       = 12 // longer runs are not coordinates
	nameSample      = 4096
	minNameVotes    = 3
	nameMajority    = 0.8
	minNameCoverage = 0.5 // of the tiles, named with enough groups
)

var units = []float64{1, 10, 100, 1000}

// digits is one run of digits in a name.
type digits struct {
	start, end int
	value      int64
}

// namePattern is where a delivery's names put X and Y.
type namePattern struct {
	ok       bool
	gx, gy   int
	unit     float64
	upper    bool   // Y from the upper edge
	template string // an agreeing tile's path, to name missing cells
}

// groupsOf reads the digit runs of a file name without its extension
// into buf, which it returns resliced: no allocation per tile.
func groupsOf(name string, buf *[maxGroups]digits) []digits {
	name = strings.TrimSuffix(name, path.Ext(name))
	out := buf[:0]
	for i := 0; i < len(name) && len(out) < maxGroups; {
		if name[i] < '0' || name[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(name) && name[j] >= '0' && name[j] <= '9' {
			j++
		}
		if j-i <= maxDigits {
			v, err := strconv.ParseInt(name[i:j], 10, 64)
			if err == nil {
				out = append(out, digits{i, j, v})
			}
		}
		i = j
	}
	return out
}

type nameCandidate struct {
	gx, gy int
	unit   float64
	upper  bool
}

// coords are the numbers a name following c gives t's place.
func (c nameCandidate) coords(b [4]float64, tol float64) (int64, int64, bool) {
	y := b[1]
	if c.upper {
		y = b[3]
	}
	x, yy := math.Floor((b[0]+tol)/c.unit), math.Floor((y+tol)/c.unit)
	if x < 0 || yy < 0 || x > 1e12 || yy > 1e12 {
		return 0, 0, false
	}
	return int64(x), int64(yy), true
}

// learnNames finds the pattern from a sample of the tiles spread over the
// delivery: enough to tell a pattern, and the check stays linear.
func learnNames(tiles []Tile, order []int32, tol float64) namePattern {
	step := max(1, len(order)/nameSample)
	votes := map[nameCandidate]int{}
	named := 0
	sampled := 0
	var buf [maxGroups]digits
	for k := 0; k < len(order); k += step {
		sampled++
		t := tiles[order[k]]
		gs := groupsOf(path.Base(t.Path), &buf)
		if len(gs) < 2 {
			continue
		}
		named++
		for _, unit := range units {
			for _, upper := range []bool{false, true} {
				c := nameCandidate{unit: unit, upper: upper}
				x, y, ok := c.coords(t.Box, tol)
				if !ok {
					continue
				}
				for a := range gs {
					for b := range gs {
						if a != b && gs[a].value == x && gs[b].value == y {
							votes[nameCandidate{a, b, unit, upper}]++
						}
					}
				}
			}
		}
	}
	best, n := nameCandidate{}, 0
	for c, v := range votes {
		if v > n || v == n && candidateCmp(c, best) < 0 {
			best, n = c, v
		}
	}
	if n < minNameVotes || float64(n) < nameMajority*float64(named) || float64(named) < minNameCoverage*float64(sampled) {
		return namePattern{}
	}
	p := namePattern{ok: true, gx: best.gx, gy: best.gy, unit: best.unit, upper: best.upper}
	p.template = template(tiles, order, step, p, tol)
	return p
}

func candidateCmp(a, b nameCandidate) int {
	return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(boolInt(a.upper), boolInt(b.upper)), cmp.Compare(a.gx, b.gx), cmp.Compare(a.gy, b.gy))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// agrees says whether t's name holds the numbers its header gives, or
// has not the pattern's digit groups (nothing to say then).
func (p namePattern) agrees(t Tile, tol float64) bool {
	var buf [maxGroups]digits
	gs := groupsOf(path.Base(t.Path), &buf)
	if !p.ok || len(gs) <= max(p.gx, p.gy) {
		return true
	}
	x, y, ok := nameCandidate{p.gx, p.gy, p.unit, p.upper}.coords(t.Box, tol)
	return !ok || gs[p.gx].value == x && gs[p.gy].value == y
}

// rename is name with the numbers the pattern gives box b, or false when
// the name has not the pattern's digit groups.
func (p namePattern) rename(name string, b [4]float64, tol float64) (string, bool) {
	var buf [maxGroups]digits
	gs := groupsOf(name, &buf)
	if !p.ok || len(gs) <= max(p.gx, p.gy) {
		return "", false
	}
	x, y, ok := nameCandidate{p.gx, p.gy, p.unit, p.upper}.coords(b, tol)
	if !ok {
		return "", false
	}
	type edit struct {
		g digits
		v int64
	}
	edits := []edit{{gs[p.gx], x}, {gs[p.gy], y}}
	slices.SortFunc(edits, func(a, b edit) int { return cmp.Compare(b.g.start, a.g.start) })
	for _, e := range edits {
		name = name[:e.g.start] + pad(e.v, e.g.end-e.g.start) + name[e.g.end:]
	}
	return name, true
}

func pad(v int64, width int) string {
	s := strconv.FormatInt(v, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// names names the tiles whose header places them elsewhere than their
// name says, when the delivery's names follow a pattern. A tile off the
// grid is named after the grid cell it stands nearest: if its name is that
// cell's, off_grid says all there is to say.
func (c *checker) names(p namePattern, grids map[int]grid) {
	if !p.ok {
		return
	}
	for _, i := range c.order {
		t := c.tiles[i]
		if p.agrees(t, c.opts.Tolerance) {
			continue
		}
		name := path.Base(t.Path)
		exp, ok := p.rename(name, t.Box, c.opts.Tolerance)
		if !ok {
			continue
		}
		if gr, learned := grids[t.EPSG]; learned && gr.learned {
			cell := gr.box(gr.cell(t.Box[0], t.Box[1]))
			if byCell, ok := p.rename(name, cell, c.opts.Tolerance); ok {
				if byCell == name {
					continue
				}
				exp = byCell
			}
		}
		c.add(Warning{Path: t.Path, Kind: NameMismatch, Expected: exp, EPSG: t.EPSG, Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("its header places it where the delivery's names say %s", exp)})
	}
}

// predict is the name the pattern gives a cell, in the template's folder.
func (p namePattern) predict(cell [4]float64, tol float64) string {
	if !p.ok || p.template == "" {
		return ""
	}
	dir, name := path.Split(p.template)
	n, ok := p.rename(name, cell, tol)
	if !ok {
		return ""
	}
	return dir + n
}

// template is the tile missing cells are named after: an agreeing tile of
// the most common folder and extension in the sample, so that a hole
// among JPEG 2000 tiles is not named after the one GeoTIFF.
func template(tiles []Tile, order []int32, step int, p namePattern, tol float64) string {
	counts := map[string]int{}
	first := map[string]string{}
	for k := 0; k < len(order); k += step {
		t := tiles[order[k]]
		if exp, ok := p.rename(path.Base(t.Path), t.Box, tol); !ok || exp != path.Base(t.Path) {
			continue
		}
		key := path.Dir(t.Path) + "|" + path.Ext(t.Path)
		if counts[key] == 0 {
			first[key] = t.Path
		}
		counts[key]++
	}
	best := ""
	for key, n := range counts {
		if n > counts[best] || n == counts[best] && key < best {
			best = key
		}
	}
	return first[best]
}
