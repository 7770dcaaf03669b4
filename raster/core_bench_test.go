package raster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// benchKinds are the tile kinds PCRS deliveries hold.
var benchKinds = []struct {
	name string
	key  string
	tile tilegen.Tile
}{
	{"jp2-gmljp2", "t.jp2", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Creation: []string{"QUALITY=30"}}},
	{"gtiff-jpeg-tiled-256", "jpeg.tif", tilegen.Tile{EPSG: 2154, Width: 2000, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"}}},
	{"gtiff-raw-2000-strips", "strips.tif", tilegen.Tile{EPSG: 2154, Width: 1000, Height: 2000, Creation: []string{"BLOCKYSIZE=1"}}},
	{"bigtiff-deflate-tiled", "big.tif", tilegen.Tile{EPSG: 3946, X: 1700000, Y: 5200200, Width: 2000, Creation: []string{"BIGTIFF=YES", "COMPRESS=DEFLATE", "TILED=YES"}}},
}

// benchFixtures writes every kind in dir and returns its bytes by key.
func benchFixtures(b *testing.B, dir string) map[string][]byte {
	b.Helper()
	files := map[string][]byte{}
	for _, k := range benchKinds {
		path := filepath.Join(dir, k.key)
		if err := k.tile.Write(path); err != nil {
			b.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		files[k.key] = data
	}
	return files
}

// benchOurs inspects the tile served from memory, as a storage would.
func benchOurs(src Source, obj File) func(b *testing.B) {
	return func(b *testing.B) {
		for range b.N {
			if _, err := Inspect(context.Background(), src, obj, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchGDAL opens the same tile from disk with plain GDAL and reads the
// same header.
func benchGDAL(path string) func(b *testing.B) {
	return func(b *testing.B) {
		for range b.N {
			if err := plainOpen(path); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func plainOpen(path string) error {
	if err := register(); err != nil {
		return err
	}
	ds, err := godal.Open(path)
	if err != nil {
		return err
	}
	defer ds.Close()
	if _, p := readHeader(ds); p != nil {
		return p
	}
	return nil
}

func BenchmarkInspect(b *testing.B) {
	dir := b.TempDir()
	files := benchFixtures(b, dir)
	src := &coreMemSource{files: files}
	for _, k := range benchKinds {
		obj := File{Key: k.key, Size: int64(len(files[k.key]))}
		b.Run(k.name+"/ours", benchOurs(src, obj))
		b.Run(k.name+"/gdal", benchGDAL(filepath.Join(dir, k.key)))
	}
}

// BenchmarkInspectVsGDAL times, per kind, our Inspect and plain GDAL's
// open of the same file, interleaved in the same run, and reports both and
// their ratio (testing.Benchmark cannot run inside a benchmark: it waits
// for the lock the running one holds). The goal is under 0.3 ms per tile
// for every kind.
func BenchmarkInspectVsGDAL(b *testing.B) {
	dir := b.TempDir()
	files := benchFixtures(b, dir)
	src := &coreMemSource{files: files}
	for _, k := range benchKinds {
		obj := File{Key: k.key, Size: int64(len(files[k.key]))}
		path := filepath.Join(dir, k.key)
		b.Run(k.name, func(b *testing.B) {
			var ours, plain time.Duration
			for range b.N {
				start := time.Now()
				_, err := Inspect(context.Background(), src, obj, nil)
				mid := time.Now()
				if perr := plainOpen(path); err != nil || perr != nil {
					b.Fatal(err, perr)
				}
				ours, plain = ours+mid.Sub(start), plain+time.Since(mid)
			}
			o, g := float64(ours.Microseconds())/float64(b.N), float64(plain.Microseconds())/float64(b.N)
			b.ReportMetric(o, "ours-µs/tile")
			b.ReportMetric(g, "gdal-µs/tile")
			b.ReportMetric(o/g, "ratio")
			if finalRound(b, ours+plain) {
				fmt.Printf("inspect %s: ours %.1f µs/tile, plain GDAL %.1f µs/tile, ratio %.3f\n", k.name, o, g, o/g)
			}
		})
	}
}

// finalRound says whether this run of a benchmark is the one the testing
// package reports: it stops at -benchtime, a duration or a count (Nx).
func finalRound(b *testing.B, elapsed time.Duration) bool {
	bt := "1s"
	if f := flag.Lookup("test.benchtime"); f != nil {
		bt = f.Value.String()
	}
	if n, ok := strings.CutSuffix(bt, "x"); ok {
		return strconv.Itoa(b.N) == n
	}
	d, err := time.ParseDuration(bt)
	return err != nil || elapsed >= d
}
