package footprint

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

// Differential tests: PlaceStream must give, for every input, what
// refPlaceEach (PlaceEach as it was, in reference_test.go) gives on a slice
// of the same tiles: same float bits, same rejected ordinals and error
// texts, whatever the order of the callbacks.

// sliceSource streams tiles.
func sliceSource(tiles []Tile) TileSource {
	return func(yield func(Tile) bool) error {
		for _, t := range tiles {
			if !yield(t) {
				return nil
			}
		}
		return nil
	}
}

// reusingSource streams tiles as a reader of a file would: each rotated
// tile's ring in one buffer, overwritten with garbage once yield returns.
func reusingSource(tiles []Tile) TileSource {
	return func(yield func(Tile) bool) error {
		var buf orb.Ring
		for _, t := range tiles {
			if t.Quad != nil {
				q := make(orb.Polygon, len(t.Quad))
				for i, r := range t.Quad {
					buf = append(buf[:0], r...)
					q[i] = buf
				}
				t.Quad = q
			}
			if !yield(t) {
				return nil
			}
			for i := range buf {
				buf[i] = orb.Point{math.NaN(), 1e300}
			}
		}
		return nil
	}
}

func sortRejected(rs []Rejected) {
	slices.SortFunc(rs, func(a, b Rejected) int { return a.Index - b.Index })
}

// placeStream is PlaceStream with Place's sorted rejections.
func (ps *Projectors) placeStream(src TileSource, o Options) (Result, error) {
	var rejected []Rejected
	res, err := ps.PlaceStream(src, o, func(r Rejected) { rejected = append(rejected, r) })
	sortRejected(rejected)
	res.Rejected = rejected
	return res, err
}

// refPlace is Place on refPlaceEach.
func (ps *Projectors) refPlace(tiles []Tile, o Options) Result {
	var rejected []Rejected
	res := ps.refPlaceEach(tiles, o, func(r Rejected) { rejected = append(rejected, r) })
	sortRejected(rejected)
	res.Rejected = rejected
	return res
}

// withMaxPending runs f with maxPending set to n: a small n checks
// batches early, as a delivery of many CRSs does.
func withMaxPending(n int, f func()) {
	old := maxPending
	maxPending = n
	defer func() { maxPending = old }()
	f()
}

// compareStream says where PlaceStream over tiles, read as a file whose
// buffers are reused, and, for a small delivery, as a slice with batches
// checked as early as can be, differs from refPlaceEach; "" if nowhere.
func compareStream(ps *Projectors, tiles []Tile, o Options) string {
	want := ps.refPlace(tiles, o)
	type variant struct {
		name    string
		src     TileSource
		pending int
	}
	vs := []variant{{"reused buffers", reusingSource(tiles), maxPending}}
	if len(tiles) <= 5000 {
		vs = append(vs, variant{"slice, early batches", sliceSource(tiles), 3})
	}
	for _, v := range vs {
		var got Result
		var err error
		withMaxPending(v.pending, func() { got, err = ps.placeStream(v.src, o) })
		if err != nil {
			return fmt.Sprintf("%s: %v", v.name, err)
		}
		if d := sameResult(got, want); d != "" {
			return v.name + ": " + d
		}
	}
	return ""
}

// TestPlaceStreamMatchesReference: the differential cases of Place, random
// deliveries that reach every path of the union, and the fuzz tests'
// corpora.
func TestPlaceStreamMatchesReference(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	cases := append(diffCases(), streamCases()...)
	cases = append(cases, corpusCases(t)...)
	for _, c := range cases {
		if d := compareStream(&ps, c.tiles, c.o); d != "" {
			t.Errorf("%s (%d tiles): %s", c.name, len(c.tiles), d)
		}
	}
	// PlaceEach, and so Place, streams the slice it is given.
	for _, c := range diffCases() {
		if len(c.tiles) > 10_000 {
			continue
		}
		var rejected []Rejected
		res := ps.PlaceEach(c.tiles, c.o, func(r Rejected) { rejected = append(rejected, r) })
		sortRejected(rejected)
		res.Rejected = rejected
		if d := sameResult(res, ps.refPlace(c.tiles, c.o)); d != "" {
			t.Errorf("PlaceEach, %s: %s", c.name, d)
		}
	}
}

