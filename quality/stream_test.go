package quality

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// listed is a source over tiles, in their order.
func listed(tiles []Tile) Source {
	return func(yield func(*Tile) bool) error {
		for i := range tiles {
			if !yield(&tiles[i]) {
				break
			}
		}
		return nil
	}
}

// reusing is listed giving every tile in one Tile and one Attrs, both
// overwritten for the next: what the check keeps must be its own.
func reusing(tiles []Tile) Source {
	return func(yield func(*Tile) bool) error {
		var t Tile
		var a Attrs
		for i := range tiles {
			t = tiles[i]
			if t.Attrs != nil {
				a = *t.Attrs
				t.Attrs = &a
			}
			if !yield(&t) {
				break
			}
		}
		return nil
	}
}

// byPath is tiles as a storage lists them: sorted by path, each path
// once (a copy keeps its box under another path).
func byPath(tiles []Tile) []Tile {
	out := slices.Clone(tiles)
	seen := map[string]int{}
	for i := range out {
		if n := seen[out[i].Path]; n > 0 {
			out[i].Path = fmt.Sprintf("copie%d/%s", n, out[i].Path)
		}
		seen[tiles[i].Path]++
	}
	slices.SortStableFunc(out, func(a, b Tile) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(out, func(a, b Tile) bool { return a.Path == b.Path })
}

// sameVerdict checks the streamed check against Check on tiles listed by
// path, and says why it declined, if it did.
func sameVerdict(t *testing.T, name string, tiles []Tile, opts Options) error {
	t.Helper()
	tiles = byPath(tiles)
	want := Check(slices.Clone(tiles), opts)
	got, declined, err := CheckStream(listed(tiles), opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s (declined %v): streamed\n%v %v\nin memory\n%v %v", name, declined,
			lines(got.Warnings), got.ByKind, lines(want.Warnings), want.ByKind)
	}
	again, _, err := CheckStream(reusing(tiles), opts)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("%s: from a source reusing its Tile and Attrs: %v\n%v\nwant %v", name, err, lines(again.Warnings), lines(want.Warnings))
	}
	return declined
}

// deliveries are the planted-defect deliveries the differential tests
// share: grids in each naming scheme with holes, shifted, resized,
// copied, misnamed, small and odd-resolution tiles, in one or two CRSs,
// in metres and in degrees.
func deliveries(r *rand.Rand) map[string][]Tile {
	out := map[string][]Tile{}
	for _, d := range []struct {
		name string
		d    delivery
	}{{"metresLL", metresLL}, {"hectoUL", hectoUL}, {"kiloUL", kiloUL}} {
		skip := map[[2]int]bool{{5, 5}: true, {6, 5}: true, {12, 3}: true, {0, 7}: true}
		tiles := d.d.grid(30, 25, skip)
		for range 12 {
			i := r.IntN(len(tiles))
			switch r.IntN(6) {
			case 0:
				tiles[i].Box[0] += d.d.side / 4
				tiles[i].Box[2] += d.d.side / 4
			case 1:
				tiles[i].Box[3] += d.d.side / 3
			case 2:
				tiles = append(tiles, tiles[i])
			case 3:
				tiles[i].Path = tiles[(i+7)%len(tiles)].Path + ".bis.tif"
			case 4:
				tiles[i].Size /= 50
			case 5:
				a := *tiles[i].Attrs
				a.Resolution *= 2
				tiles[i].Attrs = &a
			}
		}
		out[d.name] = tiles
		// The same delivery again in a second CRS, far away.
		two := slices.Clone(tiles)
		other := shared(Attrs{EPSG: 3949, Width: d.d.px, Height: d.d.px, Resolution: d.d.side / float64(d.d.px),
			Format: "image/jp2", Compression: "LOSSY", Bands: "Red(Byte)/Green(Byte)/Blue(Byte)"})
		for _, t := range d.d.grid(10, 10, map[[2]int]bool{{4, 4}: true}) {
			t.Box[0], t.Box[2] = t.Box[0]+1e6, t.Box[2]+1e6
			t.Path, t.Attrs = "cc49/"+t.Path, other
			two = append(two, t)
		}
		out[d.name+"+3949"] = two
	}
	const side = 0.0025
	var geo []Tile
	for c := range 20 {
		for row := range 20 {
			if c == 7 && row == 7 {
				continue
			}
			x, y := 2.3+side*float64(c), 48.8+side*float64(row)
			geo = append(geo, Tile{Path: fmt.Sprintf("t_%03d_%03d.tif", c, row), Box: [4]float64{x, y, x + side, y + side},
				Attrs: shared(Attrs{EPSG: 4326, Width: 4000, Height: 4000, Resolution: side / 4000, Format: "image/tiff", Compression: "JPEG"}), Size: 1000})
		}
	}
	geo[50].Box[0] += side / 4
	geo[50].Box[2] += side / 4
	out["degrees"] = geo
	var loose []Tile // no grid: sizes and places all different
	for i := range 400 {
		x, y, w := math.Round(r.Float64()*5000), math.Round(r.Float64()*5000), 100+math.Round(r.Float64()*300)
		loose = append(loose, Tile{Path: fmt.Sprintf("vrac/%04d.tif", i), Box: [4]float64{x, y, x + w, y + w}, Attrs: metresLL.tile(0, 0).Attrs, Size: int64(1000 + i)})
	}
	out["loose"] = loose
	return out
}

