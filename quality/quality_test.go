package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// delivery is a synthetic grid of 200 m tiles at 5 cm, 4000 x 4000 px,
// named by name(col, row), with sizes around 10 MB.
type delivery struct {
	x0, y0 float64
	name   func(x, y float64) string // from the lower-left corner
}

func (d delivery) tile(col, row int) Tile {
	x, y := d.x0+200*float64(col), d.y0+200*float64(row)
	return Tile{Path: "dalles/" + d.name(x, y), EPSG: 2154, Box: [4]float64{x, y, x + 200, y + 200}, Width: 4000, Height: 4000,
		Resolution: 0.05, Format: "image/tiff", Compression: "JPEG", Bands: "Red(Byte)/Green(Byte)/Blue(Byte)",
		Size: 10_000_000 + int64((col*7919+row*104729)%2_000_000)}
}

func (d delivery) grid(cols, rows int, skip map[[2]int]bool) []Tile {
	var out []Tile
	for c := range cols {
		for r := range rows {
			if !skip[[2]int{c, r}] {
				out = append(out, d.tile(c, r))
			}
		}
	}
	return out
}

var (
	metresLL = delivery{651000, 6226000, func(x, y float64) string { return fmt.Sprintf("PCRS_%07.0f_%07.0f.tif", x, y) }}
	hectoUL  = delivery{651000, 6226000, func(x, y float64) string {
		return fmt.Sprintf("PCRS_%04.0f_%05.0f_LA93_0M05_RVB.tif", x/100, (y+200)/100)
	}}
	kiloLL = delivery{651000, 6226000, func(x, y float64) string {
		return fmt.Sprintf("34-2024-%04d-%04d-LA93-0M05.jp2", int(x/1000), int(y/1000))
	}}
)

func summary(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", w.Kind, w.Path, w.Other)))
	}
	return out
}