// streamCases are random deliveries beyond diffCases: many CRSs with
// unknown ones among them, every spoil, thin tiles, and axes of more than
// maxDistinct values on either path of the runs.
func streamCases() []diffCase {
	var cs []diffCase
	add := func(name string, tiles []Tile, o Options) { cs = append(cs, diffCase{name, tiles, o}) }
	r := mix(13)
	add("CRSs, spoiled, rotated and thin", mixedDelivery(&r, 3000), Options{Tolerance: 1})
	add("CRSs, spoiled, rotated", mixedDelivery(&r, 3000), Options{})
	add("x beyond maxDistinct, bitmap", chains(&r, 70_000, 10, false), Options{})
	add("y beyond maxDistinct, bitmap", chains(&r, 70_000, 10, true), Options{})
	add("both beyond maxDistinct, merged", scattered(&r, 34_000), Options{})
	add("tolerance NaN, sorted", scattered(&r, 3000), Options{Tolerance: math.NaN()})
	for k := range 30 {
		n := 1 + r.intn(2000)
		if k%10 == 0 {
			n = 10_000
		}
		var tiles []Tile
		for _, b := range randomBoxes(&r, n) {
			// Degrees near 0°E 0°N keep both signs of zero.
			tiles = append(tiles, Tile{EPSG: 4326, Box: Box{b.MinX * 1e-4, b.MinY * 1e-4, b.MaxX * 1e-4, b.MaxY * 1e-4}})
		}
		add(fmt.Sprintf("random boxes %d", k), tiles, Options{Tolerance: []float64{0, 1e-3, 30}[k%3]})
	}
	return cs
}

// mixedDelivery is n tiles of the fuzz tests' CRSs and two unknown codes,
// on each CRS's grid, some rotated, spoiled or thin.
func mixedDelivery(r *mix, n int) []Tile {
	tiles := make([]Tile, 0, n)
	for range n {
		f := fuzzCRSs[r.intn(len(fuzzCRSs))]
		x, y := f.x+float64(r.intn(30))*f.side, f.y+float64(r.intn(30))*f.side
		t := Tile{EPSG: f.code, Box: Box{x, y, x + f.side, y + f.side}}
		switch r.intn(20) {
		case 0, 1:
			t = fuzzRotated(f.code, x, y, f.side, (r.float()*2-1)*0.2, r.intn(2) == 0)
		case 2, 3:
			t = spoil(r, t, f.side)
		case 4:
			t.Box.MaxX = x + f.side/400 // 0.5 m: thinner than a tolerance of 1 m
		case 5:
			t.EPSG = []int{999999, 0}[r.intn(2)]
		}
		tiles = append(tiles, t)
	}
	return tiles
}

// chains is n boxes in rows of boxes end to end with random widths: about
// n distinct x values but a few y values (swapped if transposed), so that
// one axis is sorted and the cells still fit a bitmap.
func chains(r *mix, n, rows int, transposed bool) []Tile {
	tiles := make([]Tile, 0, n)
	for row := range rows {
		x := 700000.0
		for range n / rows {
			w := 5 + math.Round(r.float()*1e6)/1e4
			b := Box{x, 6600000 + float64(row)*200, x + w, 6600200 + float64(row)*200}
			if transposed {
				b = Box{b.MinY - 5900000, b.MinX + 5900000, b.MaxY - 5900000, b.MaxX + 5900000}
			}
			tiles = append(tiles, Tile{EPSG: 2154, Box: b})
			x += w
		}
	}
	return tiles
}

// scattered is n small boxes at random over 1000 km: twice n distinct
// values on each axis, too many cells for a bitmap.
func scattered(r *mix, n int) []Tile {
	tiles := make([]Tile, 0, n)
	for range n {
		x, y := 200000+r.float()*800000, 6200000+r.float()*800000
		tiles = append(tiles, Tile{EPSG: 2154, Box: Box{x, y, x + 5 + r.float()*20, y + 5 + r.float()*20}})
	}
	return tiles
}

