package footprint

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// The union of a streamed delivery's boxes: union's steps, each CRS's
// boxes read from the source on a pass shared by every CRS instead of from
// a slice.

// axisCount is countClusters' counting, fed box by box.
type axisCount struct {
	t      valueCounts
	failed bool // the values must be sorted: see countClusters
}

func (a *axisCount) add(lo, hi float64) {
	if a.failed {
		return
	}
	if !a.t.add(math.Float64bits(lo)) || !a.t.add(math.Float64bits(hi)) {
		a.failed, a.t = true, valueCounts{}
	}
}

// axes clusters each CRS's x and y values.
func (s *stream) axes(codes []*crsStream) error {
	var scratch []float64
	for _, cr := range codes {
		if cr.boxes == 0 {
			continue
		}
		var err error
		if cr.xs, scratch, err = s.axis(cr, &cr.xc, scratch, xsOf); err != nil {
			return err
		}
		if cr.ys, scratch, err = s.axis(cr, &cr.yc, scratch, ysOf); err != nil {
			return err
		}
	}
	return nil
}

func xsOf(b Box) (float64, float64) { return b.MinX, b.MaxX }
func ysOf(b Box) (float64, float64) { return b.MinY, b.MaxY }

// axis is newAxis for one axis of cr's boxes: from its counts, or, where
// countClusters gives up, from one more pass that gathers its values into
// scratch, given back for the next axis.
func (s *stream) axis(cr *crsStream, c *axisCount, scratch []float64, val func(Box) (float64, float64)) (clusters, []float64, error) {
	tol := unionTolerance(cr.u.Tolerance)
	if !c.failed {
		if cl, ok := c.t.clusters(tol); ok {
			cl.accelerate()
			return cl, scratch, nil
		}
	}
	v, err := s.values(cr, scratch[:0], val)
	if err != nil {
		return clusters{}, nil, err
	}
	return sortedAxis(v, tol), v, nil
}

// values appends to v the values of cr's boxes in the order union reads
// them: sorting keeps the order of values that compare equal, both signs
// of zero, as they came.
func (s *stream) values(cr *crsStream, v []float64, val func(Box) (float64, float64)) ([]float64, error) {
	if cap(v) < 2*cr.boxes {
		v = make([]float64, 0, 2*cr.boxes)
	}
	cr.seen, cr.seenSum = 0, 0
	err := s.pass(func(i int, t Tile) {
		if t.EPSG == cr.code && s.boxes.has(i) {
			lo, hi := val(t.Box)
			v = append(v, lo, hi)
			cr.see(t.Box)
		}
	})
	if err == nil {
		err = cr.sameBoxes()
	}
	return v, err
}

// see counts a box read again, for sameBoxes.
func (cr *crsStream) see(b Box) {
	cr.seen++
	cr.seenSum = fingerprint(cr.seenSum, b)
}

// sameBoxes says whether the latest pass read the boxes of the first.
func (cr *crsStream) sameBoxes() error {
	if cr.seen != cr.boxes || cr.seenSum != cr.sum {
		return fmt.Errorf("%w: EPSG:%d had %d boxes, then %d (or others)", errSourceChanged, cr.code, cr.boxes, cr.seen)
	}
	return nil
}

// runs computes each CRS's runs, reading the boxes of all at once: one
// pass for the bitmaps, two more when some CRS's do not fit one.
func (s *stream) runs(codes []*crsStream) error {
	var active []*crsStream
	merged := false
	for _, cr := range codes {
		switch {
		case cr.boxes == 0 || cr.xs.len() < 2 || cr.ys.len() < 2:
			continue
		case bitmapFits(cr.boxes, &cr.xs, &cr.ys):
			cr.bitmap = newCellBitmap(&cr.xs, &cr.ys)
		default:
			cr.ivals = newSlabIntervals(&cr.xs, &cr.ys)
			merged = true
		}
		active = append(active, cr)
	}
	if len(active) == 0 {
		return nil
	}
	if err := s.boxPass(active, func(cr *crsStream, _ int, b Box) bool { return cr.addBox(b) }); err != nil {
		return err
	}
	if merged {
		for _, cr := range active {
			if cr.ivals != nil {
				cr.ivals.layout()
			}
		}
		if err := s.boxPass(active, func(cr *crsStream, _ int, b Box) bool { return cr.putBox(b) }); err != nil {
			return err
		}
	}
	return nil
}

// addBox is the runs' first reading of a box: the only one for a bitmap,
// the count for merged intervals. It is false for a box none of whose
// values the first pass saw.
func (cr *crsStream) addBox(b Box) bool {
	if cr.bitmap != nil {
		return cr.bitmap.add(b)
	}
	if cr.ivals != nil {
		cr.ivals.count(b)
		return !cr.ivals.foreign
	}
	return true
}

