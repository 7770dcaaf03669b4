package quality

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkInvariants is what every Result must hold: every kind counted,
// lists capped and sorted, Truncated exactly when something is not
// listed, and JSON that encodes (no NaN nor Inf slips in).
func checkInvariants(t *testing.T, res Result, max int) {
	t.Helper()
	if len(res.ByKind) != len(Kinds) {
		t.Fatalf("ByKind %v: not every kind", res.ByKind)
	}
	listed := map[Kind]int{}
	for _, w := range res.Warnings {
		listed[w.Kind]++
	}
	truncated := false
	for _, k := range Kinds {
		n, ok := res.ByKind[k]
		if !ok || n < listed[k] || listed[k] > max {
			t.Fatalf("%s: counted %d (%v), listed %d, cap %d", k, n, ok, listed[k], max)
		}
		truncated = truncated || n > listed[k]
	}
	if truncated != res.Truncated {
		t.Fatalf("Truncated %v, counts %v, listed %v", res.Truncated, res.ByKind, listed)
	}
	if !slices.IsSortedFunc(res.Warnings, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(kindIndex(a.Kind), kindIndex(b.Kind)), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Other, b.Other))
	}) {
		t.Fatalf("not sorted: %v", lines(res.Warnings))
	}
	if _, err := json.Marshal(res.Warnings); err != nil {
		t.Fatalf("report.json: %v", err)
	}
}

// fuzzTiles builds a delivery from a seed: mostly a grid, with shifted,
// resized, copied, renamed and broken tiles, names with and without
// digits, and, when wild, any box at all (NaN, Inf, huge, inverted).
func fuzzTiles(seed uint64, n int, spread, res float64, wild bool) []Tile {
	r := rand.New(rand.NewPCG(seed, 7))
	tiles := make([]Tile, 0, n)
	for range n {
		x := math.Floor(r.Float64()*12) * 200
		y := math.Floor(r.Float64()*12) * 200
		w := 200.0
		switch r.IntN(12) {
		case 0:
			x += r.NormFloat64() * spread
		case 1:
			w = math.Abs(r.NormFloat64() * spread)
		case 2:
			if len(tiles) > 0 {
				tiles = append(tiles, tiles[r.IntN(len(tiles))]) // a copy, path and all
				continue
			}
		}
		b := [4]float64{x, y, x + w, y + w}
		if wild {
			specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, 0, 1e-300, spread, 1e12, 9.99e11}
			for k := range b {
				if r.IntN(4) == 0 {
					b[k] = specials[r.IntN(len(specials))]
				}
			}
		}
		var path string
		switch r.IntN(4) {
		case 0:
			path = fmt.Sprintf("d%d/sans-chiffres-%c.tif", r.IntN(3), 'a'+rune(r.IntN(26)))
		case 1:
			path = fmt.Sprintf("d%d/%d", r.IntN(3), r.Int64())
		default:
			path = fmt.Sprintf("d%d/T_%07.0f_%07.0f.tif", r.IntN(3), b[0], b[1])
		}
		tiles = append(tiles, Tile{Path: path, Box: b, Attrs: randomAttrs(r, res), Size: r.Int64N(3) * r.Int64N(1_000_000)})
	}
	return tiles
}

func FuzzCheck(f *testing.F) {
	f.Add(uint64(1), uint16(100), 200.0, 0.05, false, uint8(0))
	f.Add(uint64(2), uint16(300), 1e9, 0.1, true, uint8(3))
	f.Add(uint64(3), uint16(40), math.NaN(), 0.0, true, uint8(1))
	f.Add(uint64(4), uint16(500), 3.0, math.Inf(1), false, uint8(2))
	f.Add(uint64(5), uint16(1), 0.0, -1.0, true, uint8(0))
	f.Add(uint64(6), uint16(0), 0.0, 0.05, false, uint8(0))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, spread, res float64, wild bool, capped uint8) {
		tiles := fuzzTiles(seed, int(n%600), spread, res, wild)
		opts := Options{MaxPerKind: int(capped % 4), pairBudget: int(capped%3) * 50}
		max := opts.MaxPerKind
		if max == 0 {
			max = DefaultMaxPerKind
		}
		a := Check(tiles, opts)
		checkInvariants(t, a, max)
		r := rand.New(rand.NewPCG(seed, 8))
		r.Shuffle(len(tiles), func(i, j int) { tiles[i], tiles[j] = tiles[j], tiles[i] })
		b := Check(tiles, opts)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("the order changes the verdict:\n%v %v\n%v %v", lines(a.Warnings), a.ByKind, lines(b.Warnings), b.ByKind)
		}
	})
}