// corpusCases are the deliveries of FuzzOutline's corpus and of FuzzUnion's
// (its boxes in Lambert-93, in France).
func corpusCases(t *testing.T) []diffCase {
	var cs []diffCase
	for _, in := range fuzzCorpus(t, "FuzzOutline", [][]uint64{{1, 20, 0, 1, 0}, {2, 30, 60, 255, 40}, {3, 12, 200, 3, 128}, {4, 40, 30, 0x81, 255}}) {
		tiles, _ := fuzzDelivery(in[0], uint8(in[1]), uint8(in[2]), uint8(in[3]), uint8(in[4]))
		cs = append(cs, diffCase{fmt.Sprint("FuzzOutline ", in), tiles, Options{}})
	}
	for _, in := range fuzzCorpus(t, "FuzzUnion", [][]uint64{{1, 5, 4, 128, 30, 8}, {2, 1, 1, 255, 0, 0}, {3, 16, 16, 128, 100, 10}}) {
		boxes, _, _, _ := fuzzUnionGrid(in[0], uint8(in[1]), uint8(in[2]), uint8(in[3]), uint8(in[4]), uint8(in[5]))
		cs = append(cs, diffCase{fmt.Sprint("FuzzUnion ", in), lambert93(boxes), Options{}})
	}
	return cs
}

// lambert93 places boxes given about the origin in Lambert-93.
func lambert93(boxes []Box) []Tile {
	tiles := make([]Tile, len(boxes))
	for i, b := range boxes {
		tiles[i] = Tile{EPSG: 2154, Box: Box{b.MinX + 700000, b.MinY + 6600000, b.MaxX + 700000, b.MaxY + 6600000}}
	}
	return tiles
}

// fuzzCorpus is the seeds and the corpus files of a fuzz test whose
// arguments are integers.
func fuzzCorpus(t *testing.T, name string, seeds [][]uint64) [][]uint64 {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus for %s (%v)", name, err)
	}
	out := seeds
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var in []uint64
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n")[1:] {
			v, err := corpusValue(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			in = append(in, v)
		}
		out = append(out, in)
	}
	return out
}

// corpusValue reads a line of a corpus file: uint64(7) or byte('\x03').
func corpusValue(line string) (uint64, error) {
	if v, ok := strings.CutPrefix(line, "uint64("); ok {
		return strconv.ParseUint(strings.TrimSuffix(v, ")"), 10, 64)
	}
	if v, ok := strings.CutPrefix(line, "byte("); ok {
		s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
		if err != nil || len([]rune(s)) != 1 {
			return 0, fmt.Errorf("bad byte %q", line)
		}
		return uint64([]rune(s)[0]), nil
	}
	return 0, fmt.Errorf("unexpected %q", line)
}

// FuzzPlaceStream: any delivery of FuzzOutline's kinds, with unknown codes,
// thin tiles and duplicates, under any tolerance, gives refPlaceEach's
// result bit for bit, read from a slice or from reused buffers, with
// batches checked late or early. Seeds are FuzzOutline's.
func FuzzPlaceStream(f *testing.F) {
	f.Add(uint64(1), uint8(20), uint8(0), uint8(1), uint8(0), uint8(0))
	f.Add(uint64(2), uint8(30), uint8(60), uint8(255), uint8(40), uint8(1))
	f.Add(uint64(3), uint8(12), uint8(200), uint8(3), uint8(128), uint8(2))
	f.Add(uint64(4), uint8(40), uint8(30), uint8(0x81), uint8(255), uint8(3))
	var ps Projectors
	f.Cleanup(ps.Close)
	f.Fuzz(func(t *testing.T, seed uint64, n, hostileRate, crsMask, rotateRate, extra uint8) {
		tiles, _ := fuzzDelivery(seed, n, hostileRate, crsMask, rotateRate)
		r := mix(seed)
		for i := range tiles {
			switch r.intn(16) {
			case 0:
				tiles[i].EPSG = 999999
			case 1:
				tiles[i].Box.MaxX = tiles[i].Box.MinX + float64(r.intn(3))*0.005
			case 2:
				tiles = append(tiles, tiles[r.intn(len(tiles))])
			}
		}
		o := Options{Tolerance: []float64{0, 0.5, 1e-3, math.NaN(), 250}[extra%5], MaxSegment: float64(extra / 5 % 4 * 30)}
		if d := compareStream(&ps, tiles, o); d != "" {
			t.Fatal(d)
		}
	})
}

