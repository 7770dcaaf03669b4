package quality

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/openpcrs/pcrs-indexer/internal/extsort"
)

// Source calls yield with each tile in turn, stopping when yield returns
// false, and returns what kept it from giving them all. The check keeps
// the tile's strings, never the Tile itself.
type Source func(yield func(*Tile) bool) error

// errDeclined: the streamed check met a delivery it cannot judge exactly
// within its bounds; Check in memory judges it instead.
var errDeclined = errors.New("quality: declined by the streamed check")

// What the streamed check holds at most; past any of these it declines.
const (
	streamValues  = 1 << 16 // distinct values of one tally
	streamGroups  = 16      // CRSs: each costs passes over the members
	streamRuns    = 1 << 20 // columns and runs of empty cells of a CRS
	streamCell    = 8192    // tiles filed in one overlap cell
	streamBig     = 16      // tiles too large to file, of a CRS: a pass each
	maxStreamPath = 64 << 10
)

// CheckStream is Check of the tiles src gives, read once and kept on disk
// between the passes that judge them: what it holds does not grow with
// their number (a few tallies of distinct values, the sorts' buffers, the
// holes' runs, the listed warnings). It needs the tiles in strictly
// increasing path order, as a storage's listing gives them; a delivery it
// cannot judge exactly within its bounds (paths out of order, more than
// streamGroups CRSs or streamValues distinct values of a tally, more
// than streamBig tiles over 64 cells each in a CRS, an overlap search
// over its budget) is read
// back into memory and judged by Check instead, and declined says
// why (nil when it did not decline). Either way the verdict is Check's,
// which the tests hold it to.
func CheckStream(src Source, opts Options) (res Result, declined, err error) {
	res, declined, err = checkStream(src, opts)
	if err != nil {
		return Result{}, nil, fmt.Errorf("quality: %w", err)
	}
	return res, declined, nil
}

func checkStream(src Source, opts Options) (res Result, declined, err error) {
	s, err := newStreamer(withDefaults(opts))
	if err != nil {
		return Result{}, nil, err
	}
	defer s.close()
	if err := s.spool(src); err != nil {
		return Result{}, nil, err
	}
	res, err = s.check()
	if errors.Is(err, errDeclined) {
		res, inMemErr := s.inMemory()
		return res, err, inMemErr
	}
	return res, nil, err
}

// streamer is one streamed check.
type streamer struct {
	opts  Options
	c     *checker // its lists and counts; it holds no tiles
	tiles *tileFile
	// declined says why, as soon as the input leaves the streamed
	// check's bounds; the tiles are still all written, for Check.
	declined string
	last     []byte // the previous path

	attrs  [4]mixedAttr
	values [4]valueCounter
	res    resTally
	mode   float64
	hasRes bool
	peers  peerIndex
	sizes  *extsort.Sorter // (peer group, size)
	median []float64       // by peer group; 0 under minPeers

	groups map[int32]*streamGroup
	order  []*streamGroup // by EPSG code, as Check orders its groups
	sides  *extsort.Sorter
	finite int // tiles with a finite box

	members *extsort.Sorted
	offsets *extsort.Sorted // (tile, dx, dy) of the tiles off the grid
	filed   *extsort.Sorted // (CRS, cell, member, …) for the overlaps
	cells   *extsort.Sorted // (CRS, cell) occupied, for the holes
	votes   map[candidate]int
}

// streamGroup is one CRS's tiles: Check's group without its members.
type streamGroup struct {
	*group
	code   int32
	n      int
	maxAbs float64
	attrs  *Attrs // EPSG only: what warnings read of a member
	cells  cells  // where overlaps are looked for
	// big are the first copies too large to file: each is compared
	// with every other tile.
	big []filedTile
}

func newStreamer(opts Options) (*streamer, error) {
	tf, err := newTileFile()
	if err != nil {
		return nil, err
	}
	s := &streamer{opts: opts, c: newChecker(nil, opts), tiles: tf, attrs: mixedAttrs(), groups: map[int32]*streamGroup{}}
	for k := range s.values {
		s.values[k].limit = streamValues
	}
	s.res.limit = streamValues
	s.peers.limit = streamValues
	s.sizes = extsort.New(extsort.Options{})
	s.sides = extsort.New(extsort.Options{})
	return s, nil
}