// bruteForce counts duplicates and overlaps by comparing every pair, the
// definitions spelled out: copies have one box on the tolerance lattice
// (n copies are n-1 duplicates); the first copy of each box (by
// compareTiles) overlaps another's first copy when their common part is
// more than one lattice step wide and high.
func bruteForce(tiles []Tile, tol float64) (dups, overlaps int, pairs map[[2]string]bool) {
	pairs = map[[2]string]bool{}
	byEPSG := map[int32][]int32{}
	for i := range tiles {
		if finite(tiles[i].Box) {
			byEPSG[tiles[i].attrs().EPSG] = append(byEPSG[tiles[i].attrs().EPSG], int32(i))
		}
	}
	for _, idx := range byEPSG {
		inv := 1 / groupTolerance(tiles, idx, tol)
		firsts := map[[4]int64]int32{}
		for _, i := range idx {
			var k [4]int64
			for j, v := range tiles[i].Box {
				k[j] = int64(math.Round(v * inv))
			}
			if f, ok := firsts[k]; ok {
				dups++
				if compareTiles(&tiles[i], &tiles[f]) < 0 {
					firsts[k] = i
				}
				continue
			}
			firsts[k] = i
		}
		type rep struct {
			key  [4]int64
			path string
		}
		var reps []rep
		for k, i := range firsts {
			reps = append(reps, rep{k, tiles[i].Path})
		}
		for x, a := range reps {
			for _, b := range reps[x+1:] {
				w := min(a.key[2], b.key[2]) - max(a.key[0], b.key[0])
				h := min(a.key[3], b.key[3]) - max(a.key[1], b.key[1])
				if w > 1 && h > 1 {
					overlaps++
					pairs[[2]string{min(a.path, b.path), max(a.path, b.path)}] = true
				}
			}
		}
	}
	return dups, overlaps, pairs
}

// The search (cells, big tiles, budget) and the exact count agree with
// comparing every pair, with the budget ample and starved.
func TestOverlapsAgainstBruteForce(t *testing.T) {
	for seed := range uint64(300) {
		tiles := fuzzTiles(seed, 5+int(seed%120), []float64{30, 150, 400, 3000}[seed%4], 0.05, seed%5 == 0)
		// Paths unique, so that pairs name their tiles.
		for i := range tiles {
			tiles[i].Path = fmt.Sprintf("%s#%03d", tiles[i].Path, i)
		}
		dups, overlaps, pairs := bruteForce(tiles, DefaultTolerance)
		for _, budget := range []int{0, 1, 7} {
			res := Check(tiles, Options{pairBudget: budget})
			if res.ByKind[Duplicate] != dups || res.ByKind[Overlap] != overlaps {
				t.Fatalf("seed %d, budget %d: %d duplicates, %d overlaps; every pair says %d, %d",
					seed, budget, res.ByKind[Duplicate], res.ByKind[Overlap], dups, overlaps)
			}
			listed := 0
			for _, w := range res.Warnings {
				if w.Kind == Overlap {
					listed++
					if !pairs[[2]string{min(w.Path, w.Other), max(w.Path, w.Other)}] {
						t.Fatalf("seed %d: overlap %s %s is no overlapping pair", seed, w.Path, w.Other)
					}
				}
			}
			if budget == 0 && listed != overlaps {
				t.Fatalf("seed %d: %d overlaps listed of %d with an ample budget", seed, listed, overlaps)
			}
		}
	}
}