// changingSource is tiles read as they are on the first pass and changed
// by change from the pass given on; fail is the error of that pass, if any.
func changingSource(tiles []Tile, from int, change func([]Tile) []Tile, fail error) (TileSource, *int) {
	passes := 0
	return func(yield func(Tile) bool) error {
		passes++
		ts := tiles
		if passes >= from {
			if fail != nil {
				return fail
			}
			ts = change(slices.Clone(tiles))
		}
		for _, t := range ts {
			if !yield(t) {
				break
			}
		}
		return nil
	}, &passes
}

// TestPlaceStreamSourceErrors: a read error is returned, wrapped, on any
// pass; a source that gives other tiles on a later pass fails, and never
// gives an outline.
func TestPlaceStreamSourceErrors(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	grid := gridTiles(2154, 700000, 6600000, 200, 30, 20, nil)
	r := mix(17)
	merged := scattered(&r, 2000) // three passes: check, count, put
	errDisk := errors.New("disk on fire")
	changes := map[string]func([]Tile) []Tile{
		"one tile fewer":   func(ts []Tile) []Tile { return ts[:len(ts)-1] },
		"one tile more":    func(ts []Tile) []Tile { return append(ts, ts[0]) },
		"a box moved":      func(ts []Tile) []Tile { ts[7].Box.MinX -= 200; return ts },
		"a box shrunk":     func(ts []Tile) []Tile { ts[7].Box.MaxY -= 100; return ts },
		"a box in another": func(ts []Tile) []Tile { ts[7].EPSG = 3946; return ts },
		"a box unknown":    func(ts []Tile) []Tile { ts[7].EPSG = 999999; return ts },
		"two swapped":      func(ts []Tile) []Tile { ts[7], ts[100] = ts[100], ts[7]; return ts },
		"all gone":         func([]Tile) []Tile { return nil },
	}
	for _, set := range []struct {
		name   string
		tiles  []Tile
		passes int
	}{{"grid", grid, 2}, {"merged", merged, 3}} {
		for _, rj := range ps.refPlace(set.tiles, Options{}).Rejected {
			if rj.Index == 7 || rj.Index == 100 {
				t.Fatalf("%s: tile %d, which the test changes, is rejected: %v", set.name, rj.Index, rj.Err)
			}
		}
		for from := 1; from <= set.passes; from++ {
			src, _ := changingSource(set.tiles, from, nil, errDisk)
			res, err := ps.PlaceStream(src, Options{}, func(Rejected) {})
			if !errors.Is(err, errDisk) || res.WGS84 != nil {
				t.Errorf("%s, read error on pass %d: %v, %d polygons", set.name, from, err, len(res.WGS84))
			}
			for name, change := range changes {
				if from == 1 {
					continue
				}
				src, passes := changingSource(set.tiles, from, change, nil)
				res, err := ps.PlaceStream(src, Options{}, func(Rejected) {})
				if !errors.Is(err, errSourceChanged) || res.WGS84 != nil || *passes != from {
					t.Errorf("%s, %s on pass %d: %v after %d passes, %d polygons", set.name, name, from, err, *passes, len(res.WGS84))
				}
			}
		}
		src, passes := changingSource(set.tiles, 99, nil, nil)
		if _, err := ps.PlaceStream(src, Options{}, func(Rejected) {}); err != nil || *passes != set.passes {
			t.Errorf("%s: %v after %d passes, want %d", set.name, err, *passes, set.passes)
		}
	}
}

// TestPlaceStreamIgnoredStop: a source that goes on after yield said stop
// changes nothing and fails.
func TestPlaceStreamIgnoredStop(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	tiles := gridTiles(2154, 700000, 6600000, 200, 5, 5, nil)
	passes := 0
	src := func(yield func(Tile) bool) error {
		passes++
		n := len(tiles)
		if passes > 1 {
			n += 10
		}
		for i := range n {
			yield(tiles[i%len(tiles)])
		}
		return nil
	}
	if _, err := ps.PlaceStream(src, Options{}, func(Rejected) {}); !errors.Is(err, errSourceChanged) {
		t.Errorf("got %v, want the source changed", err)
	}
}

