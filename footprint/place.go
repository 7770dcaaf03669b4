package footprint

import (
	"errors"
	"fmt"
	"math"

	"github.com/openpcrs/pcrs-indexer/footprint/internal/crs"
	"github.com/paulmach/orb"
)

// ErrMisplaced is wrapped by the error of every tile that cannot be placed
// on the map: non-finite or degenerate geometry, absurd size, or far from
// where its CRS is used (a wrong EPSG code, a broken geotransform).
var ErrMisplaced = errors.New("misplaced")

// Sane tile sides, in metres: PCRS tiles are about 200 m; anything beyond
// these bounds is a broken header, not an image.
const (
	MinSide = 0.01
	MaxSide = 100_000.0
)

// AreaMargin is how far, in degrees, a tile may stray beyond its CRS's area
// of use: tiles near a zone's edge are never flagged.
const AreaMargin = 1.0

// Check says whether t can be placed: nil, or an error wrapping
// ErrMisplaced that says what is wrong.
func (ps *Projectors) Check(t Tile) error {
	_, err := ps.check(t)
	return err
}

func (ps *Projectors) check(t Tile) (*Projector, error) {
	c, err := corners(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMisplaced, err)
	}
	p, err := ps.Get(t.EPSG)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMisplaced, err)
	}
	errs := []error{nil}
	if p.checkCorners([][4]orb.Point{c}, errs, nil); errs[0] != nil {
		return nil, fmt.Errorf("%w: %w", ErrMisplaced, errs[0])
	}
	return p, nil
}

// corners are the tile's four corners, in ring order, once its geometry is
// known to be finite and a convex quadrilateral of positive area.
func corners(t Tile) ([4]orb.Point, error) {
	var c [4]orb.Point
	if t.Quad == nil {
		b := t.Box
		if b.MinX > b.MaxX || b.MinY > b.MaxY {
			// The exact union would drop it without a word.
			return c, fmt.Errorf("inverted box %v", b)
		}
		c = [4]orb.Point{{b.MinX, b.MinY}, {b.MaxX, b.MinY}, {b.MaxX, b.MaxY}, {b.MinX, b.MaxY}}
	} else {
		if len(t.Quad) != 1 {
			return c, fmt.Errorf("rotated tile of %d rings", len(t.Quad))
		}
		r := t.Quad[0]
		if len(r) == 5 && r[0] == r[4] {
			r = r[:4]
		}
		if len(r) != 4 {
			return c, fmt.Errorf("rotated tile of %d points", len(r))
		}
		copy(c[:], r)
	}
	for _, pt := range c {
		if !finite(pt[0]) || !finite(pt[1]) {
			return c, fmt.Errorf("non-finite corner %v", pt)
		}
	}
	// Convex with positive area: every turn goes the same way.
	var pos, neg int
	for i := range 4 {
		a, b, d := c[i], c[(i+1)%4], c[(i+2)%4]
		z := (b[0]-a[0])*(d[1]-b[1]) - (b[1]-a[1])*(d[0]-b[0])
		switch {
		case !finite(z):
			return c, fmt.Errorf("corner %v out of range", b)
		case z > 0:
			pos++
		case z < 0:
			neg++
		}
	}
	switch {
	case pos == 4 || neg == 4:
		return c, nil
	case pos > 0 && neg > 0:
		return c, errors.New("self-intersecting or concave outline")
	default:
		return c, errors.New("degenerate outline (zero area)")
	}
}

// checkBatch is the most tiles reprojected in one call: a few hundred
// kilobytes of coordinates, and one cgo call instead of thousands.
const checkBatch = 4096

// cornerBatch is checkCorners' working memory, reused batch after batch:
// a batch's distinct corners and, per tile, where its corners are among
// them. Neighbouring tiles share corners, so a grid's batch reprojects
// about a third of its corners' count.
type cornerBatch struct {
	at     map[[2]uint64]int32 // a corner's exact bits → its index in xs, ys
	xs, ys []float64
	ok     []bool
	slots  [][4]int32
}