func (s *streamer) close() {
	s.tiles.close()
	s.sizes.Close()
	s.sides.Close()
	for _, f := range []*extsort.Sorted{s.members, s.offsets, s.filed, s.cells} {
		if f != nil {
			f.Close()
		}
	}
}

// spool writes every tile to disk, gathering what the whole delivery
// decides: its values, resolutions, peers' sizes and CRSs' sides.
func (s *streamer) spool(src Source) error {
	var err error
	srcErr := src(func(t *Tile) bool {
		if err = s.tiles.add(t); err != nil {
			return false
		}
		err = s.take(t)
		return err == nil
	})
	if err != nil {
		return err
	}
	if srcErr != nil {
		return fmt.Errorf("reading the tiles: %w", srcErr)
	}
	return s.tiles.finish()
}

// take is the first look at each tile.
func (s *streamer) take(t *Tile) error {
	n := s.tiles.n - 1
	switch {
	case s.declined != "":
		return nil
	case t.Path == "" || n > 0 && t.Path <= string(s.last):
		s.declined = "paths not listed in strictly increasing order" // ties would need Check's tie-breaks
		return nil
	case n >= math.MaxInt32:
		s.declined = "more tiles than an int32 counts"
		return nil
	case len(t.Path) > maxStreamPath:
		s.declined = "a path over 64 KiB" // a sort's record holds one
		return nil
	}
	s.last = append(s.last[:0], t.Path...)
	for k := range s.attrs {
		s.values[k].add(s.attrs[k].value(t))
	}
	s.res.add(t.attrs().Resolution)
	if t.Size > 0 {
		g, ok := s.peers.of(t.attrs())
		if !ok {
			s.declined = "too many kinds of peers"
			return nil
		}
		s.peers.counts[g]++
		if err := s.sizes.Add(be64(be32(nil, uint32(g)), uint64(t.Size))); err != nil {
			return err
		}
	}
	if !finite(t.Box) {
		return nil
	}
	code := t.attrs().EPSG
	g := s.groups[code]
	if g == nil {
		if len(s.groups) == streamGroups {
			s.declined = "too many CRSs"
			return nil
		}
		g = &streamGroup{code: code, attrs: &Attrs{EPSG: code}}
		s.groups[code] = g
	}
	g.n++
	s.finite++
	b := &t.Box
	g.maxAbs = max(g.maxAbs, math.Abs(b[0]), math.Abs(b[1]), math.Abs(b[2]), math.Abs(b[3]))
	side := min(b[2]-b[0], b[3]-b[1]) // > 0: finite boxes are not flat
	return s.sides.Add(be64(be32(nil, up32(code)), math.Float64bits(side)))
}

// check judges the delivery from disk, as Check does in memory.
func (s *streamer) check() (Result, error) {
	if s.declined != "" {
		return Result{}, fmt.Errorf("%w: %s", errDeclined, s.declined)
	}
	for k, v := range s.values {
		if v.over {
			return Result{}, fmt.Errorf("%w: more than %d %s", errDeclined, streamValues, s.attrs[k].name)
		}
	}
	if s.res.over {
		return Result{}, fmt.Errorf("%w: more than %d resolutions", errDeclined, streamValues)
	}
	s.c.reportMixed(&s.values)
	s.mode, s.hasRes = s.res.mode()
	steps := []func() error{s.medians, s.tolerances, s.judgeTiles, s.learnGrids, s.judgeMembers, s.overlaps, s.namesAndHoles}
	for _, step := range steps {
		if err := step(); err != nil {
			return Result{}, err
		}
	}
	return s.c.result(), nil
}

// medians reads each peer group's sizes back sorted, for its median.
func (s *streamer) medians() error {
	sorted, err := s.sizes.Sort()
	if err != nil {
		return err
	}
	defer sorted.Close()
	s.median = make([]float64, len(s.peers.counts))
	at, prev := 0, int64(0)
	group := -1
	return sorted.Each(func(rec []byte) error {
		g, size := int(binary.BigEndian.Uint32(rec)), int64(binary.BigEndian.Uint64(rec[4:]))
		if g != group {
			group, at = g, 0
		}
		n := s.peers.counts[g]
		if n >= minPeers && at == n/2 {
			if n%2 == 1 {
				s.median[g] = float64(size)
			} else {
				s.median[g] = (float64(prev) + float64(size)) / 2
			}
		}
		at, prev = at+1, size
		return nil
	})
}