// TestPlaceStreamRejectsLost: when a CRS's outline is left out as a whole
// (it fails to reproject, or to merge with the others: no test delivery
// does), a last pass rejects exactly its boxes, and its rotated tiles at
// once.
func TestPlaceStreamRejectsLost(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	r := mix(19)
	tiles := mixedDelivery(&r, 2000)
	var rejected []Rejected
	s := &stream{ps: &ps, src: sliceSource(tiles), o: Options{}.withDefaults(), byCode: map[int]*crsStream{},
		rejected: func(rj Rejected) { rejected = append(rejected, rj) }}
	if err := s.pass(s.check); err != nil {
		t.Fatal(err)
	}
	s.flushAll()
	checked := len(rejected)
	codes := s.codes()
	if err := errors.Join(s.axes(codes), s.runs(codes)); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("lost")
	for k, cr := range codes {
		if k%3 == 0 {
			cr.lost = lost
			rejectEach(s.rejected, cr.quadIx, lost)
		}
	}
	if err := s.rejectLost(codes); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, tl := range tiles {
		if cr := s.byCode[tl.EPSG]; cr != nil && cr.lost != nil && (s.boxes.has(i) || slices.Contains(cr.quadIx, i)) {
			want = append(want, i)
		}
	}
	var got []int
	for _, rj := range rejected[checked:] {
		if rj.Err != lost {
			t.Fatalf("tile %d rejected for %v", rj.Index, rj.Err)
		}
		got = append(got, rj.Index)
	}
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("rejected %d tiles, want %d", len(got), len(want))
	}
}

// TestStreamCasesReachPaths: streamCases reach the paths they are made
// for, the sorted axes, under the bitmap and with merged intervals.
func TestStreamCasesReachPaths(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	want := map[string][4]bool{ // x sorted, y sorted, bitmap, merged
		"x beyond maxDistinct, bitmap":    {true, false, true, false},
		"y beyond maxDistinct, bitmap":    {false, true, true, false},
		"both beyond maxDistinct, merged": {true, true, false, true},
		"tolerance NaN, sorted":           {true, true, false, true},
		"CRSs, spoiled, rotated and thin": {false, false, true, false},
	}
	for _, c := range streamCases() {
		w, ok := want[c.name]
		if !ok {
			continue
		}
		s := &stream{ps: &ps, src: sliceSource(c.tiles), o: c.o.withDefaults(), byCode: map[int]*crsStream{}, rejected: func(Rejected) {}}
		if err := s.pass(s.check); err != nil {
			t.Fatal(err)
		}
		s.flushAll()
		codes := s.codes()
		if err := errors.Join(s.axes(codes), s.runs(codes)); err != nil {
			t.Fatal(err)
		}
		for _, cr := range codes {
			if got := [4]bool{cr.xc.failed, cr.yc.failed, cr.bitmap != nil, cr.ivals != nil}; got != w {
				t.Errorf("%s, EPSG:%d: sorted x, y, bitmap, merged: %v, want %v", c.name, cr.code, got, w)
			}
		}
	}
}

// TestStreamHoldsNoBatchPerCRS: a delivery giving each tile its own CRS
// holds no batch per CRS once its tiles are checked, and nothing at all
// for an unknown CRS (the review measured 30 KB a tile before).
func TestStreamHoldsNoBatchPerCRS(t *testing.T) {
	var ps Projectors
	defer ps.Close()
	var tiles []Tile
	for k := range 40 {
		tiles = append(tiles, Tile{EPSG: 2154, Box: Box{700000 + 200*float64(k), 6600000, 700200 + 200*float64(k), 6600200}})
		tiles = append(tiles, Tile{EPSG: 990000 + k, Box: Box{1, 1, 201, 201}}) // unknown codes
		tiles = append(tiles, Tile{EPSG: 32601 + k, Box: Box{500000, 4000000, 500200, 4000200}})
	}
	s := &stream{ps: &ps, src: sliceSource(tiles), o: Options{}.withDefaults(), rejected: func(Rejected) {}, byCode: map[int]*crsStream{}}
	if err := s.pass(s.check); err != nil {
		t.Fatal(err)
	}
	s.flushAll()
	if len(s.byCode) != 41 {
		t.Errorf("%d CRSs kept, want the 41 known ones", len(s.byCode))
	}
	for code, cr := range s.byCode {
		if cap(cr.batch) != 0 {
			t.Errorf("EPSG:%d holds a batch of %d after its tiles were checked", code, cap(cr.batch))
		}
	}
}
