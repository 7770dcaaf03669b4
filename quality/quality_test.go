package quality

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// delivery is a synthetic grid of square tiles in Lambert-93, named by
// name from their box, with sizes around 10 MB and some spread.
type delivery struct {
	x0, y0      float64 // the grid's lower-left corner
	side        float64 // metres
	px          int32   // pixels per side
	format, cmp string
	name        func(b [4]float64) string // the path
}

func (d delivery) tile(col, row int) Tile {
	x, y := d.x0+d.side*float64(col), d.y0+d.side*float64(row)
	b := [4]float64{x, y, x + d.side, y + d.side}
	return Tile{Path: d.name(b), Box: b, Attrs: shared(Attrs{EPSG: 2154, Width: d.px, Height: d.px, Resolution: d.side / float64(d.px),
		Format: d.format, Compression: d.cmp, Bands: "Red(Byte)/Green(Byte)/Blue(Byte)"}),
		Size: 9_500_000 + int64((col*7919+row*104729)%1_000_000)}
}

// grid is cols x rows tiles, column by column, less the cells in skip.
func (d delivery) grid(cols, rows int, skip map[[2]int]bool) []Tile {
	out := make([]Tile, 0, cols*rows)
	for c := range cols {
		for r := range rows {
			if !skip[[2]int{c, r}] {
				out = append(out, d.tile(c, r))
			}
		}
	}
	return out
}

// Three real-looking naming schemes.
var (
	// 200 m tiles at 5 cm, lower-left corner in metres.
	metresLL = delivery{651000, 6226000, 200, 4000, "image/tiff", "JPEG", func(b [4]float64) string {
		return fmt.Sprintf("dalles/%07.0f_%07.0f.tif", b[0], b[1])
	}}
	// 200 m tiles at 5 cm, upper-left corner in hectometres.
	hectoUL = delivery{651000, 6226000, 200, 4000, "image/tiff", "JPEG", func(b [4]float64) string {
		return fmt.Sprintf("PCRS/PCRS_%04.0f_%05.0f_LA93_0M05_RVB.tif", b[0]/100, b[3]/100)
	}}
	// 1 km tiles at 20 cm, upper-left corner in kilometres, as IGN's
	// BD ORTHO names them: other digit groups (department, year, CRS,
	// resolution) around the coordinates.
	kiloUL = delivery{651000, 6226000, 1000, 5000, "image/jp2", "LOSSY", func(b [4]float64) string {
		return fmt.Sprintf("ortho/34-2021-%04.0f-%04.0f-LA93-0M20-E080.jp2", b[0]/1000, b[3]/1000)
	}}
)

// line is a warning as one comparable line: kind, path, other.
func line(w Warning) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", w.Kind, w.Path, w.Other))
}

func lines(ws []Warning) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, line(w))
	}
	return out
}

func indexOf(tiles []Tile, path string) int {
	return slices.IndexFunc(tiles, func(t Tile) bool { return t.Path == path })
}