// tolerances sets each CRS's lattice from its tiles' median side.
func (s *streamer) tolerances() error {
	for _, g := range s.groups {
		s.order = append(s.order, g)
	}
	slices.SortFunc(s.order, func(a, b *streamGroup) int { return int(a.code) - int(b.code) })
	sorted, err := s.sides.Sort()
	if err != nil {
		return err
	}
	defer sorted.Close()
	var g *streamGroup
	at := 0
	return sorted.Each(func(rec []byte) error {
		if code := down32(binary.BigEndian.Uint32(rec)); g == nil || code != g.code {
			g, at = s.groups[code], 0
		}
		if at == g.n/2 {
			median := math.Float64frombits(binary.BigEndian.Uint64(rec[4:]))
			tol := max(min(s.opts.Tolerance, median/1000), g.maxAbs*0x1p-40, 1e-300)
			g.group = &group{epsg: int(g.code), tol: tol, inv: 1 / tol}
		}
		at++
		return nil
	})
}

// judgeTiles is the pass over the tiles that needs the delivery's
// resolution and medians, and files each tile with a finite box as a
// member of its CRS, on disk, sorted as Check sorts its members.
func (s *streamer) judgeTiles() error {
	members := extsort.New(extsort.Options{Compare: compareMembers})
	defer members.Close()
	var rec []byte
	err := s.tiles.each(func(i int32, t *Tile) error {
		if s.hasRes && oddResolution(t, s.mode) {
			s.c.reportResolution(t, s.mode)
		}
		if t.Size > 0 {
			g, ok := s.peers.of(t.attrs())
			if !ok || int(g) >= len(s.median) {
				return fmt.Errorf("%w: tile %d's peers were not counted", errShortTiles, i)
			}
			if m := s.median[g]; m > 0 && float64(t.Size) < outlierRatio*m {
				s.c.reportSize(t, m, s.peers.counts[g])
			}
		}
		if !finite(t.Box) {
			return nil
		}
		g := s.groups[t.attrs().EPSG]
		rec = memberRecord(rec[:0], g.group, i, t)
		return members.Add(rec)
	})
	if err != nil {
		return err
	}
	if s.hasRes {
		s.c.announced(s.mode)
	}
	s.members, err = members.Sort()
	return err
}

// A member on disk: CRS (4 bytes), lattice box (32), tile index (4), box
// (32), path. Integers are big-endian with the sign flipped, so that
// bytes order as numbers.
const (
	memberKey  = 36
	memberTile = 36
	memberBox  = 40
	memberPath = 72
)

func memberRecord(rec []byte, g *group, i int32, t *Tile) []byte {
	rec = be32(rec, up32(int32(g.epsg)))
	for _, v := range t.Box {
		rec = be64(rec, uint64(g.key(v))^1<<63)
	}
	rec = be32(rec, uint32(i))
	for _, v := range t.Box {
		rec = be64(rec, math.Float64bits(v))
	}
	return append(rec, t.Path...)
}

// compareMembers is Check's order: lattice box, then path (paths are
// distinct here, so compareTiles' other keys never decide).
func compareMembers(a, b []byte) int {
	if c := bytes.Compare(a[:memberKey], b[:memberKey]); c != 0 {
		return c
	}
	return bytes.Compare(a[memberPath:], b[memberPath:])
}

// streamMember is a member read back; path views the record.
type streamMember struct {
	code int32
	key  [4]int64
	tile int32
	box  [4]float64
	path []byte
}

func readMember(rec []byte) streamMember {
	m := streamMember{code: down32(binary.BigEndian.Uint32(rec)), tile: int32(binary.BigEndian.Uint32(rec[memberTile:])), path: rec[memberPath:]}
	for k := range m.key {
		m.key[k] = int64(binary.BigEndian.Uint64(rec[4+8*k:]) ^ 1<<63)
		m.box[k] = math.Float64frombits(binary.BigEndian.Uint64(rec[memberBox+8*k:]))
	}
	return m
}