func TestPlanted(t *testing.T) {
	d := metresLL
	missing := map[[2]int]bool{{4, 4}: true, {5, 4}: true, {4, 5}: true}
	tiles := d.grid(10, 10, missing)
	at := func(c, r int) int {
		p := d.tile(c, r).Path
		return slices.IndexFunc(tiles, func(t Tile) bool { return t.Path == p })
	}
	name := func(c, r int) string { return d.tile(c, r).Path }
	// Shifted 50 m east, onto its neighbour (7, 7).
	tiles[at(6, 7)].Box[0] += 50
	tiles[at(6, 7)].Box[2] += 50
	// Delivered twice, in another folder.
	dup := d.tile(2, 2)
	dup.Path = strings.Replace(dup.Path, "dalles/", "doublons/", 1)
	tiles = append(tiles, dup)
	// The tile of (8, 1) delivered under (8, 2)'s name, in another folder.
	renamed := d.tile(8, 1)
	renamed.Path = strings.Replace(name(8, 2), "dalles/", "dalles/lot2/", 1)
	tiles[at(8, 1)] = renamed
	// 10 cm among 5 cm, the same 200 m.
	tiles[at(0, 9)].Resolution, tiles[at(0, 9)].Width, tiles[at(0, 9)].Height = 0.1, 2000, 2000
	// A JPEG 2000 among GeoTIFFs.
	tiles[at(9, 9)].Format, tiles[at(9, 9)].Compression = "image/jp2", "LOSSY"
	// A tiny tile.
	tiles[at(3, 8)].Size = 100_000

	res := Check(tiles, Options{})
	got := summary(res.Warnings)
	want := []string{
		// The shifted tile: off the grid, over its east neighbour.
		"off_grid " + name(6, 7),
		"overlap " + name(6, 7) + " " + name(7, 7),
		// The copy is blamed, not the first delivery.
		"duplicate doublons/" + strings.TrimPrefix(name(2, 2), "dalles/") + " " + name(2, 2),
		"name_mismatch " + strings.Replace(name(8, 2), "dalles/", "dalles/lot2/", 1),
		"resolution " + name(0, 9),
		// The JPEG 2000 mixes formats and compressions.
		"mixed", "mixed",
		"size_outlier " + name(3, 8),
		// The three holes, named as the pattern predicts.
		"missing " + name(4, 4), "missing " + name(4, 5), "missing " + name(5, 4),
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, w := range res.Warnings {
		switch w.Kind {
		case OffGrid:
			if w.Offset == nil || *w.Offset != [2]float64{50, 0} {
				t.Errorf("offset %v, want [50 0]", w.Offset)
			}
		case Overlap:
			if w.AreaM2 != 50*200 {
				t.Errorf("overlap %v m², want 50 m x 200 m", w.AreaM2)
			}
		case NameMismatch:
			if "dalles/"+w.Expected != name(8, 1) {
				t.Errorf("expected name %q, want %q", w.Expected, name(8, 1))
			}
		case SizeOutlier:
			if w.Ratio <= 0 || w.Ratio > 0.011 {
				t.Errorf("ratio %v", w.Ratio)
			}
		case Mixed:
			if len(w.Counts) != 2 || w.Counts["image/jp2"]+w.Counts["LOSSY"] != 1 {
				t.Errorf("mixed counts %v", w.Counts)
			}
		}
		if w.Kind != Mixed && w.Box == nil {
			t.Errorf("%s %s: no box", w.Kind, w.Path)
		}
	}
	for k, n := range map[Kind]int{OffGrid: 1, Overlap: 1, Duplicate: 1, NameMismatch: 1, Resolution: 1, Mixed: 2, SizeOutlier: 1, Missing: 3} {
		if res.ByKind[k] != n {
			t.Errorf("ByKind[%s] = %d, want %d", k, res.ByKind[k], n)
		}
	}
}

// A clean delivery of 10,000 tiles gets no warning, whatever its naming
// scheme; and each scheme is learned: a misnamed tile is caught.
func TestCleanAndSchemes(t *testing.T) {
	for name, d := range map[string]delivery{"metres lower-left": metresLL, "hectometres upper-left": hectoUL, "kilometres": kiloLL} {
		t.Run(name, func(t *testing.T) {
			cols := 100
			if d.name(0, 0) == kiloLL.name(0, 0) {
				cols = 5 // kilometre names hold 5 x 5 tiles each: unique names need few
			}
			tiles := d.grid(cols, 100*100/cols, nil)
			if d.name(0, 0) == kiloLL.name(0, 0) {
				// One name per kilometre: the tiles of one square share it,
				// so only the lower-left one is kept.
				var kept []Tile
				for _, tl := range tiles {
					if math.Mod(tl.Box[0]-d.x0, 1000) == 0 && math.Mod(tl.Box[1]-d.y0, 1000) == 0 {
						tl.Box[2], tl.Box[3] = tl.Box[0]+1000, tl.Box[1]+1000
						kept = append(kept, tl)
					}
				}
				tiles = kept
			}
			res := Check(tiles, Options{})
			if len(res.Warnings) != 0 {
				t.Fatalf("%d tiles, warnings %v", len(tiles), summary(res.Warnings)[:min(5, len(res.Warnings))])
			}
			// Swap two tiles' names.
			a, b := tiles[1].Path, tiles[len(tiles)-2].Path
			tiles[1].Path, tiles[len(tiles)-2].Path = b, a
			res = Check(tiles, Options{})
			if got := summary(res.Warnings); !slices.Equal(got, []string{"name_mismatch " + min(a, b), "name_mismatch " + max(a, b)}) {
				t.Errorf("after swapping two names: %v", got)
			}
		})
	}
}

func TestAnnouncedResolution(t *testing.T) {
	tiles := metresLL.grid(3, 3, nil)
	if res := Check(tiles, Options{Announced: 0.05}); len(res.Warnings) != 0 {
		t.Errorf("announced as delivered: %v", summary(res.Warnings))
	}
	res := Check(tiles, Options{Announced: 0.10})
	if len(res.Warnings) != 1 || res.Warnings[0].Kind != Resolution || res.Warnings[0].Path != "" {
		t.Errorf("announced 10 cm, delivered 5 cm: %v", summary(res.Warnings))
	}
}

// Identical tiles by the thousand: n-1 duplicates of the first, counted
// exactly, listed up to the cap, without pairing them all.
func TestManyCopies(t *testing.T) {
	const n = 100_000
	base := metresLL.tile(0, 0)
	tiles := make([]Tile, n)
	for i := range tiles {
		tiles[i] = base
		tiles[i].Path = fmt.Sprintf("copie%06d/%s", i, strings.TrimPrefix(base.Path, "dalles/"))
	}
	res := Check(tiles, Options{MaxPerKind: 100})
	if res.ByKind[Duplicate] != n-1 || len(res.Warnings) != 100 || !res.Truncated {
		t.Fatalf("duplicates counted %d, listed %d, truncated %v", res.ByKind[Duplicate], len(res.Warnings), res.Truncated)
	}
	for _, w := range res.Warnings {
		if w.Other != tiles[0].Path {
			t.Fatalf("%s blamed against %s, want the first path", w.Path, w.Other)
		}
	}
}

// Tiles far apart cost what neighbours do: nothing is allocated over the
// extent, and a long enclosed hole is counted, not listed cell by cell.
func TestFarApart(t *testing.T) {
	d := metresLL
	tiles := []Tile{d.tile(0, 0), d.tile(5_000_000, 0)}
	if res := Check(tiles, Options{}); len(res.Warnings) != 0 {
		t.Errorf("two tiles 1,000 km apart: %v", summary(res.Warnings))
	}
	// A frame three rows high, 5,000 cells wide: the middle row's 4,998
	// inner cells are a hole.
	tiles = nil
	for r := range 3 {
		for _, c := range []int{0, 4999} {
			tiles = append(tiles, d.tile(c, r))
		}
		if r != 1 {
			for c := 1; c < 4999; c++ {
				tiles = append(tiles, d.tile(c, r))
			}
		}
	}
	res := Check(tiles, Options{MaxPerKind: 10})
	if res.ByKind[Missing] != 4998 || !res.Truncated {
		t.Errorf("missing counted %d (truncated %v), want 4998", res.ByKind[Missing], res.Truncated)
	}
}

// Holes are enclosed empty cells only: the outside of a concave outline
// is not missing.
func TestHolesNotConcavities(t *testing.T) {
	// An L: 3 x 3 with the top-right 2 x 2 empty, and a U whose opening
	// leads out.
	skip := map[[2]int]bool{{1, 1}: true, {2, 1}: true, {1, 2}: true, {2, 2}: true}
	if res := Check(metresLL.grid(3, 3, skip), Options{}); res.ByKind[Missing] != 0 {
		t.Errorf("an L shape: %v", summary(res.Warnings))
	}
	u := map[[2]int]bool{{1, 1}: true, {1, 2}: true}
	if res := Check(metresLL.grid(3, 3, u), Options{}); res.ByKind[Missing] != 0 {
		t.Errorf("a U shape: %v", summary(res.Warnings))
	}
	ring := map[[2]int]bool{{1, 1}: true}
	if res := Check(metresLL.grid(3, 3, ring), Options{}); res.ByKind[Missing] != 1 {
		t.Errorf("a ring: %v", summary(res.Warnings))
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(int64(1), uint8(10), 200.0, 0.05, false)
	f.Add(int64(2), uint8(50), 1e9, 0.1, true)
	f.Add(int64(3), uint8(3), math.NaN(), 0.0, true)
	f.Fuzz(func(t *testing.T, seed int64, n uint8, spread, res float64, weird bool) {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		tiles := make([]Tile, n)
		for i := range tiles {
			x := math.Floor(r.Float64()*10) * 200
			y := math.Floor(r.Float64()*10) * 200
			if weird {
				x, y = r.NormFloat64()*spread, r.NormFloat64()*spread
			}
			w := 200.0
			if r.IntN(5) == 0 {
				w = r.Float64() * spread
			}
			// Paths are unique in a storage.
			tiles[i] = Tile{Path: fmt.Sprintf("d%d/T_%07.0f_%07.0f.%d.tif", r.IntN(3), x, y, i), EPSG: 2154 + r.IntN(2),
				Box: [4]float64{x, y, x + w, y + w}, Width: 4000, Height: 4000, Resolution: res, Size: r.Int64N(1000)}
		}
		a := Check(tiles, Options{MaxPerKind: 50})
		r.Shuffle(len(tiles), func(i, j int) { tiles[i], tiles[j] = tiles[j], tiles[i] })
		b := Check(tiles, Options{MaxPerKind: 50})
		if !slices.Equal(summary(a.Warnings), summary(b.Warnings)) || fmt.Sprint(a.ByKind) != fmt.Sprint(b.ByKind) {
			t.Fatalf("order changes the verdict:\n%v\n%v", summary(a.Warnings), summary(b.Warnings))
		}
	})
}

// BenchmarkCheck1M: every warning of a 1,000,000-tile delivery (a 1000 x
// 1000 grid, a few planted defects). Run with -cpu 1: it must stay under
// 2 s on one core.
func BenchmarkCheck1M(b *testing.B) {
	tiles := metresLL.grid(1000, 1000, map[[2]int]bool{{500, 500}: true, {10, 10}: true})
	tiles[1234].Box[0] += 50
	tiles[1234].Box[2] += 50
	tiles[99999].Size = 10
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res := Check(tiles, Options{})
		if res.ByKind[Missing] != 2 || res.ByKind[OffGrid] != 1 || res.ByKind[SizeOutlier] != 1 {
			b.Fatalf("warnings %v", res.ByKind)
		}
	}
	perCheck := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perCheck, "s/check")
	if perCheck > 2 {
		b.Errorf("checking 1,000,000 tiles took %.2f s, over the 2 s a scan may spend on it", perCheck)
	}
}

