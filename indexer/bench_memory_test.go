package indexer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/memlimit"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// The generated storage holds a grid of 200 m GeoTIFF tiles, 1,000 per
// column, listed like S3 (flat pages of 1,000 keys in key order): every
// object is one real tile written by GDAL whose tie point is rewritten on
// the fly for its key, so a million distinct, header-complete tiles cost
// no disk and no generation time.
const (
	gridRows       = 1000
	gridX0, gridY0 = 600000.0, 6600000.0
	genPageSize    = 1000
	genTemplateX   = 700000.0
	genTemplateY   = 6600200.0
)

type generated struct {
	n        int
	template []byte
	xAt, yAt int // offsets of the template's tie point X and Y
}

func newGenerated(tb testing.TB, n int) *generated {
	tb.Helper()
	dir := tb.TempDir()
	p := filepath.Join(dir, "t.tif")
	t := tilegen.Tile{EPSG: 2154, Width: 200, Pixel: 1, X: genTemplateX, Y: genTemplateY, Creation: []string{"COMPRESS=JPEG", "TILED=YES"}}
	if err := t.Write(p); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	g := &generated{n: n, template: b, xAt: offsetOf(tb, b, genTemplateX), yAt: offsetOf(tb, b, genTemplateY)}
	return g
}

// offsetOf finds the one place v is stored as a little-endian float64.
func offsetOf(tb testing.TB, b []byte, v float64) int {
	var enc [8]byte
	binary.LittleEndian.PutUint64(enc[:], math.Float64bits(v))
	i := bytes.Index(b, enc[:])
	if i < 0 || bytes.Contains(b[i+1:], enc[:]) {
		tb.Fatalf("the template holds %v %s", v, map[bool]string{true: "nowhere", false: "twice"}[i < 0])
	}
	return i
}

// genKey names the i-th tile so that keys sort like their indexes.
func genKey(i int) string {
	col, row := i/gridRows, i%gridRows
	x, y := int(gridX0)+col*200, int(gridY0)+(row+1)*200
	return fmt.Sprintf("zone-%03d/PCRS_%07d_%07d.tif", col/50, x, y)
}

// ListsInOrder: the keys come sorted, as S3 lists them.
func (g *generated) ListsInOrder() bool { return true }

func (g *generated) List(_ context.Context, cursor string) (storage.Page, error) {
	start := 0
	if cursor != "" {
		start, _ = strconv.Atoi(cursor)
	}
	end := min(start+genPageSize, g.n)
	page := storage.Page{Objects: make([]storage.Object, 0, end-start)}
	for i := start; i < end; i++ {
		page.Objects = append(page.Objects, storage.Object{Key: genKey(i), Size: int64(len(g.template))})
	}
	if end < g.n {
		page.Next = strconv.Itoa(end)
	}
	return page, nil
}

