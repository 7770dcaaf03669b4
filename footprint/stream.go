package footprint

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// TileSource calls yield with each tile in the same order every time it is
// called, stopping early if yield returns false; it returns a read error,
// if any. PlaceStream may call it several times.
type TileSource func(yield func(Tile) bool) error

// errSourceChanged is the error of a source that does not give the same
// tiles on a later pass: an outline from two different deliveries would
// be wrong without a word.
var errSourceChanged = errors.New("the tile source changed between passes")

// PlaceStream is PlaceEach over a source read a few times instead of a
// slice: Rejected.Index is a tile's ordinal in the source (0-based). On an
// error the result is empty, and the tiles already given to rejected may
// not be all.
//
// A delivery of north-up tiles on a grid is read twice: once to check the
// tiles (in batches, as PlaceEach does) and count each CRS's distinct x and
// y values, once to fill each CRS's bitmap of covered cells. A third
// reading rejects the tiles of a CRS whose outline fails as a whole. What
// is held between the batches does not grow with the tiles: one bit a tile
// (placed as a box or not), each CRS's distinct values, bitmap, runs and
// boundary, and the outline. Beyond that, as in PlaceEach:
//   - rotated tiles are held, snapped, with their ordinal: they are rare,
//     and GEOS unions them all at once;
//   - an axis of more than maxDistinct distinct values is read once more
//     into a sort buffer of 16 bytes a box of its CRS;
//   - boxes whose cells do not fit a bitmap are read twice more into 8
//     bytes per box and slab it crosses (see the package doc).
func (ps *Projectors) PlaceStream(src TileSource, o Options, rejected func(Rejected)) (Result, error) {
	s := &stream{ps: ps, src: src, o: o.withDefaults(), rejected: rejected, byCode: map[int]*crsStream{}}
	res, err := s.place()
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// maxPending is the most tiles waiting in the batches of all CRSs: beyond
// it every batch is checked early, so that a delivery mixing thousands of
// CRSs does not wait with a batch of each. A tile's verdict does not
// depend on its batch (see checkCorners). A variable for the tests.
var maxPending = 16 * checkBatch

// stream is one PlaceStream call.
type stream struct {
	ps       *Projectors
	src      TileSource
	o        Options
	rejected func(Rejected)

	n       int    // tiles in the source, once read
	counted bool   // n is known
	boxes   bitset // tiles placed as boxes in their CRS's union
	byCode  map[int]*crsStream
	last    *crsStream // the previous tile's: most deliveries have one CRS
	pending int        // tiles waiting in batches

	// checkCorners' working memory, shared by the CRSs.
	cs   [][4]orb.Point
	errs []error
	cb   cornerBatch
}

// crsStream is one CRS's share of the delivery.
type crsStream struct {
	code  int
	p     *Projector
	err   error   // the CRS is unknown: its tiles are rejected
	u     Options // in the CRS's units
	batch []pendingTile

	boxes  int    // tiles placed as boxes
	sum    uint64 // their fingerprint, to tell a source that changes
	xc, yc axisCount
	xs, ys clusters
	quads  orb.MultiPolygon
	quadIx []int

	bitmap  *cellBitmap // the runs' pass fills one or the other
	ivals   *slabIntervals
	seen    int    // boxes read again on the latest pass
	seenSum uint64 // and their fingerprint
	lost    error  // why its boxes are rejected once all are read
	part    orb.MultiPolygon
}

// pendingTile is a sound tile waiting for its batch to be reprojected.
type pendingTile struct {
	i    int
	c    [4]orb.Point
	quad orb.Polygon // snapped; nil for a box
}

// place is PlaceStream: pass by pass, then CRS by CRS.
func (s *stream) place() (Result, error) {
	if err := s.pass(s.check); err != nil {
		return Result{}, err
	}
	s.flushAll()
	codes := s.codes()
	if err := s.axes(codes); err != nil {
		return Result{}, err
	}
	if err := s.runs(codes); err != nil {
		return Result{}, err
	}
	var res Result
	var parts []*crsStream
	for _, cr := range codes {
		area := s.outline(cr)
		if len(cr.part) > 0 {
			parts = append(parts, cr)
			res.Area += area
		}
	}
	res.WGS84 = s.merge(parts)
	return res, s.rejectLost(codes)
}

// pass reads the source once, giving f each tile and its ordinal. The first
// pass counts the tiles; a later one that does not read as many fails.
func (s *stream) pass(f func(i int, t Tile)) error {
	i := 0
	err := s.src(func(t Tile) bool {
		if s.counted && i >= s.n {
			i++
			return false
		}
		f(i, t)
		i++
		return true
	})
	if err != nil {
		return fmt.Errorf("reading tiles: %w", err)
	}
	switch {
	case !s.counted:
		s.n, s.counted = i, true
	case i > s.n:
		return fmt.Errorf("%w: %d tiles, then more", errSourceChanged, s.n)
	case i < s.n:
		return fmt.Errorf("%w: %d tiles, then %d", errSourceChanged, s.n, i)
	}
	return nil
}

func (s *stream) reject(i int, err error) {
	s.rejected(Rejected{Index: i, Err: fmt.Errorf("%w: %w", ErrMisplaced, err)})
}

// check is the first pass: a tile that is not sound in its CRS is rejected
// at once, a sound one waits for its CRS's batch to be reprojected.
func (s *stream) check(i int, t Tile) {
	c, err := corners(t)
	if err != nil {
		s.reject(i, err)
		return
	}
	cr := s.crs(t.EPSG)
	if cr.err != nil {
		s.reject(i, cr.err)
		return
	}
	pt := pendingTile{i: i, c: c}
	if t.Quad != nil {
		// Copied now: the source may reuse its rings for the next tile.
		pt.quad = snapQuad(t.Quad, cr.u.Tolerance)
	}
	// append's growth: a delivery giving each tile its own CRS must not
	// hold a large batch per CRS.
	cr.batch = append(cr.batch, pt)
	s.pending++
	switch {
	case len(cr.batch) == checkBatch:
		s.flush(cr)
	case s.pending > maxPending:
		s.flushAll()
	}
}

// crs is code's share, made on its first sound tile.
func (s *stream) crs(code int) *crsStream {
	if s.last != nil && s.last.code == code {
		return s.last
	}
	cr := s.byCode[code]
	if cr == nil {
		cr = &crsStream{code: code}
		if cr.p, cr.err = s.ps.Get(code); cr.err != nil {
			// Not kept: a delivery of tiles each in its own unknown CRS
			// would hold one a tile; ps remembers the failure.
			s.last = cr
			return cr
		}
		cr.u = cr.p.inUnits(s.o)
		tol := unionTolerance(cr.u.Tolerance)
		cr.xc.failed, cr.yc.failed = !(tol > 0), !(tol > 0)
		s.byCode[code] = cr
	}
	s.last = cr
	return cr
}

func (s *stream) flushAll() {
	for _, cr := range s.byCode {
		if len(cr.batch) > 0 {
			s.flush(cr)
		}
	}
}

// flush reprojects cr's batch and places its tiles, as group does.
func (s *stream) flush(cr *crsStream) {
	s.cs = slices.Grow(s.cs[:0], len(cr.batch))
	for _, pt := range cr.batch {
		s.cs = append(s.cs, pt.c)
	}
	if len(s.errs) < len(cr.batch) {
		s.errs = make([]error, len(cr.batch))
	}
	errs := s.errs[:len(cr.batch)]
	cr.p.checkCorners(s.cs, errs, &s.cb)
	tol := cr.u.Tolerance
	for k, pt := range cr.batch {
		b := Box{pt.c[0][0], pt.c[0][1], pt.c[2][0], pt.c[2][1]} // a box's corners
		switch {
		case errs[k] != nil:
			s.reject(pt.i, errs[k])
		case pt.quad != nil:
			cr.quads = append(cr.quads, pt.quad)
			cr.quadIx = append(cr.quadIx, pt.i)
		case b.MaxX-b.MinX <= tol || b.MaxY-b.MinY <= tol:
			// The exact union would snap it away without a word.
			s.reject(pt.i, fmt.Errorf("box %v within the snapping tolerance (%g)", b, tol))
		default:
			s.boxes.set(pt.i)
			cr.boxes++
			cr.sum = fingerprint(cr.sum, b)
			cr.xc.add(b.MinX, b.MaxX)
			cr.yc.add(b.MinY, b.MaxY)
		}
	}
	s.pending -= len(cr.batch)
	if len(cr.batch) < checkBatch {
		// Flushed early (the source ends, or too many tiles wait across
		// CRSs): this CRS may have no more tiles, and its batch goes.
		cr.batch = nil
		return
	}
	clear(cr.batch) // the quads are the CRS's now
	cr.batch = cr.batch[:0]
}

// codes are the CRSs that have tiles to place, in PlaceEach's order.
func (s *stream) codes() []*crsStream {
	var out []*crsStream
	for _, cr := range s.byCode {
		if cr.err == nil {
			cr.batch = nil
			out = append(out, cr)
		}
	}
	slices.SortFunc(out, func(a, b *crsStream) int { return a.code - b.code })
	return out
}

// fingerprint folds b into h: the boxes read on a later pass must give the
// same.
func fingerprint(h uint64, b Box) uint64 {
	for _, v := range [4]float64{b.MinX, b.MinY, b.MaxX, b.MaxY} {
		h = (h ^ math.Float64bits(v)) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	return h
}
