package footprint

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// allocations is what f allocates, in bytes, from a memory profile that
// records every allocation with its stack: godal's is what godal allocates
// (copies of the coordinates each reprojection passes to C, garbage once
// the call returns, a batch's worth at most), own is the rest.
func allocations(f func()) (own, godal int64) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	before := allocatedByStack()
	f()
	for stk, n := range allocatedByStack() {
		if n -= before[stk]; inGodal(stk) {
			godal += n
		} else {
			own += n
		}
	}
	return own, godal
}

func allocatedByStack() map[[32]uintptr]int64 {
	// A profile is published by the garbage collection after the one its
	// allocations were made in.
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, ok := runtime.MemProfile(nil, true)
	for !ok {
		recs = make([]runtime.MemProfileRecord, n+100)
		n, ok = runtime.MemProfile(recs, true)
	}
	out := make(map[[32]uintptr]int64, n)
	for _, r := range recs[:n] {
		out[r.Stack0] += r.AllocBytes
	}
	return out
}

func inGodal(stk [32]uintptr) bool {
	frames := runtime.CallersFrames(stk[:])
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, "airbusgeo/godal.") {
			return true
		}
		if !more {
			return false
		}
	}
}

// TestPlaceStreamMemory: placing a grid of 1,000,000 tiles read from a
// source allocates at most 1.5 times what 100,000 tiles do, and at most a
// byte more a tile (boundary and outline grow with the grid's side),
// where PlaceEach before it streamed, with the slice it needs, took 7
// times (BenchmarkPlaceEachMemoryReference). godal's copies of the corners it
// reprojects, about 25 bytes a tile on a grid but garbage at once, are
// left out of the count.
func TestPlaceStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("places 1,100,000 tiles")
	}
	var ps Projectors
	defer ps.Close()
	place := func(n int) (int64, int64) {
		var err error
		own, godal := allocations(func() {
			var res Result
			res, err = ps.PlaceStream(gridSource(n), Options{}, func(Rejected) {})
			if len(res.WGS84) != 1 {
				err = fmt.Errorf("%d polygons", len(res.WGS84))
			}
		})
		if err != nil {
			t.Fatalf("%d tiles: %v", n, err)
		}
		return own, godal
	}
	place(4000) // PROJ's and GEOS's first allocations
	own100k, godal100k := place(100_000)
	own1M, godal1M := place(1_000_000)
	t.Logf("PlaceStream allocates %.2f MiB for 100,000 tiles, %.2f MiB for 1,000,000 (ratio %.2f); godal's garbage %.1f and %.1f MiB",
		mib(own100k), mib(own1M), float64(own1M)/float64(own100k), mib(godal100k), mib(godal1M))
	if float64(own1M) > 1.5*float64(own100k) {
		t.Errorf("1,000,000 tiles allocate %.2f MiB, over 1.5 times the %.2f MiB of 100,000", mib(own1M), mib(own100k))
	}
	// The bit of each tile, the bitmap's (as many cells as tiles) and the
	// longer outline come to some 0.7 byte a tile; a 4-byte index is over.
	if perTile := float64(own1M-own100k) / 900_000; perTile > 1 {
		t.Errorf("%.2f bytes a tile more from 100,000 tiles to 1,000,000, over 1", perTile)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// BenchmarkPlaceEachMemoryReference measures, as TestPlaceStreamMemory
// does, refPlaceEach on the tiles it needs in a slice: the claim's
// comparison, a measure rather than a check.
func BenchmarkPlaceEachMemoryReference(b *testing.B) {
	var ps Projectors
	defer ps.Close()
	var res [2]int64
	for range b.N {
		for k, n := range []int{100_000, 1_000_000} {
			res[k], _ = allocations(func() {
				tiles := memoryGrid(n)
				ps.refPlaceEach(tiles, Options{}, func(Rejected) {})
			})
		}
	}
	b.ReportMetric(float64(res[1])/float64(res[0]), "ratio-1M/100k")
	fmt.Printf("refPlaceEach with its slice allocates %.2f MiB for 100,000 tiles, %.2f MiB for 1,000,000 (ratio %.2f)\n", mib(res[0]), mib(res[1]), float64(res[1])/float64(res[0]))
}

// BenchmarkPlaceStream places 1,000,000 grid tiles made as they are read,
// and the same tiles from a slice through PlaceEach and through the
// PlaceEach of before (refPlaceEach), and prints the time ratios.
func BenchmarkPlaceStream(b *testing.B) {
	const n = 1_000_000
	tiles := memoryGrid(n)
	var ps Projectors
	defer ps.Close()
	times := map[string]float64{}
	for _, v := range []struct {
		name  string
		place func()
	}{
		{"stream", func() { _, _ = ps.PlaceStream(gridSource(n), Options{}, func(Rejected) {}) }},
		{"each", func() { ps.PlaceEach(tiles, Options{}, func(Rejected) {}) }},
		{"reference", func() { ps.refPlaceEach(tiles, Options{}, func(Rejected) {}) }},
	} {
		b.Run(fmt.Sprintf("tiles=%d/%s", n, v.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.place()
			}
			times[v.name] = b.Elapsed().Seconds() / float64(b.N)
		})
	}
	if times["reference"] > 0 && times["stream"] > 0 && times["each"] > 0 {
		fmt.Printf("place stream: 1,000,000 tiles in %.3f s read from a source, %.3f s through PlaceEach; %.2fx and %.2fx the time of the PlaceEach before it streamed (%.3f s)\n",
			times["stream"], times["each"], times["stream"]/times["reference"], times["each"]/times["reference"], times["reference"])
	}
}