// allocated is the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Tiles far apart cost what neighbours do: nothing is allocated over the
// extent (two tiles 1,000 km apart would make 25 million 200 m cells).
func TestFarApart(t *testing.T) {
	d := metresLL
	two := []Tile{d.tile(0, 0), d.tile(5000, 0)}
	var res Result
	if n := allocated(func() { res = Check(two, Options{}) }); n > 64<<10 {
		t.Errorf("two tiles 1,000 km apart allocate %d bytes", n)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("two tiles 1,000 km apart: %v", lines(res.Warnings))
	}
	// Two 10 x 10 blocks, 1,000 km apart east-west and north-south: no
	// hole between them, and still no allocation over the extent.
	blocks := d.grid(10, 10, nil)
	for _, tl := range d.grid(10, 10, nil) {
		tl.Box = [4]float64{tl.Box[0] + 1e6, tl.Box[1] + 1e6, tl.Box[2] + 1e6, tl.Box[3] + 1e6}
		tl.Path = d.name(tl.Box)
		blocks = append(blocks, tl)
	}
	if n := allocated(func() { res = Check(blocks, Options{}) }); n > 1<<20 {
		t.Errorf("two blocks 1,000 km apart allocate %d bytes", n)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("two blocks 1,000 km apart: %v", lines(res.Warnings))
	}
	// A frame 5,000 cells (1,000 km) wide and three rows high: the middle
	// row's 4,998 cells are one enclosed hole, counted by arithmetic and
	// listed up to the cap.
	var frame []Tile
	for c := range 5000 {
		frame = append(frame, d.tile(c, 0), d.tile(c, 2))
	}
	frame = append(frame, d.tile(0, 1), d.tile(4999, 1))
	res = Check(frame, Options{MaxPerKind: 10})
	checkInvariants(t, res, 10)
	if res.ByKind[Missing] != 4998 || len(res.Warnings) != 10 || res.Warnings[0].Path != d.tile(1, 1).Path {
		t.Errorf("missing counted %d, listed %v", res.ByKind[Missing], lines(res.Warnings))
	}
}

// 100,000 copies of one tile: n-1 duplicates, each against the first
// copy, counted exactly, listed up to the cap (the first paths), without
// pairing them all (5e9 pairs) and in bounded time and memory.
func TestManyCopies(t *testing.T) {
	const n = 100_000
	base := metresLL.tile(0, 0)
	tiles := make([]Tile, n)
	for i := range tiles {
		tiles[i] = base
		tiles[i].Path = fmt.Sprintf("copie%06d/%s", (i*7919)%n, strings.TrimPrefix(base.Path, "dalles/"))
	}
	var res Result
	start := time.Now()
	bytes := allocated(func() { res = Check(tiles, Options{}) })
	elapsed := time.Since(start)
	checkInvariants(t, res, DefaultMaxPerKind)
	if res.ByKind[Duplicate] != n-1 || len(res.Warnings) != DefaultMaxPerKind || !res.Truncated {
		t.Fatalf("duplicates counted %d, listed %d, truncated %v", res.ByKind[Duplicate], len(res.Warnings), res.Truncated)
	}
	first := "copie000000/" + strings.TrimPrefix(base.Path, "dalles/")
	for i, w := range res.Warnings {
		if want := fmt.Sprintf("copie%06d/", i+1); w.Other != first || !strings.HasPrefix(w.Path, want) {
			t.Fatalf("warning %d: %s against %s, want %s… against the first copy", i, w.Path, w.Other, want)
		}
	}
	for _, k := range Kinds {
		if k != Duplicate && res.ByKind[k] != 0 {
			t.Errorf("%s: %d", k, res.ByKind[k])
		}
	}
	t.Logf("%d copies: %v, %d MB allocated", n, elapsed, bytes>>20)
	if bytes > 200<<20 || elapsed > 20*time.Second {
		t.Errorf("%d copies took %v and %d MB", n, elapsed, bytes>>20)
	}
}

// Thousands of distinct boxes stacked in one cell (a hostile delivery):
// the search gives up pairing past its budget, the count stays exact.
func TestStacked(t *testing.T) {
	const n = 3000
	tiles := make([]Tile, n)
	for i := range tiles {
		x := 651000 + 0.05*float64(i)
		tiles[i] = Tile{Path: fmt.Sprintf("s/%04d.tif", i), Box: [4]float64{x, 6226000, x + 200, 6226200}, Attrs: shared(Attrs{EPSG: 2154, Resolution: 0.05})}
	}
	res := Check(tiles, Options{MaxPerKind: 50, pairBudget: 10_000})
	checkInvariants(t, res, 50)
	if res.ByKind[Overlap] != n*(n-1)/2 || !res.Truncated {
		t.Errorf("overlaps counted %d, want %d", res.ByKind[Overlap], n*(n-1)/2)
	}
}

// randomAttrs are two CRSs, two heights, three resolutions and four
// encodings (one unknown), each tile its own copy.
func randomAttrs(r *rand.Rand, res float64) *Attrs {
	a := Attrs{EPSG: 2154 + r.Int32N(2), Width: 4000, Height: 4000 + r.Int32N(2), Resolution: res * (1 + float64(r.IntN(3)))}
	enc := [][2]string{{"image/tiff", "JPEG"}, {"image/jp2", "JPEG"}, {"", "JPEG"}, {"", ""}}[r.IntN(4)]
	a.Format, a.Compression = enc[0], enc[1]
	return &a
}