// eachMember reads the members of one CRS (every CRS for nil) in order.
func (s *streamer) eachMember(g *streamGroup, fn func(m *streamMember) error) error {
	return s.members.Each(func(rec []byte) error {
		m := readMember(rec)
		if g != nil && m.code != g.code {
			return nil
		}
		return fn(&m)
	})
}

// learnGrids learns each CRS's grid, two passes over its members, and
// where it has none, the cell side overlaps are looked for in.
func (s *streamer) learnGrids() error {
	for _, g := range s.order {
		var err error
		keys := func(yield func([4]int64)) {
			if err == nil {
				err = s.eachMember(g, func(m *streamMember) error { yield(m.key); return nil })
			}
		}
		gr, ok, over := learnGridOver(g.n, keys, streamValues)
		switch {
		case err != nil:
			return err
		case over:
			return fmt.Errorf("%w: a tally of grid sizes or phases over its bound", errDeclined)
		}
		g.grid, g.hasGrid = gr, ok
		if ok {
			g.cells = cells(gr)
			continue
		}
		median, err := s.medianSide(g)
		if err != nil {
			return err
		}
		side := max(median, 1)
		g.cells = cells{sx: side, sy: side}
	}
	return nil
}

// medianSide is the median of the CRS's members' larger sides, in
// lattice steps: the cell a CRS without grid looks for overlaps in.
func (s *streamer) medianSide(g *streamGroup) (int64, error) {
	sides := extsort.New(extsort.Options{})
	defer sides.Close()
	err := s.eachMember(g, func(m *streamMember) error {
		return sides.Add(be64(nil, uint64(max(m.key[2]-m.key[0], m.key[3]-m.key[1]))^1<<63))
	})
	if err != nil {
		return 0, err
	}
	sorted, err := sides.Sort()
	if err != nil {
		return 0, err
	}
	defer sorted.Close()
	var median int64
	at := 0
	err = sorted.Each(func(rec []byte) error {
		if at == sorted.Len()/2 {
			median = int64(binary.BigEndian.Uint64(rec) ^ 1<<63)
		}
		at++
		return nil
	})
	return median, err
}

// judgeMembers is the pass over the members in Check's order: copies
// and tiles off the grid are named, each first copy is filed in the
// cells overlaps are looked for in, each member's grid cells are noted
// for the holes, and names are sampled for their pattern.
func (s *streamer) judgeMembers() error {
	offsets := extsort.New(extsort.Options{})
	filed := extsort.New(extsort.Options{})
	occupied := extsort.New(extsort.Options{Same: bytes.Equal})
	defer offsets.Close()
	defer filed.Close()
	defer occupied.Close()
	step := max(1, s.finite/nameSample)
	s.votes = map[candidate]int{}
	var (
		g                   *streamGroup
		pos, k, nFiled, nOc int
		first               [4]int64
		firstPath           string
		buf                 [maxGroups]digits
		rec                 []byte
		tile                Tile
	)
	err := s.eachMember(nil, func(m *streamMember) error {
		if g == nil || m.code != g.code {
			g, pos, nFiled, nOc = s.groups[m.code], 0, 0, 0
		}
		// One Tile for every member: what a warning keeps it copies.
		tile = Tile{Path: string(m.path), Box: m.box, Attrs: g.attrs}
		t := &tile
		rep := pos == 0 || m.key != first
		if rep {
			first, firstPath = m.key, t.Path
		} else {
			s.c.reportDuplicate(t, firstPath)
		}
		off, isOff := [2]float64{}, false
		if g.hasGrid {
			if off, isOff = s.c.judgeGrid(g.group, m.key, t); isOff {
				rec = be64(be64(be32(rec[:0], uint32(m.tile)), math.Float64bits(off[0])), math.Float64bits(off[1]))
				if err := offsets.Add(rec); err != nil {
					return err
				}
			}
		}
		if sp, ok := spanOf(m.key); rep && ok {
			lo, hi := g.cells.cellsOf(sp)
			cols, rows := hi[0]-lo[0]+1, hi[1]-lo[1]+1
			if fileAlone(cols, rows, nFiled, cellLimit(g.n)) {
				if len(g.big) == streamBig {
					return fmt.Errorf("%w: more than %d tiles over 64 cells", errDeclined, streamBig)
				}
				// Compared with every other tile instead, as Check does.
				g.big = append(g.big, filedTile{code: g.code, pos: int32(pos), span: sp, off: isOff, tile: *t})
			} else {
				for col := lo[0]; col <= hi[0]; col++ {
					for row := lo[1]; row <= hi[1]; row++ {
						rec = filedRecord(rec[:0], g.code, [2]int64{col, row}, int32(pos), m, isOff)
						if err := filed.Add(rec); err != nil {
							return err
						}
					}
				}
				nFiled += int(cols * rows)
			}
		}
		if g.hasGrid {
			var err error
			g.occupies(m.key, nOc, cellLimit(g.n), func(c cellAt) {
				nOc++
				if err == nil {
					rec = be64(be64(be32(rec[:0], up32(g.code)), uint64(c.col)^1<<63), uint64(c.row)^1<<63)
					err = occupied.Add(rec)
				}
			})
			if err != nil {
				return err
			}
		}
		if k++; (k-1)%step == 0 {
			_, _, stem := baseName(t.Path)
			if gs := groupsOf(stem, &buf); len(gs) >= 2 {
				vote(s.votes, gs, t.Box, g.tol)
			}
		}
		pos++
		return nil
	})
	if err != nil {
		return err
	}
	// The members are all judged: their file can go before the sorts
	// below double theirs on disk.
	s.members.Close()
	s.members = nil
	if s.offsets, err = offsets.Sort(); err != nil {
		return err
	}
	if s.filed, err = filed.Sort(); err != nil {
		return err
	}
	s.cells, err = occupied.Sort()
	return err
}

