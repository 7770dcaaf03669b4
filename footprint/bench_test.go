package footprint

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/openpcrs/pcrs-indexer/footprint/internal/geos"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/planar"
)

// benchGrid is a square grid of 200 m tiles with 5% missing at random.
func benchGrid(n int, seed uint64) []Box {
	side := int(math.Ceil(math.Sqrt(float64(n) / 0.95)))
	r := rand.New(rand.NewPCG(seed, 42))
	boxes := make([]Box, 0, n)
	for i := 0; len(boxes) < n && i < side*side; i++ {
		if r.Float64() < 0.05 {
			continue
		}
		x, y := float64(i%side)*200+600000, float64(i/side)*200+6200000
		boxes = append(boxes, Box{x, y, x + 200, y + 200})
	}
	return boxes
}

func BenchmarkUnion(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		boxes := benchGrid(n, 1)
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if mp := Union(boxes, DefaultTolerance); len(mp) == 0 {
					b.Fatal("empty union")
				}
			}
		})
	}
}

// BenchmarkUnionGEOS does the same union through GEOS's cascaded union, as
// the scanner we replace could at best.
func BenchmarkUnionGEOS(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		boxes := benchGrid(n, 1)
		mp := make(orb.MultiPolygon, len(boxes))
		for i, bx := range boxes {
			mp[i] = BoxPolygon(bx)
		}
		raw, err := wkb.Marshal(mp)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := geos.UnionCascaded(raw)
				if err != nil || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestUnionMatchesGEOS: same area as GEOS's cascaded union on a benchmark
// grid, so the benchmarks compare equal work.
func TestUnionMatchesGEOS(t *testing.T) {
	boxes := benchGrid(2000, 3)
	mp := make(orb.MultiPolygon, len(boxes))
	for i, bx := range boxes {
		mp[i] = BoxPolygon(bx)
	}
	raw, err := wkb.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	out, err := geos.UnionCascaded(raw)
	if err != nil {
		t.Fatal(err)
	}
	g, err := wkb.Unmarshal(out)
	if err != nil {
		t.Fatal(err)
	}
	ours := Union(boxes, DefaultTolerance)
	if a, b := planar.Area(ours), planar.Area(g); math.Abs(a-b) > 1e-3*a {
		t.Errorf("area %v, GEOS %v", a, b)
	}
	var holes int
	for _, p := range ours {
		holes += len(p) - 1
	}
	var geosHoles int
	switch gg := g.(type) {
	case orb.Polygon:
		geosHoles = len(gg) - 1
	case orb.MultiPolygon:
		for _, p := range gg {
			geosHoles += len(p) - 1
		}
	}
	if holes != geosHoles {
		t.Errorf("%d holes, GEOS %d", holes, geosHoles)
	}
}

// BenchmarkPlace is the whole livrable footprint: checking every tile
// (four corners reprojected each), the exact union, reprojection and the
// final validity check.
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		boxes := benchGrid(n, 1)
		tiles := make([]Tile, len(boxes))
		for i, bx := range boxes {
			tiles[i] = Tile{EPSG: 2154, Box: bx}
		}
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			var ps Projectors
			defer ps.Close()
			b.ReportAllocs()
			for b.Loop() {
				if r := ps.Place(tiles, Options{}); len(r.WGS84) == 0 || len(r.Rejected) != 0 {
					b.Fatal("bad footprint")
				}
			}
		})
	}
}

// memoryGrid is a delivery of n tiles of 200 m in 1000 rows of n/1000
// columns, with a few holes: sized once, so that building it leaves no
// garbage behind.
func memoryGrid(n int) []Tile {
	tiles := make([]Tile, 0, n)
	_ = gridSource(n)(func(t Tile) bool {
		tiles = append(tiles, t)
		return true
	})
	return tiles
}

// gridSource is memoryGrid(n) made tile by tile as it is read, never held.
func gridSource(n int) TileSource {
	cols := n / 1000
	hole := func(c, r int) bool {
		return (c >= cols/3 && c < cols/3+4 && r >= 200 && r < 205) ||
			(c == cols/2 && r >= 600 && r < 603) ||
			(c == cols-2 && r == 900)
	}
	return func(yield func(Tile) bool) error {
		for r := range 1000 {
			for c := range cols {
				if hole(c, r) {
					continue
				}
				x, y := 600000+float64(c)*200, 6200000+float64(r)*200
				if !yield(Tile{EPSG: 2154, Box: Box{x, y, x + 200, y + 200}}) {
					return nil
				}
			}
		}
		return nil
	}
}