// TestPlanted plants one of each defect in a 10 x 10 delivery and checks
// it gets exactly the warnings each defect legitimately causes, and no
// other.
func TestPlanted(t *testing.T) {
	d := metresLL
	name := func(c, r int) string { return d.tile(c, r).Path }
	// Three cells missing inside the grid.
	tiles := d.grid(10, 10, map[[2]int]bool{{4, 4}: true, {5, 4}: true, {4, 5}: true})
	at := func(c, r int) *Tile { return &tiles[indexOf(tiles, name(c, r))] }
	// (6, 7) shifted 50 m east, over the west quarter of (7, 7).
	at(6, 7).Box[0] += 50
	at(6, 7).Box[2] += 50
	// (8, 1)'s tile delivered under (8, 2)'s name, in another folder;
	// (8, 2)'s own tile is there too.
	*at(8, 1) = d.tile(8, 1)
	at(8, 1).Path = strings.Replace(name(8, 2), "dalles/", "dalles/lot2/", 1)
	// (0, 9) at 10 cm: 2000 px over the same 200 m.
	tenCm := *at(0, 9).Attrs
	tenCm.Resolution, tenCm.Width, tenCm.Height = 0.10, 2000, 2000
	at(0, 9).Attrs, at(0, 9).Size = &tenCm, 2_600_000
	// (9, 9) a JPEG 2000 among GeoTIFFs.
	jp2 := strings.TrimSuffix(name(9, 9), ".tif") + ".jp2"
	jp2Attrs := *at(9, 9).Attrs
	jp2Attrs.Format, jp2Attrs.Compression = "image/jp2", "LOSSY"
	at(9, 9).Attrs, at(9, 9).Path = &jp2Attrs, jp2
	// (3, 8) a hundredth of its peers' median size: blank.
	var sizes []int64
	for _, tl := range tiles {
		if tl.Attrs.Width == 4000 && tl.Attrs.Format == "image/tiff" {
			sizes = append(sizes, tl.Size)
		}
	}
	sizes = append(sizes, d.tile(2, 2).Size) // the copy below is a peer too
	slices.Sort(sizes)
	n := len(sizes)
	med := float64(sizes[n/2]+sizes[(n-1)/2]) / 2
	at(3, 8).Size = int64(med / 100)
	// (2, 2) delivered twice: a copy in doublons/.
	dup := d.tile(2, 2)
	dup.Path = strings.Replace(dup.Path, "dalles/", "doublons/", 1)
	tiles = append(tiles, dup)

	res := Check(tiles, Options{})

	// Each warning, with why it is there.
	want := []string{
		// The shifted tile is off the grid...
		"off_grid " + name(6, 7),
		// ...and so covers the west 50 m of its east neighbour, blamed on
		// it (it is the one off the grid). Its name is right for the cell
		// it was meant for: no name_mismatch.
		"overlap " + name(6, 7) + " " + name(7, 7),
		// The copy is blamed, not the first delivery ("doublons/" sorts
		// after "dalles/").
		"duplicate doublons/" + strings.TrimPrefix(name(2, 2), "dalles/") + " " + name(2, 2),
		// The renamed tile: its header says (8, 1). Its cell is occupied
		// by it, so (8, 1) is not missing; (8, 2)'s real tile is no
		// duplicate of it (other ground).
		"name_mismatch dalles/lot2/" + strings.TrimPrefix(name(8, 2), "dalles/"),
		// The 10 cm tile; its size has fewer than 5 peers at 2000 px, so
		// no size_outlier for it.
		"resolution " + name(0, 9),
		// The JPEG 2000 makes the delivery mix formats and compressions:
		// one warning per attribute, not per tile. Its size has no peers
		// either.
		"mixed", "mixed",
		// The blank tile.
		"size_outlier " + name(3, 8),
		// The three holes, named as the delivery's pattern predicts.
		"missing " + name(4, 4), "missing " + name(4, 5), "missing " + name(5, 4),
	}
	if got := lines(res.Warnings); !slices.Equal(got, want) {
		t.Fatalf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	wantCounts := map[Kind]int{OffGrid: 1, Overlap: 1, Duplicate: 1, NameMismatch: 1, Resolution: 1, Mixed: 2, SizeOutlier: 1, Missing: 3}
	for _, k := range Kinds {
		if res.ByKind[k] != wantCounts[k] {
			t.Errorf("ByKind[%s] = %d, want %d", k, res.ByKind[k], wantCounts[k])
		}
	}
	if res.Truncated {
		t.Error("truncated")
	}

	// The numbers.
	w := res.Warnings
	checkBox := func(i int, want [4]float64) {
		t.Helper()
		if w[i].Box == nil || *w[i].Box != want || w[i].EPSG != 2154 {
			t.Errorf("%s: box %v EPSG %d, want %v", line(w[i]), w[i].Box, w[i].EPSG, want)
		}
	}
	if w[0].Offset == nil || *w[0].Offset != [2]float64{50, 0} {
		t.Errorf("off_grid offset %v, want [50 0]", w[0].Offset)
	}
	checkBox(0, [4]float64{652250, 6227400, 652450, 6227600})
	if w[1].AreaM2 != 50*200 {
		t.Errorf("overlap of %v m², want 50 m x 200 m", w[1].AreaM2)
	}
	checkBox(1, [4]float64{652400, 6227400, 652450, 6227600})
	checkBox(2, dup.Box)
	if w[3].Expected != "0652600_6226200.tif" {
		t.Errorf("expected name %q, want (8, 1)'s", w[3].Expected)
	}
	if !strings.Contains(w[4].Detail, "10 cm") || !strings.Contains(w[4].Detail, "5 cm") {
		t.Errorf("resolution detail %q", w[4].Detail)
	}
	for i, want := range []map[string]int{{"image/tiff": 97, "image/jp2": 1}, {"JPEG": 97, "LOSSY": 1}} {
		if fmt.Sprint(w[5+i].Counts) != fmt.Sprint(want) || w[5+i].Box != nil {
			t.Errorf("mixed counts %v, want %v", w[5+i].Counts, want)
		}
	}
	if r := w[7].Ratio; math.Abs(r-0.01) > 0.0001 {
		t.Errorf("size ratio %v, want 0.01", r)
	}
	checkBox(8, [4]float64{651800, 6226800, 652000, 6227000})
	checkBox(9, [4]float64{651800, 6227000, 652000, 6227200})
	checkBox(10, [4]float64{652000, 6226800, 652200, 6227000})
	for _, x := range w {
		if x.Detail == "" || strings.Contains(x.Detail, "%!") {
			t.Errorf("%s: detail %q", line(x), x.Detail)
		}
	}
	t.Logf("details:\n  %s", strings.Join(func() []string {
		var ds []string
		for _, x := range w {
			ds = append(ds, string(x.Kind)+": "+x.Detail)
		}
		return ds
	}(), "\n  "))
}

// TestSchemes: a clean delivery of 10,000 tiles gets no warning at all,
// under three naming schemes; each scheme's pattern is learned (digit
// groups, unit, corner), a misnamed tile is caught with the name it
// should have, and a missing cell is named as its tile would be.
func TestSchemes(t *testing.T) {
	for _, s := range []struct {
		name string
		d    delivery
		want candidate
	}{
		{"metres lower-left", metresLL, candidate{gx: 0, gy: 1, unit: 0}},
		{"hectometres upper-left", hectoUL, candidate{gx: 0, gy: 1, unit: 2, upper: true}},
		{"kilometres upper-left", kiloUL, candidate{gx: 2, gy: 3, unit: 3, upper: true}},
	} {
		t.Run(s.name, func(t *testing.T) {
			tiles := s.d.grid(100, 100, nil)
			if res := Check(tiles, Options{Announced: s.d.side / float64(s.d.px)}); len(res.Warnings) != 0 || res.Truncated {
				t.Fatalf("a clean delivery: %v", lines(res.Warnings)[:min(5, len(res.Warnings))])
			}
			c := newChecker(tiles, withDefaults(Options{}))
			if p := c.names(); p == nil || p.candidate != s.want {
				t.Fatalf("pattern %+v, want %+v", p, s.want)
			}

			// Two tiles' names swapped: each should have the other's.
			a, b := 1234, 5678
			tiles[a].Path, tiles[b].Path = tiles[b].Path, tiles[a].Path
			res := Check(tiles, Options{})
			want := []string{"name_mismatch " + tiles[a].Path, "name_mismatch " + tiles[b].Path}
			slices.Sort(want)
			if got := lines(res.Warnings); !slices.Equal(got, want) {
				t.Fatalf("two names swapped: %v, want %v", got, want)
			}
			for _, w := range res.Warnings {
				other := tiles[a].Path
				if w.Path == other {
					other = tiles[b].Path
				}
				if !strings.HasSuffix(other, "/"+w.Expected) {
					t.Errorf("%s expected %q, want the name of %s", w.Path, w.Expected, other)
				}
			}
			tiles[a].Path, tiles[b].Path = tiles[b].Path, tiles[a].Path

			// A cell inside missing: named as its tile is.
			gone := tiles[4321]
			res = Check(slices.Delete(slices.Clone(tiles), 4321, 4322), Options{})
			if got := lines(res.Warnings); !slices.Equal(got, []string{"missing " + gone.Path}) {
				t.Fatalf("a missing cell: %v, want %s", got, gone.Path)
			}
			if *res.Warnings[0].Box != gone.Box {
				t.Errorf("missing cell %v, want %v", *res.Warnings[0].Box, gone.Box)
			}
		})
	}
}

// Without a clear majority there is no pattern: a delivery named half one
// way, half another gets no name_mismatch, and its holes no name.
func TestNoNamePattern(t *testing.T) {
	tiles := metresLL.grid(10, 10, map[[2]int]bool{{5, 5}: true})
	for i := range tiles {
		if i%2 == 0 {
			tiles[i].Path = hectoUL.name(tiles[i].Box)
		}
	}
	res := Check(tiles, Options{})
	if got := lines(res.Warnings); !slices.Equal(got, []string{"missing"}) {
		t.Fatalf("half and half: %v", got)
	}
	// Names without digits, or with too few.
	for i := range tiles {
		tiles[i].Path = fmt.Sprintf("dalles/tuile-%c%c.tif", 'a'+i%26, 'a'+i/26)
	}
	tiles[3].Path = "dalles/42.tif"
	if got := lines(Check(tiles, Options{}).Warnings); !slices.Equal(got, []string{"missing"}) {
		t.Fatalf("names without coordinates: %v", got)
	}
}

func TestAnnouncedResolution(t *testing.T) {
	tiles := metresLL.grid(3, 3, nil)
	if res := Check(tiles, Options{Announced: 0.05}); len(res.Warnings) != 0 {
		t.Errorf("announced as delivered: %v", lines(res.Warnings))
	}
	res := Check(tiles, Options{Announced: 0.10})
	if len(res.Warnings) != 1 || line(res.Warnings[0]) != "resolution" || res.Warnings[0].Box != nil ||
		res.Warnings[0].Detail != "The delivery's resolution is 5 cm where its livrable announces 10 cm." {
		t.Errorf("announced 10 cm, delivered 5 cm: %+v", res.Warnings)
	}
}

// The offset is in (-size/2, size/2]: a tile half a cell off either way
// is +size/2 from one cell, not -size/2 from the other.
func TestOffsetRange(t *testing.T) {
	for _, shift := range []float64{100, -100, 99.99, -99.99, 30} {
		tiles := metresLL.grid(5, 5, nil)
		tiles[12].Box[0] += shift
		tiles[12].Box[2] += shift
		tiles[12].Box[1] -= shift
		tiles[12].Box[3] -= shift
		res := Check(tiles, Options{})
		i := slices.IndexFunc(res.Warnings, func(w Warning) bool { return w.Kind == OffGrid })
		if i < 0 {
			t.Fatalf("shift %v: no off_grid in %v", shift, lines(res.Warnings))
		}
		off := *res.Warnings[i].Offset
		for _, v := range off {
			if !(v > -100 && v <= 100) {
				t.Errorf("shift %v: offset %v out of (-100, 100]", shift, off)
			}
		}
		if math.Abs(math.Abs(off[0])-math.Abs(shift)) > 0.011 || math.Abs(math.Abs(off[1])-math.Abs(shift)) > 0.011 {
			t.Errorf("shift %v: offset %v", shift, off)
		}
	}
}

// Corners a few millimetres off, as software writes them, are on the
// grid: the tolerance is 1 cm.
func TestWithinTolerance(t *testing.T) {
	tiles := metresLL.grid(10, 10, nil)
	for i := range tiles {
		jitter := float64(i%7-3) * 0.002
		tiles[i].Box[0] += jitter
		tiles[i].Box[3] -= jitter
	}
	if res := Check(tiles, Options{}); len(res.Warnings) != 0 {
		t.Errorf("millimetre jitter: %v", lines(res.Warnings))
	}
	tiles[42].Box[0] += 0.02
	if got := lines(Check(tiles, Options{}).Warnings); !slices.Equal(got, []string{"off_grid " + tiles[42].Path}) {
		t.Errorf("2 cm off: %v", got)
	}
}

// Rectangular tiles make a grid too.
func TestRectangularGrid(t *testing.T) {
	var tiles []Tile
	for c := range 8 {
		for r := range 6 {
			x, y := 400000+300*float64(c), 6000000+200*float64(r)
			tiles = append(tiles, Tile{Path: fmt.Sprintf("r/%06.0f-%07.0f.tif", x, y), Box: [4]float64{x, y, x + 300, y + 200},
				Attrs: shared(Attrs{EPSG: 2154, Width: 6000, Height: 4000, Resolution: 0.05}), Size: 1000})
		}
	}
	if res := Check(tiles, Options{}); len(res.Warnings) != 0 {
		t.Fatalf("300 x 200 m tiles: %v", lines(res.Warnings))
	}
	hole := tiles[20]
	res := Check(append(slices.Clone(tiles[:20]), tiles[21:]...), Options{})
	if got := lines(res.Warnings); !slices.Equal(got, []string{"missing " + hole.Path}) || *res.Warnings[0].Box != hole.Box {
		t.Errorf("a hole in 300 x 200 m tiles: %v", got)
	}
}

// Without a majority grid, nothing is called off it nor missing; overlaps
// and copies are still found.
func TestNoGrid(t *testing.T) {
	var tiles []Tile
	for i := range 10 {
		x := 500000 + 137*float64(i*i)
		side := 100 + 10*float64(i)
		tiles = append(tiles, Tile{Path: fmt.Sprintf("t%02d.tif", i), Box: [4]float64{x, 6e6, x + side, 6e6 + side}, Attrs: shared(Attrs{EPSG: 2154, Resolution: 0.05})})
	}
	tiles = append(tiles, tiles[3])
	tiles[10].Path = "u.tif"
	res := Check(tiles, Options{})
	// t00 [500000, 500100] and t01 [500137, 500247] do not meet; t01 and
	// t02 [500548, ...] neither: squares grow slower than the gaps.
	if got := lines(res.Warnings); !slices.Equal(got, []string{"duplicate u.tif t03.tif"}) {
		t.Errorf("no grid: %v", got)
	}
}

// Holes are enclosed empty cells only: the outside of a concave outline
// is not missing, and empty space touching the outside only at a corner
// (not 4-connected) is enclosed.
func TestHoles(t *testing.T) {
	for _, c := range []struct {
		name    string
		skip    [][2]int
		missing int
	}{
		{"an L", [][2]int{{2, 2}, {3, 2}, {4, 2}, {2, 3}, {3, 3}, {4, 3}, {2, 4}, {3, 4}, {4, 4}}, 0},
		{"a U", [][2]int{{2, 2}, {2, 3}, {2, 4}}, 0},
		{"a ring", [][2]int{{2, 2}}, 1},
		{"a hole beside a notched corner", [][2]int{{3, 3}, {4, 4}}, 1},
		{"a C open at the bottom", [][2]int{{2, 0}, {2, 1}}, 0},
		{"two holes", [][2]int{{1, 1}, {3, 3}}, 2},
		{"a hole of 3 x 2", [][2]int{{1, 1}, {2, 1}, {3, 1}, {1, 2}, {2, 2}, {3, 2}}, 6},
		{"a channel to the outside", [][2]int{{1, 1}, {2, 1}, {2, 2}, {2, 3}, {2, 4}}, 0},
		{"an empty column", [][2]int{{2, 0}, {2, 1}, {2, 2}, {2, 3}, {2, 4}}, 0},
		{"an empty row but one", [][2]int{{0, 2}, {1, 2}, {2, 2}, {3, 2}}, 0},
	} {
		skip := map[[2]int]bool{}
		for _, s := range c.skip {
			skip[s] = true
		}
		res := Check(metresLL.grid(5, 5, skip), Options{})
		if res.ByKind[Missing] != c.missing || len(res.Warnings) != c.missing {
			t.Errorf("%s: %v, want %d missing", c.name, lines(res.Warnings), c.missing)
		}
	}
	// A mosaic 2 x 2 cells large occupies its four cells: no false hole
	// (it is off the grid by its size).
	tiles := metresLL.grid(4, 4, map[[2]int]bool{{1, 1}: true, {2, 1}: true, {1, 2}: true, {2, 2}: true})
	big := metresLL.tile(1, 1)
	big.Box[2], big.Box[3] = big.Box[2]+200, big.Box[3]+200
	res := Check(append(tiles, big), Options{})
	if got := lines(res.Warnings); !slices.Equal(got, []string{"off_grid " + big.Path}) {
		t.Errorf("a 2 x 2 mosaic in a 4 x 4 ring: %v", got)
	}
}

// Tiles in degrees: sides of a few thousandths, under the 1 cm tolerance
// taken as is. The tolerance follows the tiles (a thousandth of their
// side): a clean grid gets nothing, and each defect is still found.
func TestGeographic(t *testing.T) {
	const side = 0.0025
	var tiles []Tile
	for c := range 20 {
		for r := range 20 {
			x, y := 2.3+side*float64(c), 48.8+side*float64(r)
			tiles = append(tiles, Tile{Path: fmt.Sprintf("t_%03d_%03d.tif", c, r), Box: [4]float64{x, y, x + side, y + side},
				Attrs: shared(Attrs{EPSG: 4326, Width: 4000, Height: 4000, Resolution: side / 4000, Format: "image/tiff", Compression: "JPEG"}), Size: 1000})
		}
	}
	if res := Check(tiles, Options{}); len(res.Warnings) != 0 {
		t.Fatalf("a clean grid in degrees: %v", lines(res.Warnings)[:min(5, len(res.Warnings))])
	}
	dup := tiles[5]
	dup.Path = "copie/" + dup.Path
	tiles[50].Box[0] += side / 4
	tiles[50].Box[2] += side / 4
	res := Check(append(slices.Delete(slices.Clone(tiles), 210, 211), dup), Options{})
	want := []string{
		"off_grid " + tiles[50].Path,
		"overlap " + tiles[50].Path + " " + tiles[70].Path,
		// The later path is blamed: here the original, "copie/" sorting
		// first.
		"duplicate " + tiles[5].Path + " copie/" + tiles[5].Path,
		"missing",
	}
	if got := lines(res.Warnings); !slices.Equal(got, want) {
		t.Errorf("defects in degrees: %v\nwant %v", got, want)
	}
}

// TestTileSize: a scan holds one Tile per readable tile, a million at
// once; a field added carelessly costs megabytes.
func TestTileSize(t *testing.T) {
	if s := unsafe.Sizeof(Tile{}); s > 64 {
		t.Errorf("a Tile takes %d bytes, want at most 64", s)
	}
}

var sharedAttrs = struct {
	sync.Mutex
	m map[Attrs]*Attrs
}{m: map[Attrs]*Attrs{}}

// shared is one Attrs per value, as a scan gives its tiles.
func shared(a Attrs) *Attrs {
	sharedAttrs.Lock()
	defer sharedAttrs.Unlock()
	p, ok := sharedAttrs.m[a]
	if !ok {
		p = &a
		sharedAttrs.m[a] = p
	}
	return p
}
