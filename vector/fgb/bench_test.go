package fgb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchChildEnv makes the test binary a benchmark child: "N:path" writes
// N tile features to path and prints the child's peak RSS and time.
const benchChildEnv = "PCRS_FGB_BENCH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchChildEnv); spec != "" {
		os.Exit(benchChild(spec))
	}
	os.Exit(m.Run())
}

// The tile index's columns (the dalles' properties).
var tileColumns = []Column{
	{Name: "nomImage", Type: ColString},
	{Name: "idPCRS", Type: ColString, Nullable: true},
	{Name: "resolution", Type: ColInt},
	{Name: "typeImage", Type: ColString},
	{Name: "tailleFichier", Type: ColLong},
	{Name: "tailleImage", Type: ColString},
	{Name: "compression", Type: ColString},
	{Name: "epsg", Type: ColString},
	{Name: "bandes", Type: ColString},
	{Name: "open", Type: ColBool},
	{Name: "chemin", Type: ColString},
	{Name: "stockage", Type: ColString},
	{Name: "location", Type: ColString, Nullable: true},
}

// Tiles are 200 m squares on a grid over mainland France, taken in an
// order scattered all over it (a permutation of the grid's cells): the
// worst case for copying features into Hilbert order.
const (
	tileW, tileH   = 0.0027, 0.0018 // about 200 m at 46°N
	gridCols       = 5400           // 14.58° from 5°W
	gridRows       = 5500           // 9.9° from 41.2°N
	gridCells      = gridCols * gridRows
	gridPermFactor = 1_000_003 // prime, so i -> i*f mod cells is a permutation
)

func tileBox(i int) [4]float64 {
	c := (i * gridPermFactor) % gridCells
	x, y := -5+float64(c%gridCols)*tileW, 41.2+float64(c/gridCols)*tileH
	return [4]float64{x, y, x + tileW, y + tileH}
}

func tileFeature(i int, vals []Value) Feature {
	b := tileBox(i)
	name := "dalle_" + strconv.Itoa(i) + ".jp2"
	vals[0] = String(name)
	vals[1] = Null()
	vals[2] = Int(5)
	vals[3] = String("image/jp2")
	vals[4] = Long(5_000_000 + int64(i))
	vals[5] = String("4000x4000")
	vals[6] = String("LOSSY")
	vals[7] = String("EPSG:2154")
	vals[8] = String("Red(Byte)/Green(Byte)/Blue(Byte)")
	vals[9] = Bool(true)
	vals[10] = String("d/" + name)
	vals[11] = String("s3://b/p")
	vals[12] = String("/vsis3/b/p/d/" + name)
	return Feature{Geometry: BoxGeometry(b[0], b[1], b[2], b[3]), Values: vals}
}

// childReport is what a benchmark child prints.
type childReport struct {
	PeakKiB  int64 `json:"peakKiB"` // VmHWM
	Nanos    int64 `json:"nanos"`
	Features int   `json:"features"`
	Bytes    int64 `json:"bytes"`
}

func benchChild(spec string) int {
	nStr, path, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nStr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	start := time.Now()
	w, err := Create(context.Background(), path, Schema{Name: "dalles", GeometryType: Polygon, Columns: tileColumns, EPSG: 4326})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	vals := make([]Value, len(tileColumns))
	for i := range n {
		if err := w.Write(tileFeature(i, vals)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	elapsed := time.Since(start)
	fi, err := os.Stat(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	peak, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, _ := json.Marshal(childReport{PeakKiB: peak, Nanos: elapsed.Nanoseconds(), Features: n, Bytes: fi.Size()})
	fmt.Println(string(out))
	return 0
}

// vmHWM is the process's peak resident set size, in KiB.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// runChild writes n tiles in a child process and returns its report; the
// peak is the larger of the child's VmHWM and its rusage's Maxrss.
func runChild(b *testing.B, n int, path string) childReport {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", benchChildEnv, n, path))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("child writing %d features: %v", n, err)
	}
	var r childReport
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("child's report %q: %v", out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakKiB = max(r.PeakKiB, ru.Maxrss)
	}
	return r
}

// BenchmarkWrite writes 100,000 then 1,000,000 tile features (200 m boxes
// over France, the tile index's 13 columns), each in its own child process
// so that each peak RSS is measured alone, and fails unless the 1M peak
// stays under 1.3 times the 100k peak and under 100 MiB. GDAL must then
// read both files: their count, and a spatial filter equal to a brute
// force.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	sizes := []int{100_000, 1_000_000}
	reports := make([]childReport, len(sizes))
	for range b.N {
		for i, n := range sizes {
			path := filepath.Join(dir, fmt.Sprintf("dalles_%d.fgb", n))
			reports[i] = runChild(b, n, path)
			checkTiles(b, path, n)
			os.Remove(path)
		}
	}
	small, large := reports[0], reports[1]
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	ratio := float64(large.PeakKiB) / float64(small.PeakKiB)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mib(small.PeakKiB), "peakRSS-MiB-100k")
	b.ReportMetric(mib(large.PeakKiB), "peakRSS-MiB-1M")
	b.ReportMetric(ratio, "peakRSS-ratio")
	b.ReportMetric(float64(small.Nanos)/float64(small.Features), "ns/feature-100k")
	b.ReportMetric(float64(large.Nanos)/float64(large.Features), "ns/feature-1M")
	b.Logf("100k: peak RSS %.1f MiB, %.2fs, %d bytes; 1M: peak RSS %.1f MiB, %.2fs, %d bytes; ratio %.3f",
		mib(small.PeakKiB), time.Duration(small.Nanos).Seconds(), small.Bytes,
		mib(large.PeakKiB), time.Duration(large.Nanos).Seconds(), large.Bytes, ratio)
	if ratio > 1.3 || mib(large.PeakKiB) > 100 {
		b.Fatalf("memory grows with features: peak RSS %.1f MiB at 100k, %.1f MiB at 1M (ratio %.2f; limits 1.3 and 100 MiB)",
			mib(small.PeakKiB), mib(large.PeakKiB), ratio)
	}
}

// checkTiles has GDAL count the tiles and answer a spatial filter, compared
// with a brute force over the tiles' boxes.
func checkTiles(b *testing.B, path string, n int) {
	b.Helper()
	if s := summary(b, path); s.count != n {
		b.Fatalf("ogrinfo counts %d features, want %d", s.count, n)
	}
	q := [4]float64{2.3, 48.8, 2.4, 48.9} // Paris
	var want []int
	for i := range n {
		t := tileBox(i)
		if t[0] <= q[2] && t[2] >= q[0] && t[1] <= q[3] && t[3] >= q[1] {
			want = append(want, i)
		}
	}
	args := []string{"-f", "CSV", "/vsistdout/", path, "-select", "nomImage", "-spat"}
	for _, v := range q {
		args = append(args, strconv.FormatFloat(v, 'g', -1, 64))
	}
	var got []int
	for _, line := range strings.Split(strings.TrimSpace(gdal(b, "ogr2ogr", args...)), "\n")[1:] {
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(strings.Trim(line, `"`), "dalle_"), ".jp2"))
		if err != nil {
			b.Fatalf("CSV line %q", line)
		}
		got = append(got, id)
	}
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		b.Fatalf("spatial filter on %v: GDAL found %d tiles, brute force %d", q, len(got), len(want))
	}
}
