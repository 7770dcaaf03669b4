package quality

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// gridSource gives side x side tiles of 200 m, column by column, named
// so that this is also path order, without holding them: a source as
// large as a national run's storage costs nothing to hold.
func gridSource(side int) Source {
	attrs := &Attrs{EPSG: 2154, Width: 4000, Height: 4000, Resolution: 0.05, Format: "image/jp2", Compression: "LOSSY", Bands: "Red(Byte)/Green(Byte)/Blue(Byte)"}
	return func(yield func(*Tile) bool) error {
		for c := range side {
			for r := range side {
				x, y := 600000+200*float64(c), 6200000+200*float64(r)
				t := Tile{Path: fmt.Sprintf("dalles/%07.0f_%07.0f.jp2", x, y+200), Box: [4]float64{x, y, x + 200, y + 200},
					Size: 9_000_000 + int64((c*7919+r*104729)%1_000_000), Attrs: attrs}
				if !yield(&t) {
					return nil
				}
			}
		}
		return nil
	}
}

// TestCheckMemoryChild is BenchmarkCheckStreamMemory's child: it checks
// a generated grid and prints its peak RSS.
func TestCheckMemoryChild(t *testing.T) {
	side, err := strconv.Atoi(os.Getenv("PCRS_CHECK_MEMORY_SIDE"))
	if err != nil {
		t.Skip("run by BenchmarkCheckStreamMemory")
	}
	res, declined, err := CheckStream(gridSource(side), Options{})
	if err != nil || declined != nil {
		t.Fatalf("declined %v, %v", declined, err)
	}
	if n := res.ByKind[OffGrid] + res.ByKind[Missing] + res.ByKind[Overlap]; n != 0 {
		t.Fatalf("a clean grid: %v", res.ByKind)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fmt.Println("peak-rss-kib", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

// BenchmarkCheckStreamMemory checks grids of 100,000 and 1,000,000 tiles
// in child processes and compares their peak RSS: ten times the tiles may
// cost at most 8 MiB more (under 10 bytes a tile, where Check holds about
// 170): what grows is the sorts' merge, a 32 KiB buffer per run read at
// once, 64 runs at most.
func BenchmarkCheckStreamMemory(b *testing.B) {
	peaks := map[int]float64{}
	for _, side := range []int{316, 1000} {
		b.Run(fmt.Sprintf("tiles=%d", side*side), func(b *testing.B) {
			for range b.N {
				peaks[side] = checkPeak(b, side)
			}
			b.ReportMetric(peaks[side], "peak-RSS-MiB")
		})
	}
	if small, large := peaks[316], peaks[1000]; small > 0 && large > 0 {
		fmt.Printf("check memory: 100k tiles %.0f MiB, 1M tiles %.0f MiB, ratio %.2f\n", small, large, large/small)
		if large > small+8 {
			b.Errorf("the check of 1,000,000 tiles peaked at %.0f MiB, %.0f MiB over that of 100,000 (%.0f MiB)", large, large-small, small)
		}
	}
}

func checkPeak(b *testing.B, side int) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PCRS_CHECK_MEMORY_SIDE="+strconv.Itoa(side))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child checking %d tiles: %v\n%s", side*side, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "peak-rss-kib "); ok {
			kib, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib / 1024
		}
	}
	b.Fatalf("child checking %d tiles said no peak:\n%s", side*side, out)
	return 0
}