// A filed member: CRS (4), cell (16), position in its CRS (4), lattice
// box (32), off the grid (1), box (32), path. Sorted as Check sorts what
// it files: cell, then position.
const (
	filedKey  = 24
	filedBox  = 57
	filedPath = 89
)

func filedRecord(rec []byte, code int32, cell [2]int64, pos int32, m *streamMember, off bool) []byte {
	rec = be32(rec, up32(code))
	rec = be64(be64(rec, uint64(cell[0])^1<<63), uint64(cell[1])^1<<63)
	rec = be32(rec, uint32(pos))
	for _, v := range m.key {
		rec = be64(rec, uint64(v)^1<<63)
	}
	if off {
		rec = append(rec, 1)
	} else {
		rec = append(rec, 0)
	}
	for _, v := range m.box {
		rec = be64(rec, math.Float64bits(v))
	}
	return append(rec, m.path...)
}

// filedTile is a filed member read back.
type filedTile struct {
	code int32
	cell [2]int64
	pos  int32
	span span
	off  bool
	tile Tile
}

func readFiled(rec []byte) filedTile {
	f := filedTile{code: down32(binary.BigEndian.Uint32(rec)), pos: int32(binary.BigEndian.Uint32(rec[20:])), off: rec[56] == 1}
	f.cell = [2]int64{int64(binary.BigEndian.Uint64(rec[4:]) ^ 1<<63), int64(binary.BigEndian.Uint64(rec[12:]) ^ 1<<63)}
	var key [4]int64
	for k := range key {
		key[k] = int64(binary.BigEndian.Uint64(rec[filedKey+8*k:]) ^ 1<<63)
		f.tile.Box[k] = math.Float64frombits(binary.BigEndian.Uint64(rec[filedBox+8*k:]))
	}
	f.span, _ = spanOf(key)
	f.tile.Path = string(rec[filedPath:])
	return f
}

// overlaps compares the tiles filed in each cell, then the tiles too
// large to file with each other and with the filed ones, as Check does,
// CRS by CRS with its budget; a search over it needs Check's sweep over
// every tile.
func (s *streamer) overlaps() error {
	for _, g := range s.order {
		o := &overlapSearch{s: s, g: g, budget: s.opts.pairBudget}
		if o.budget <= 0 {
			o.budget = pairsPerTile*g.n + basePairs
		}
		if err := o.inCells(); err != nil {
			return err
		}
		if err := o.bigOnes(); err != nil {
			return err
		}
		s.c.found(Overlap, o.found)
	}
	return nil
}