// checkCorners reprojects each tile's corners and checks its size and
// place in WGS84; errs[i] is tile i's verdict. b is reused working memory,
// nil for a new one. A point reprojects to the same place whatever else
// is in its call, so reprojecting each distinct corner once changes no
// verdict.
func (p *Projector) checkCorners(cs [][4]orb.Point, errs []error, b *cornerBatch) {
	if b == nil {
		b = &cornerBatch{}
	}
	for from := 0; from < len(cs); from += checkBatch {
		batch := cs[from:min(from+checkBatch, len(cs))]
		b.xs, b.ys, b.slots = b.xs[:0], b.ys[:0], b.slots[:0]
		if b.at == nil {
			b.at = make(map[[2]uint64]int32, 4*len(batch))
		}
		clear(b.at)
		for _, c := range batch {
			var slot [4]int32
			for j, pt := range c {
				// By bits: -0 and +0 stay apart, as they may print apart.
				key := [2]uint64{math.Float64bits(pt[0]), math.Float64bits(pt[1])}
				i, seen := b.at[key]
				if !seen {
					i = int32(len(b.xs))
					b.at[key] = i
					b.xs, b.ys = append(b.xs, pt[0]), append(b.ys, pt[1])
				}
				slot[j] = i
			}
			b.slots = append(b.slots, slot)
		}
		if cap(b.ok) < len(b.xs) {
			b.ok = make([]bool, cap(b.xs))
		}
		ok := b.ok[:len(b.xs)]
		// The error only says that some point failed: ok says which.
		p.mu.Lock()
		_ = p.tr.TransformEx(b.xs, b.ys, nil, ok)
		p.mu.Unlock()
		var lon, lat [4]float64
		var fine [4]bool
		for k, c := range batch {
			for j, i := range b.slots[k] {
				lon[j], lat[j], fine[j] = b.xs[i], b.ys[i], ok[i]
			}
			errs[from+k] = p.checkLonLat(c, lon[:], lat[:], fine[:])
		}
	}
}

// checkLonLat judges one tile from its corners c and their reprojection.
func (p *Projector) checkLonLat(c [4]orb.Point, lon, lat []float64, ok []bool) error {
	for i := range 4 {
		if !ok[i] || !finite(lon[i]) || !finite(lat[i]) {
			return fmt.Errorf("corner %v does not reproject to WGS84", c[i])
		}
		if lon[i] < -180 || lon[i] > 180 || lat[i] < -90 || lat[i] > 90 {
			return fmt.Errorf("corner %v reprojects outside the Earth (%g°E %g°N)", c[i], lon[i], lat[i])
		}
	}
	for i := range 4 {
		j := (i + 1) % 4
		if math.Abs(lon[j]-lon[i]) > 180 {
			return errors.New("crosses the antimeridian")
		}
		switch d := distance(lon[i], lat[i], lon[j], lat[j]); {
		case d < MinSide:
			return fmt.Errorf("side of %.3g m, under %g m", d, MinSide)
		case d > MaxSide:
			return fmt.Errorf("side of %.4g km, over %g km", d/1000, MaxSide/1000)
		}
	}
	if !p.hasArea {
		return nil
	}
	for i := range 4 {
		if !p.area.contains(orb.Point{lon[i], lat[i]}, AreaMargin) {
			return fmt.Errorf("at %.5f°E %.5f°N, more than %g° outside the area of use of EPSG:%d (%g°E..%g°E, %g°N..%g°N)",
				lon[i], lat[i], AreaMargin, p.code, p.area.West, p.area.East, p.area.South, p.area.North)
		}
	}
	return nil
}

// distance is the distance in metres between two lon/lat points on a local
// equirectangular approximation: within a few per mille up to the 100 km
// MaxSide, plenty to tell a tile from a broken header.
func distance(lon1, lat1, lon2, lat2 float64) float64 {
	const rad = math.Pi / 180
	k := math.Cos((lat1 + lat2) / 2 * rad)
	return math.Hypot((lon2-lon1)*k, lat2-lat1) * metresPerDegree
}

// areaOfUse is a CRS's area of use, in degrees.
type areaOfUse crs.Area

// contains says whether pt lies within margin degrees of a, across the
// antimeridian if a straddles it.
func (a areaOfUse) contains(pt orb.Point, margin float64) bool {
	if pt[1] < a.South-margin || pt[1] > a.North+margin {
		return false
	}
	span := a.East - a.West
	if span < 0 {
		span += 360
	}
	span += 2 * margin
	if span >= 360 {
		return true
	}
	return math.Mod(math.Mod(pt[0]-(a.West-margin), 360)+360, 360) <= span
}