func (g *generated) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	x, y, ok := genPosition(key)
	if !ok {
		return 0, fmt.Errorf("%s: %w", key, storage.ErrNotFound)
	}
	if off >= int64(len(g.template)) {
		return 0, io.EOF
	}
	n := copy(p, g.template[off:])
	var enc [8]byte
	for _, f := range []struct {
		at int
		v  float64
	}{{g.xAt, x}, {g.yAt, y}} {
		binary.LittleEndian.PutUint64(enc[:], math.Float64bits(f.v))
		for j := range enc {
			if k := int64(f.at+j) - off; k >= 0 && k < int64(n) {
				p[k] = enc[j]
			}
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// genPosition reads the upper-left corner genKey wrote into a key.
func genPosition(key string) (x, y float64, ok bool) {
	name := strings.TrimSuffix(key[strings.LastIndexByte(key, '/')+1:], ".tif")
	parts := strings.Split(name, "_")
	if len(parts) != 3 {
		return 0, 0, false
	}
	xi, errX := strconv.Atoi(parts[1])
	yi, errY := strconv.Atoi(parts[2])
	return float64(xi), float64(yi), errX == nil && errY == nil
}

func (g *generated) Stat(_ context.Context, key string) (storage.Object, error) {
	return storage.Object{Key: key, Size: int64(len(g.template))}, nil
}

func (g *generated) Close() error { return nil }

// benchMemoryLimit is the --memory-limit the benchmark scans under, as a
// pod given 256 MiB would set it (auto: 80 % of the container's limit).
const benchMemoryLimit = "200MiB"

// TestScanMemoryChild is BenchmarkScanMemory's child process: it scans the
// generated storage and publishes, so its peak RSS is one scan's.
func TestScanMemoryChild(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PCRS_SCAN_MEMORY_TILES"))
	if err != nil {
		t.Skip("run by BenchmarkScanMemory in a child process")
	}
	limit := os.Getenv("PCRS_SCAN_MEMORY_LIMIT")
	bytes, source, err := memlimit.Resolve(limit, func(string) string { return "" }, fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	memlimit.Enforce(bytes, source)
	g := newGenerated(t, n)
	var st storage.Storage = g
	kind := os.Getenv("PCRS_SCAN_MEMORY_KIND")
	switch kind {
	case "cut":
		st = cutShort{g}
	case "far":
		st = farAway{g}
	}
	broken := kind != ""
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: "/generated", Backend: "file", Name: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	switch c := res.Report.Counts; {
	case broken && c.Problems != n:
		t.Fatalf("%d problems of %d broken tiles", c.Problems, n)
	case !broken && c.Readable != n:
		t.Fatalf("%d readable of %d: %+v", c.Readable, n, problemsOf(t, res)[:min(3, c.Problems)])
	}
	if err := indexer.Publish(t.TempDir(), res); err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("peak-rss-kib %d\n", ru.Maxrss)
}

// cutShort lists every tile 100 bytes shorter than its header says: each
// is a problem (a transfer cut short) that its header places, the heaviest
// kind for a report (a detail and an outline each).
type cutShort struct{ *generated }

func (c cutShort) List(ctx context.Context, cursor string) (storage.Page, error) {
	p, err := c.generated.List(ctx, cursor)
	for i := range p.Objects {
		p.Objects[i].Size = int64(len(c.template)) - 100
	}
	return p, err
}

// farAway moves every tile 50,000 km east: each header is sound, and the
// union sets every tile aside as misplaced.
type farAway struct{ *generated }

func (f farAway) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	n, err := f.generated.ReadAt(ctx, key, p, off)
	x, _, _ := genPosition(key)
	var enc [8]byte
	binary.LittleEndian.PutUint64(enc[:], math.Float64bits(x+5e7))
	for j := range enc {
		if k := int64(f.xAt+j) - off; k >= 0 && k < int64(n) {
			p[k] = enc[j]
		}
	}
	return n, err
}

// BenchmarkScanMemory scans 100,000 and 1,000,000 generated tiles, each in
// its own process under --memory-limit 200MiB, and reports both peaks
// (under 300 MiB at both sizes and 1,000,000 within maxMemoryRatio of
// 100,000, or it fails); then 1,000,000 without a
// limit, reported only, to show what the limit saves; then 100,000 and
// 1,000,000 tiles all cut short (every tile a problem its header places),
// and all misplaced (every tile set aside by the union), under 300 MiB
// too.
func BenchmarkScanMemory(b *testing.B) {
	peaks := map[string]float64{}
	for _, c := range []struct {
		n     int
		limit string
		kind  string
	}{{100_000, benchMemoryLimit, ""}, {1_000_000, benchMemoryLimit, ""}, {1_000_000, memlimit.Off, ""},
		{100_000, benchMemoryLimit, "cut"}, {1_000_000, benchMemoryLimit, "cut"},
		{100_000, benchMemoryLimit, "far"}, {1_000_000, benchMemoryLimit, "far"}} {
		name := fmt.Sprintf("%d/limit=%s", c.n, c.limit)
		if c.kind != "" {
			name += "/" + c.kind
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				peaks[name] = childPeak(b, c.n, c.limit, c.kind)
			}
			b.ReportMetric(peaks[name], "peak-RSS-MiB")
			if c.limit != memlimit.Off && peaks[name] > 300 {
				b.Errorf("scanning %d tiles peaked at %.0f MiB, over 300 MiB", c.n, peaks[name])
			}
		})
	}
	small, large, off := peaks["100000/limit="+benchMemoryLimit], peaks["1000000/limit="+benchMemoryLimit], peaks["1000000/limit=off"]
	smallCut, largeCut := peaks["100000/limit="+benchMemoryLimit+"/cut"], peaks["1000000/limit="+benchMemoryLimit+"/cut"]
	smallFar, largeFar := peaks["100000/limit="+benchMemoryLimit+"/far"], peaks["1000000/limit="+benchMemoryLimit+"/far"]
	for _, pair := range [][2]float64{{small, large}, {smallCut, largeCut}, {smallFar, largeFar}} {
		if pair[0] > 0 && pair[1] > pair[0]*maxMemoryRatio {
			b.Errorf("1,000,000 tiles peaked at %.0f MiB, %.2fx the %.0f MiB of 100,000: memory is not flat", pair[1], pair[1]/pair[0], pair[0])
		}
	}
	if small > 0 && large > 0 && off > 0 && smallCut > 0 && largeCut > 0 && smallFar > 0 && largeFar > 0 {
		fmt.Printf("scan memory (--memory-limit %s): 100k tiles %.0f MiB, 1M tiles %.0f MiB, ratio %.2f; 1M without a limit %.0f MiB; every tile cut short: 100k %.0f MiB, 1M %.0f MiB, ratio %.2f; every tile misplaced: 100k %.0f MiB, 1M %.0f MiB, ratio %.2f\n",
			benchMemoryLimit, small, large, large/small, off, smallCut, largeCut, largeCut/smallCut, smallFar, largeFar, largeFar/smallFar)
	}
}