// TestStreamAsCheck: the streamed check's verdict is Check's, warning for
// warning, on planted deliveries (which it must not decline) and on the
// fuzz corpus, wild boxes and all (where it may).
func TestStreamAsCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for name, tiles := range deliveries(r) {
		for _, opts := range []Options{{}, {MaxPerKind: 3}, {Announced: 0.1, Tolerance: 0.5}} {
			if why := sameVerdict(t, name, tiles, opts); why != nil {
				t.Errorf("%s %+v: %v", name, opts, why)
			}
		}
	}
	declined, why := 0, map[string]int{}
	for seed := range uint64(300) {
		wild := seed%3 == 0
		spread := []float64{0, 3, 200, 1e9, math.NaN()}[seed%5]
		tiles := fuzzTiles(seed, int(seed%7)*60+1, spread, 0.05, wild)
		opts := Options{MaxPerKind: int(seed % 4), pairBudget: int(seed%3) * 50}
		if err := sameVerdict(t, fmt.Sprintf("fuzz %d", seed), tiles, opts); err != nil {
			declined++
			why[err.Error()]++
		}
	}
	t.Logf("fuzz corpus: %d of 300 declined: %v", declined, why)
	if declined > 150 {
		t.Errorf("%d of 300 fuzz deliveries declined: the streamed check should judge most of them", declined)
	}
}

// TestStreamDeclines: what the streamed check cannot judge in bounded
// memory goes to Check, with Check's verdict.
func TestStreamDeclines(t *testing.T) {
	grid := metresLL.grid(20, 20, nil)
	unsorted := slices.Clone(grid)
	slices.Reverse(unsorted)
	big := byPath(slices.Clone(grid))
	for k := range streamBig + 1 {
		big = append(big, Tile{Path: fmt.Sprintf("zz/mosaique%02d.tif", k), Box: [4]float64{651000, 6226000, 655000 + float64(k), 6230000}, Attrs: grid[0].Attrs, Size: 1})
	}
	for _, c := range []struct {
		name  string
		tiles []Tile
	}{{"listed out of order", unsorted}, {"more tiles over 64 cells than streamBig", big},
		{"a path over 64 KiB", append(byPath(slices.Clone(grid)), Tile{Path: "zz/" + strings.Repeat("x", 65<<10), Box: grid[0].Box, Attrs: grid[0].Attrs})}} {
		want := Check(slices.Clone(c.tiles), Options{})
		got, declined, err := CheckStream(listed(c.tiles), Options{})
		if err != nil || declined == nil {
			t.Fatalf("%s: declined %v, %v", c.name, declined, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", c.name, lines(got.Warnings), lines(want.Warnings))
		}
	}
}

// TestStreamBigTiles: a few tiles too large to file (a mosaic, a broken
// geotransform) are compared with every tile from disk, as Check does,
// rather than sending a whole delivery to memory.
func TestStreamBigTiles(t *testing.T) {
	tiles := metresLL.grid(40, 40, map[[2]int]bool{{20, 20}: true})
	tiles = append(tiles, Tile{Path: "zz/mosaique.tif", Box: [4]float64{651000, 6226000, 655000, 6230000}, Attrs: tiles[0].Attrs, Size: 1},
		Tile{Path: "zz/casse.tif", Box: [4]float64{651000, 6226000, 9e11, 6226200}, Attrs: tiles[0].Attrs, Size: 1})
	for _, opts := range []Options{{}, {MaxPerKind: 2}, {pairBudget: 20000}} {
		if why := sameVerdict(t, "big tiles", tiles, opts); why != nil {
			t.Errorf("%+v: %v", opts, why)
		}
	}
}

// TestStreamEmpty: no tile, no warning, every kind counted.
func TestStreamEmpty(t *testing.T) {
	got, _, err := CheckStream(listed(nil), Options{})
	if want := Check(nil, Options{}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v, %v; want %+v", got, err, want)
	}
}

// TestStreamSourceError: a source that fails fails the check.
func TestStreamSourceError(t *testing.T) {
	broken := errors.New("listing lost")
	tiles := metresLL.grid(3, 3, nil)
	_, _, err := CheckStream(func(yield func(*Tile) bool) error {
		yield(&tiles[0])
		return broken
	}, Options{})
	if !errors.Is(err, broken) {
		t.Fatalf("error %v, want %v", err, broken)
	}
}

// TestStreamMillion is BenchmarkCheck1M's planted delivery, streamed.
func TestStreamMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("a million tiles")
	}
	tiles, want := million()
	tiles = byPath(tiles)
	got, declined, err := CheckStream(listed(tiles), Options{})
	if err != nil || declined != nil {
		t.Fatalf("declined %v, %v", declined, err)
	}
	for _, k := range Kinds {
		if got.ByKind[k] != want[k] {
			t.Fatalf("warnings %v, want %v", got.ByKind, want)
		}
	}
	if ref := Check(tiles, Options{}); !reflect.DeepEqual(got, ref) {
		t.Fatalf("streamed %v, in memory %v", lines(got.Warnings), lines(ref.Warnings))
	}
}

// FuzzCheckStream holds the streamed check to Check on FuzzCheck's
// deliveries, listed by path.
func FuzzCheckStream(f *testing.F) {
	f.Add(uint64(1), uint16(100), 200.0, 0.05, false, uint8(0))
	f.Add(uint64(2), uint16(300), 3.0, 0.1, true, uint8(3))
	f.Add(uint64(4), uint16(500), 0.0, 0.05, false, uint8(2))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, spread, res float64, wild bool, capped uint8) {
		tiles := fuzzTiles(seed, int(n%600), spread, res, wild)
		sameVerdict(t, "fuzz", tiles, Options{MaxPerKind: int(capped % 4), pairBudget: int(capped%3) * 50})
	})
}