// overlapSearch is one CRS's overlap search.
type overlapSearch struct {
	s      *streamer
	g      *streamGroup
	budget int
	found  int
}

// eachFiled reads the CRS's filed tiles in order until fn says stop.
func (o *overlapSearch) eachFiled(fn func(f *filedTile) (more bool, err error)) error {
	stop := errors.New("stop")
	err := o.s.filed.Each(func(rec []byte) error {
		if down32(binary.BigEndian.Uint32(rec)) != o.g.code {
			return nil
		}
		f := readFiled(rec)
		f.tile.Attrs = o.g.attrs
		more, err := fn(&f)
		if err == nil && !more {
			err = stop
		}
		return err
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

// inCells compares the tiles filed in each cell with each other.
func (o *overlapSearch) inCells() error {
	var in []filedTile
	var cell [2]int64
	endCell := func() error {
		k := len(in)
		pairs := k * (k - 1) / 2
		if pairs > o.budget {
			return fmt.Errorf("%w: an overlap cell over the search budget", errDeclined)
		}
		o.budget -= pairs
		for a := range in {
			for b := a + 1; b < k; b++ {
				o.pair(&in[a], &in[b], &cell)
			}
		}
		in = in[:0]
		return nil
	}
	err := o.eachFiled(func(f *filedTile) (bool, error) {
		if len(in) > 0 && f.cell != cell {
			if err := endCell(); err != nil {
				return false, err
			}
		}
		if len(in) == streamCell {
			return false, fmt.Errorf("%w: an overlap cell of too many tiles", errDeclined)
		}
		cell = f.cell
		in = append(in, *f)
		return true, nil
	})
	if err != nil {
		return err
	}
	return endCell()
}

// bigOnes compares each tile too large to file with the later ones and
// with the tiles filed in its columns, spending the budget as Check does
// (one pass over the filed tiles each: there are at most streamBig).
func (o *overlapSearch) bigOnes() error {
	big := o.g.big
	for x := range big {
		a := &big[x]
		for y := x + 1; y < len(big); y++ {
			if err := o.spend(); err != nil {
				return err
			}
			o.pair(a, &big[y], nil)
		}
		lo, hi := o.g.cells.cellsOf(a.span)
		err := o.eachFiled(func(f *filedTile) (bool, error) {
			switch {
			case f.cell[0] < lo[0]:
				return true, nil
			case f.cell[0] > hi[0]:
				return false, nil
			}
			if err := o.spend(); err != nil {
				return false, err
			}
			if row := f.cell[1]; row >= lo[1] && row <= hi[1] {
				o.pair(a, f, &f.cell)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// spend takes one comparison from the budget; an exhausted budget needs
// Check's count of every overlap.
func (o *overlapSearch) spend() error {
	if o.budget <= 0 {
		return fmt.Errorf("%w: the overlap search over its budget", errDeclined)
	}
	o.budget--
	return nil
}

// pair counts and reports a and b if they overlap, looked for in cell.
func (o *overlapSearch) pair(a, b *filedTile, cell *[2]int64) {
	if o.g.cells.found(a.span, b.span, cell) {
		o.found++
		o.s.reportOverlap(a, b)
	}
}

func (s *streamer) reportOverlap(a, b *filedTile) {
	later := a.tile.Path > b.tile.Path || a.tile.Path == b.tile.Path && a.pos > b.pos
	if blamesFirst(a.off, b.off, later) {
		s.c.reportOverlap(&a.tile, &b.tile)
	} else {
		s.c.reportOverlap(&b.tile, &a.tile)
	}
}

// namesAndHoles learns the names' pattern and judges every name, then
// lists the holes, whose cells the pattern names.
func (s *streamer) namesAndHoles() error {
	p, err := s.names()
	if err != nil {
		return err
	}
	return s.holes(p)
}

func (s *streamer) names() (*pattern, error) {
	best, ok := bestCandidate(s.votes)
	if !ok {
		return nil, nil
	}
	v := &verdict{folders: map[folderExt]folder{}}
	var buf [maxGroups]digits
	err := s.eachPlaced(func(t *Tile, placed [4]float64, tol float64) error {
		v.judge(best, t, placed, tol, &buf)
		if len(v.folders) > streamValues {
			return fmt.Errorf("%w: too many folders for the names", errDeclined)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.flush()
	if !v.holds() {
		return nil, nil
	}
	p := &pattern{candidate: best, template: v.template()}
	err = s.eachPlaced(func(t *Tile, placed [4]float64, tol float64) error {
		if named, agrees := judgeName(best, t, placed, tol, &buf); named && !agrees {
			s.c.reportName(t, p, placed, tol)
		}
		return nil
	})
	return p, err
}

// eachPlaced reads back the tiles with a finite box, each with where
// the names judge it (its cell for a tile off the grid) and its CRS's
// tolerance.
func (s *streamer) eachPlaced(fn func(t *Tile, placed [4]float64, tol float64) error) error {
	it := s.offsets.Iter()
	have := it.Next()
	err := s.tiles.each(func(i int32, t *Tile) error {
		if !finite(t.Box) {
			return nil
		}
		for have && int32(binary.BigEndian.Uint32(it.Record())) < i {
			have = it.Next()
		}
		b := t.Box
		if rec := it.Record(); have && int32(binary.BigEndian.Uint32(rec)) == i {
			dx, dy := math.Float64frombits(binary.BigEndian.Uint64(rec[4:])), math.Float64frombits(binary.BigEndian.Uint64(rec[12:]))
			b = [4]float64{b[0] - dx, b[1] - dy, b[2] - dx, b[3] - dy}
		}
		return fn(t, b, s.groups[t.attrs().EPSG].tol)
	})
	if err == nil {
		err = it.Err()
	}
	return err
}

// holes reads each CRS's occupied cells back in (column, row) order.
func (s *streamer) holes(p *pattern) error {
	var g *streamGroup
	var b runBuilder
	flush := func() {
		if g != nil {
			cols, runs := b.finish()
			s.c.holesIn(g.group, cols, runs, p)
		}
		b = runBuilder{}
	}
	err := s.cells.Each(func(rec []byte) error {
		if code := down32(binary.BigEndian.Uint32(rec)); g == nil || code != g.code {
			flush()
			g = s.groups[code]
		}
		b.add(cellAt{int64(binary.BigEndian.Uint64(rec[4:]) ^ 1<<63), int64(binary.BigEndian.Uint64(rec[12:]) ^ 1<<63)})
		if len(b.cols)+len(b.runs) > streamRuns {
			return fmt.Errorf("%w: too many columns or runs of empty cells", errDeclined)
		}
		return nil
	})
	if err != nil {
		return err
	}
	flush()
	return nil
}

// inMemory is Check of the tiles read back from disk.
func (s *streamer) inMemory() (Result, error) {
	tiles := make([]Tile, 0, s.tiles.n)
	err := s.tiles.each(func(_ int32, t *Tile) error {
		tiles = append(tiles, *t)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Check(tiles, s.opts), nil
}

// peerIndex numbers the peer groups in the order they are met.
type peerIndex struct {
	index   map[peerKey]int32
	counts  []int
	lastKey peerKey
	last    int32
	limit   int
}

// of is a's peer group; false past limit groups. By value, never by
// pointer: a source may reuse one Attrs for every tile.
func (p *peerIndex) of(a *Attrs) (int32, bool) {
	key := peerKey{a.Width, a.Height, a.Format, a.Compression}
	if p.index != nil && key == p.lastKey {
		return p.last, true
	}
	g, ok := p.index[key]
	if !ok {
		if len(p.counts) == p.limit {
			return 0, false
		}
		if p.index == nil {
			p.index = map[peerKey]int32{}
		}
		g = int32(len(p.counts))
		p.index[key] = g
		p.counts = append(p.counts, 0)
	}
	p.lastKey, p.last = key, g
	return g, true
}

func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// up32 and down32 write a signed code so that its bytes order as numbers.
func up32(v int32) uint32   { return uint32(v) ^ 1<<31 }
func down32(u uint32) int32 { return int32(u ^ 1<<31) }