// maxMemoryRatio is how much more 1,000,000 tiles may peak at than
// 100,000 under the same limit: the scan holds nothing a tile, so what
// differs is the collector's timing.
const maxMemoryRatio = 1.25

func childPeak(b *testing.B, n int, limit, kind string) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestScanMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PCRS_SCAN_MEMORY_TILES="+strconv.Itoa(n), "PCRS_SCAN_MEMORY_LIMIT="+limit, "GOMEMLIMIT=")
	cmd.Env = append(cmd.Env, "PCRS_SCAN_MEMORY_KIND="+kind)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child scanning %d tiles: %v\n%s", n, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "peak-rss-kib "); ok {
			kib, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib / 1024
		}
	}
	b.Fatalf("child scanning %d tiles said no peak:\n%s", n, out)
	return 0
}

// longName lists, first, a tile whose name runs to 2 MiB: a web listing's
// link can, and the spool's index refused such a record, failing the scan.
type longName struct{ *generated }

func (l longName) List(ctx context.Context, cursor string) (storage.Page, error) {
	p, err := l.generated.List(ctx, cursor)
	if cursor == "" {
		long := storage.Object{Key: "a" + strings.Repeat("é/", 1<<20) + "x.tif", Size: int64(len(l.template))}
		p.Objects = append([]storage.Object{long}, p.Objects...)
	}
	return p, err
}

// TestNameTooLong: that tile is skipped, shown by its first bytes; the
// others are read.
func TestNameTooLong(t *testing.T) {
	g := newGenerated(t, 10)
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: longName{g}, Location: "/generated", Backend: "file", Name: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	r := res.Report
	if r.Counts.Readable != 10 || len(r.Skipped) != 1 || len(r.Skipped[0].Path) > 300 || !strings.Contains(r.Skipped[0].Detail, "3145734 bytes") || !strings.HasPrefix(r.Skipped[0].Path, "aé/é/") || !utf8.ValidString(r.Skipped[0].Path) {
		t.Fatalf("counts %+v, skipped %.300v", r.Counts, r.Skipped)
	}
}

// junk lists, first, n objects the walk cannot use (names the storage
// refuses), last name first.
type junk struct {
	*generated
	n int
}

func (j junk) List(ctx context.Context, cursor string) (storage.Page, error) {
	p, err := j.generated.List(ctx, cursor)
	if cursor == "" {
		bad := make([]storage.Object, j.n)
		for i := range bad {
			bad[i] = storage.Object{Key: fmt.Sprintf("junk/%06d.txt", j.n-1-i), Err: fmt.Errorf("refused: %w", storage.ErrBadKey)}
		}
		p.Objects = append(bad, p.Objects...)
	}
	return p, err
}

// TestSkippedBounded: a listing naming more unusable objects than a
// report lists gives the first by path, and counts them all.
func TestSkippedBounded(t *testing.T) {
	defer indexer.SetMaxSkipped(100)()
	g := newGenerated(t, 5)
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: junk{g, 250}, Location: "/generated", Backend: "file", Name: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	r := res.Report
	if r.Counts.Readable != 5 || len(r.Skipped) != 100 || r.SkippedTotal != 250 {
		t.Fatalf("readable %d, %d skipped listed, %d counted", r.Counts.Readable, len(r.Skipped), r.SkippedTotal)
	}
	for i, sk := range r.Skipped {
		if want := fmt.Sprintf("junk/%06d.txt", i); sk.Path != want {
			t.Fatalf("skipped %d is %s, want %s", i, sk.Path, want)
		}
	}
}