// putBox is the second reading, for merged intervals.
func (cr *crsStream) putBox(b Box) bool {
	if cr.ivals != nil {
		cr.ivals.put(b)
		return !cr.ivals.foreign
	}
	return true
}

// boxPass reads the boxes of every CRS once, giving each box, its CRS and
// ordinal to f, and checks that the boxes of codes are those of the first
// pass.
func (s *stream) boxPass(codes []*crsStream, f func(cr *crsStream, i int, b Box) bool) error {
	for _, cr := range codes {
		cr.seen, cr.seenSum = 0, 0
	}
	var last *crsStream
	foreign := false
	err := s.pass(func(i int, t Tile) {
		if !s.boxes.has(i) {
			return
		}
		if last == nil || last.code != t.EPSG {
			if last = s.byCode[t.EPSG]; last == nil || last.err != nil {
				foreign, last = true, nil
				return
			}
		}
		last.see(t.Box)
		if !f(last, i, t.Box) {
			foreign = true
		}
	})
	if err != nil {
		return err
	}
	if foreign {
		return fmt.Errorf("%w: a box is not where it was", errSourceChanged)
	}
	for _, cr := range codes {
		if err := cr.sameBoxes(); err != nil {
			return err
		}
	}
	return nil
}

// outline unions cr's boxes and rotated tiles and reprojects the union,
// giving its area and leaving it in cr.part. A failure rejects the
// rotated tiles at once and leaves in cr.lost the error of the boxes,
// rejected on a last pass.
func (s *stream) outline(cr *crsStream) float64 {
	var mp orb.MultiPolygon
	switch {
	case cr.bitmap != nil:
		runs, runStart := cr.bitmap.runs()
		cr.bitmap = nil
		mp = runsOutline(runs, runStart, &cr.xs, &cr.ys)
	case cr.ivals != nil:
		runs, runStart := cr.ivals.runs()
		cr.ivals = nil
		mp = runsOutline(runs, runStart, &cr.xs, &cr.ys)
	}
	cr.xs, cr.ys = clusters{}, clusters{}
	w, area, quadErr, err := cr.p.crsOutline(mp, cr.quads, cr.u)
	cr.quads = nil
	if quadErr != nil {
		rejectEach(s.rejected, cr.quadIx, crsError(cr.code, quadErr))
		cr.quadIx = nil
	}
	if err != nil {
		cr.lost = crsError(cr.code, err)
		rejectEach(s.rejected, cr.quadIx, cr.lost)
		return 0
	}
	cr.part = w
	return area
}

// crsError is the error of the tiles of a CRS left out as a whole.
func crsError(code int, err error) error {
	return fmt.Errorf("%w: EPSG:%d: %w", ErrMisplaced, code, err)
}

// rejectEach rejects the tiles ix, which share one error.
func rejectEach(rejected func(Rejected), ix []int, err error) {
	for _, i := range ix {
		rejected(Rejected{Index: i, Err: err})
	}
}

// merge is merge over the CRSs' parts; the boxes of a part left out are
// rejected once all are read.
func (s *stream) merge(parts []*crsStream) orb.MultiPolygon {
	ws := make([]orb.MultiPolygon, len(parts))
	for k, cr := range parts {
		ws[k], cr.part = cr.part, nil
	}
	return merge(ws, func(k int, err error) {
		cr := parts[k]
		cr.lost = mergeError(cr.code, err)
		rejectEach(s.rejected, cr.quadIx, cr.lost)
	})
}

// rejectLost rejects the boxes of the CRSs whose outline was left out, on
// one more pass: their ordinals are one bit each.
func (s *stream) rejectLost(codes []*crsStream) error {
	var lost []*crsStream
	for _, cr := range codes {
		if cr.lost != nil {
			lost = append(lost, cr)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return s.boxPass(lost, func(cr *crsStream, i int, _ Box) bool {
		if cr.lost != nil {
			s.rejected(Rejected{Index: i, Err: cr.lost})
		}
		return true
	})
}

// bitset is a bit a tile, in chunks of 64 Ki tiles so that growing it
// never copies it.
type bitset struct{ chunks [][]uint64 }

const chunkBits = 1 << 16

func (b *bitset) set(i int) {
	c := i / chunkBits
	for len(b.chunks) <= c {
		b.chunks = append(b.chunks, make([]uint64, chunkBits/64))
	}
	b.chunks[c][i%chunkBits/64] |= 1 << (i % 64)
}

func (b *bitset) has(i int) bool {
	c := i / chunkBits
	return c < len(b.chunks) && b.chunks[c][i%chunkBits/64]&(1<<(i%64)) != 0
}