// Tiles in degrees (a geographic CRS): sides of a few thousandths, well
// under the 1 cm tolerance taken as is; a clean grid still gets nothing,
// and a copy is still found.
func TestGeographic(t *testing.T) {
	var tiles []Tile
	const side = 0.0025
	for c := range 20 {
		for r := range 20 {
			x, y := 2.3+side*float64(c), 48.8+side*float64(r)
			tiles = append(tiles, Tile{Path: fmt.Sprintf("t_%03d_%03d.tif", c, r), EPSG: 4326, Box: [4]float64{x, y, x + side, y + side},
				Width: 4000, Height: 4000, Resolution: side / 4000, Format: "image/tiff", Compression: "JPEG", Size: 1000})
		}
	}
	if res := Check(tiles, Options{}); len(res.Warnings) != 0 {
		t.Fatalf("a clean grid in degrees: %v", summary(res.Warnings)[:min(5, len(res.Warnings))])
	}
	dup := tiles[5]
	dup.Path = "copie/" + dup.Path
	res := Check(append(tiles, dup), Options{})
	// The later path is blamed: here the original, "copie/" sorting first.
	if got := summary(res.Warnings); !slices.Equal(got, []string{"duplicate " + tiles[5].Path + " copie/" + tiles[5].Path}) {
		t.Errorf("one copy in degrees: %v", got)
	}
}