// rssKiB is the process's resident set now, from /proc/self/status.
func rssKiB() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// TestPlaceMemoryChild is BenchmarkPlaceMemory's child process: it builds
// the delivery, warms GDAL, PROJ and GEOS up on four tiles, then places the
// delivery and prints its resident set before and its peak after.
func TestPlaceMemoryChild(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("FOOTPRINT_PLACE_MEMORY_TILES"))
	if err != nil {
		t.Skip("run by BenchmarkPlaceMemory in a child process")
	}
	var ps Projectors
	defer ps.Close()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	start := ru.Maxrss
	if r := ps.Place(memoryGrid(4000)[:4], Options{}); len(r.WGS84) != 1 {
		t.Fatal("warm-up failed")
	}
	tiles := memoryGrid(n)
	if os.Getenv("FOOTPRINT_PLACE_MEMORY_JITTER") != "" {
		// Every corner a few tenths of a millimetre off the grid, none
		// shared with a neighbour's.
		for i := range tiles {
			b := &tiles[i].Box
			j := func(k int) float64 { return float64((i*7+k*3)%9-4) * 1e-4 }
			b.MinX, b.MinY, b.MaxX, b.MaxY = b.MinX+j(0), b.MinY+j(1), b.MaxX+j(2), b.MaxY+j(3)
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	base, err := rssKiB()
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	place := ps.Place
	if os.Getenv("FOOTPRINT_PLACE_MEMORY_LEGACY") != "" {
		place = ps.oldPlace // the frozen copy, for a before/after comparison
	}
	res := place(tiles, Options{})
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if len(res.WGS84) != 1 || len(res.Rejected) != 0 {
		t.Fatalf("%d polygons, %d rejected", len(res.WGS84), len(res.Rejected))
	}
	runtime.KeepAlive(tiles)
	fmt.Printf("place-memory tiles %d start-kib %d base-kib %d peak-kib %d\n", len(tiles), start, base, ru.Maxrss)
	fmt.Printf("place-allocated %d bytes in %d objects, %d GCs\n", after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs, after.NumGC-before.NumGC)
}

// BenchmarkPlaceMemory places 100,000 and 1,000,000 grid tiles, each in
// its own process, and reports Place's working memory: its peak resident
// set less the resident set once the tiles are built (and GDAL, PROJ and
// GEOS loaded). At 1,000,000 tiles it must stay within 100 bytes a tile
// and 120 MiB.
func BenchmarkPlaceMemory(b *testing.B) {
	perTile := map[int]float64{}
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("tiles=%d", n), func(b *testing.B) {
			var work, peak, tiles float64
			for range b.N {
				tiles, work, peak = placeMemoryChild(b, n)
			}
			perTile[n] = work / tiles
			fmt.Printf("place memory: %.0f tiles, working %.1f MiB (%.1f B/tile), peak RSS %.1f MiB\n", tiles, work/(1<<20), perTile[n], peak/(1<<20))
			b.ReportMetric(perTile[n], "work-B/tile")
			b.ReportMetric(work/(1<<20), "work-MiB")
			b.ReportMetric(peak/(1<<20), "peak-RSS-MiB")
			if n == 1_000_000 && (perTile[n] > 100 || work > 120<<20) {
				b.Errorf("placing %.0f tiles took %.0f MiB (%.0f B/tile), over 100 B/tile or 120 MiB", tiles, work/(1<<20), perTile[n])
			}
		})
	}
	if perTile[100_000] > 0 && perTile[1_000_000] > 0 {
		fmt.Printf("place working memory: 100k tiles %.1f B/tile, 1M tiles %.1f B/tile, ratio 1M/100k %.2f\n",
			perTile[100_000], perTile[1_000_000], perTile[1_000_000]/perTile[100_000])
	}
}

// placeMemoryChild runs TestPlaceMemoryChild on n tiles and returns the
// tiles placed, the working memory and the peak resident set, in bytes.
func placeMemoryChild(b *testing.B, n int) (tiles, work, peak float64) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPlaceMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FOOTPRINT_PLACE_MEMORY_TILES="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child placing %d tiles: %v\n%s", n, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var nt, start, base, pk int64
		if _, err := fmt.Sscanf(line, "place-memory tiles %d start-kib %d base-kib %d peak-kib %d", &nt, &start, &base, &pk); err == nil {
			return float64(nt), float64(pk-base) * 1024, float64(pk) * 1024
		}
	}
	b.Fatalf("child placing %d tiles printed no measure:\n%s", n, out)
	return 0, 0, 0
}

// BenchmarkUnionVsLegacy times Union and the frozen copy of the code
// before its memory was cut (legacy_test.go) on the benchmark grid, on the
// same grid with every coordinate jittered under a millimetre (too many
// distinct values to count: sorted), and on boxes off any grid (the
// merged-intervals path).
func BenchmarkUnionVsLegacy(b *testing.B) {
	grid := benchGrid(1_000_000, 1)
	r := rand.New(rand.NewPCG(5, 6))
	jittered := slices.Clone(grid)
	for i := range jittered {
		j := func() float64 { return (r.Float64()*2 - 1) * 0.001 }
		bx := &jittered[i]
		bx.MinX, bx.MinY, bx.MaxX, bx.MaxY = bx.MinX+j(), bx.MinY+j(), bx.MaxX+j(), bx.MaxY+j()
	}
	off := make([]Box, 10_000)
	for i := range off {
		x, y := 700000+r.Float64()*20000, 6600000+r.Float64()*20000
		off[i] = Box{x, y, x + 50 + r.Float64()*150, y + 50 + r.Float64()*150}
	}
	for _, set := range []struct {
		name  string
		boxes []Box
	}{{"grid=1M", grid}, {"jittered=1M", jittered}, {"offgrid=10k", off}} {
		for _, impl := range []struct {
			name string
			f    func([]Box, float64) orb.MultiPolygon
		}{{"current", Union}, {"legacy", oldUnion}} {
			b.Run(set.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if mp := impl.f(set.boxes, DefaultTolerance); len(mp) == 0 {
						b.Fatal("empty union")
					}
				}
			})
		}
	}
}
