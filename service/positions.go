package service

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/airbusgeo/godal"
)

// toCRS reprojects WGS84 lon/lat to one EPSG CRS: how a row gets the
// position of a problem or a hole in the delivery's own coordinates
// (report.json gives outlines in WGS84 only).
type toCRS struct {
	src, dst   *godal.SpatialRef
	tr         *godal.Transform
	geographic bool
}

func newToCRS(code int) (*toCRS, error) {
	// A PROJ string keeps lon/lat order whatever EPSG:4326's axis order says.
	src, err := godal.NewSpatialRefFromProj4("+proj=longlat +datum=WGS84 +no_defs")
	if err != nil {
		return nil, fmt.Errorf("WGS84: %w", err)
	}
	dst, err := godal.NewSpatialRefFromEPSG(code)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("EPSG:%d: %w", code, err)
	}
	tr, err := godal.NewTransform(src, dst)
	if err != nil {
		src.Close()
		dst.Close()
		return nil, fmt.Errorf("WGS84 to EPSG:%d: %w", code, err)
	}
	return &toCRS{src: src, dst: dst, tr: tr, geographic: dst.Geographic()}, nil
}

func (t *toCRS) Close() {
	t.tr.Close()
	t.src.Close()
	t.dst.Close()
}

// box is the box, in the CRS, of flattened lon/lat points; false when one
// does not reproject.
func (t *toCRS) box(pts []float64) ([4]float64, bool) {
	n := len(pts) / 2
	xs, ys := make([]float64, n), make([]float64, n)
	for i := range n {
		xs[i], ys[i] = pts[2*i], pts[2*i+1]
	}
	ok := make([]bool, n)
	if t.tr.TransformEx(xs, ys, make([]float64, n), ok) != nil {
		return [4]float64{}, false
	}
	flat := make([]float64, 0, 2*n)
	for i := range n {
		if !ok[i] || math.IsNaN(xs[i]) || math.IsInf(xs[i], 0) || math.IsNaN(ys[i]) || math.IsInf(ys[i], 0) {
			return [4]float64{}, false
		}
		flat = append(flat, xs[i], ys[i])
	}
	return bounds(flat), n > 0
}

// projections reprojects to the CRSs a report names, each prepared once;
// a CRS that cannot be prepared is remembered as such.
type projections map[int]*toCRS

func (p projections) get(code int) *toCRS {
	if t, ok := p[code]; ok {
		return t
	}
	t, err := newToCRS(code)
	if err != nil {
		t = nil
	}
	p[code] = t
	return t
}

func (p projections) Close() {
	for _, t := range p {
		if t != nil {
			t.Close()
		}
	}
}

// roundTo rounds v to decimals decimals.
func roundTo(v float64, decimals int) float64 {
	s := math.Pow10(decimals)
	return math.Round(v*s) / s
}

// A neighbour is the tile expected beside a hole, named as the hole is:
// tile names encode their place (see quality's names.go), so the names of
// the cells around a missing one follow from its name and its box.
type neighbour struct {
	Side string `json:"side"` // west, east, south, north
	Name string `json:"name"`
	// Missing: that cell is a hole too.
	Missing bool `json:"missing,omitempty"`
}

var sides = []struct {
	name   string
	dx, dy float64
}{{"west", -1, 0}, {"east", 1, 0}, {"south", 0, -1}, {"north", 0, 1}}

// nameUnits are the units names count in, in metres (as quality's).
var nameUnits = []float64{1, 10, 100, 1000}

// digitRun is a run of digits of a file name.
type digitRun struct {
	start, end int
	value      int64
}

// digitRuns are the runs of at most 12 digits of base's stem, the first
// ten (as quality reads names).
func digitRuns(base string) []digitRun {
	stem := base
	if j := strings.LastIndexByte(base, '.'); j > 0 {
		stem = base[:j]
	}
	var out []digitRun
	for i := 0; i < len(stem) && len(out) < 10; {
		if stem[i] < '0' || stem[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(stem) && stem[j] >= '0' && stem[j] <= '9' {
			j++
		}
		if j-i <= 12 {
			v, _ := strconv.ParseInt(stem[i:j], 10, 64)
			out = append(out, digitRun{i, j, v})
		}
		i = j
	}
	return out
}

// nameReading is one way a name encodes its box: which runs hold X and
// Y, in which unit, from which corner, floored or rounded.
type nameReading struct {
	gx, gy       int
	unit         float64
	upper, round bool
}

// coords are the numbers the reading gives box b. Boxes here come back
// from WGS84 (about a centimetre off): flooring allows for it.
func (r nameReading) coords(b [4]float64) (int64, int64, bool) {
	y := b[1]
	if r.upper {
		y = b[3]
	}
	x, yy := math.Floor((b[0]+0.05)/r.unit), math.Floor((y+0.05)/r.unit)
	if r.round {
		x, yy = math.Round(b[0]/r.unit), math.Round(y/r.unit)
	}
	if !(x >= 0 && yy >= 0 && x < 1e12 && yy < 1e12) {
		return 0, 0, false
	}
	return int64(x), int64(yy), true
}

// readings are the ways name can encode box.
func readings(runs []digitRun, box [4]float64) []nameReading {
	var out []nameReading
	for gx := range runs {
		for gy := range runs {
			if gx == gy {
				continue
			}
			for _, u := range nameUnits {
				for _, upper := range []bool{false, true} {
					for _, round := range []bool{false, true} {
						r := nameReading{gx, gy, u, upper, round}
						if x, y, ok := r.coords(box); ok && x == runs[gx].value && y == runs[gy].value {
							out = append(out, r)
						}
					}
				}
			}
		}
	}
	return out
}

// rename is path with the numbers r gives box b, zero-padded to the
// digits the name had.
func (r nameReading) rename(path string, runs []digitRun, b [4]float64) (string, bool) {
	x, y, ok := r.coords(b)
	if !ok {
		return "", false
	}
	dir, base := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, base = path[:i+1], path[i+1:]
	}
	first, second, fv, sv := runs[r.gx], runs[r.gy], x, y
	if first.start > second.start {
		first, second, fv, sv = second, first, y, x
	}
	pad := func(v int64, width int) string {
		s := strconv.FormatInt(v, 10)
		return strings.Repeat("0", max(0, width-len(s))) + s
	}
	return dir + base[:first.start] + pad(fv, first.end-first.start) + base[first.end:second.start] +
		pad(sv, second.end-second.start) + base[second.end:], true
}

// neighbours are the names of the four cells beside a missing one, as
// its name and box (in a projected CRS) give them; a side is left out
// when the readings of the name disagree on it, all of them when the name
// does not encode the box.
func neighbours(path string, box [4]float64, missing map[string]bool) []neighbour {
	base := path[strings.LastIndexByte(path, '/')+1:]
	runs := digitRuns(base)
	rs := readings(runs, box)
	if len(rs) == 0 {
		return nil
	}
	w, h := box[2]-box[0], box[3]-box[1]
	var out []neighbour
	for _, side := range sides {
		b := [4]float64{box[0] + side.dx*w, box[1] + side.dy*h, box[2] + side.dx*w, box[3] + side.dy*h}
		name, agreed := "", true
		for i, r := range rs {
			n, ok := r.rename(path, runs, b)
			if !ok || (i > 0 && n != name) {
				agreed = false
				break
			}
			name = n
		}
		if agreed && name != path {
			out = append(out, neighbour{Side: side.name, Name: name, Missing: missing[name]})
		}
	}
	return out
}
