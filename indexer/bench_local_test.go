package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage/local"
)

const (
	localTiles   = 1000
	localFolders = 10
	// localMinSpeedup is the tiles/s ratio over gdaltindex below which
	// BenchmarkLocalVsGdaltindex fails: the goal, at least 4x on 2 cores.
	// Measured on 2 cores (GDAL 3.6.2): 7.0x to 10.6x, our side (about
	// 0.1 s) being the noisier one.
	localMinSpeedup = 4.0
)

// BenchmarkLocalVsGdaltindex indexes a local mixed delivery (1,000 tiles in
// 10 folders: JPEG 2000 with GMLJP2, tiled JPEG GeoTIFF, striped GeoTIFF),
// once with indexer.Scan on a local storage, at its default concurrency,
// then publishing its outputs, and once with `gdaltindex -f GeoJSON` over
// the same files. Both are timed by the wall clock, the files being in the
// page cache for both; gdaltindex's time includes starting its process.
// Run it with -benchtime 1x.
func BenchmarkLocalVsGdaltindex(b *testing.B) {
	gdaltindex := servertest.Binary(b, "gdaltindex", "/usr/bin/gdaltindex")
	root := b.TempDir()
	masters := writeMasters(b, filepath.Join(root, "masters"), benchPerKind)
	tiles := filepath.Join(root, "tiles")
	rels := layTiles(b, masters, tiles, localTiles, localFolders)
	var ours, theirs float64 // tiles/s

	b.Run("pcrs-indexer", func(b *testing.B) {
		for b.Loop() {
			out := b.TempDir()
			start := time.Now()
			st, err := local.New(tiles)
			if err != nil {
				b.Fatal(err)
			}
			res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: tiles, Backend: "file", Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			if err := indexer.Publish(out, res); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			st.Close()
			if res.Report.Counts.Readable != localTiles {
				b.Fatalf("%d readable tiles, want %d: %+v", res.Report.Counts.Readable, localTiles, problemsOf(b, res)[:min(3, res.Report.Counts.Problems)])
			}
			if n := countFeatures(b, filepath.Join(out, indexer.DallesFile)); n != localTiles {
				b.Fatalf("%s holds %d tiles, want %d", indexer.DallesFile, n, localTiles)
			}
			ours = localTiles / elapsed.Seconds()
		}
		b.ReportMetric(ours, "tiles/s")
		b.ReportMetric(0, "ns/op")
	})

	b.Run("gdaltindex", func(b *testing.B) {
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "index.geojson")
			cmd := exec.Command(gdaltindex, append([]string{"-f", "GeoJSON", out}, rels...)...)
			cmd.Dir = tiles
			start := time.Now()
			output, err := cmd.CombinedOutput()
			elapsed := time.Since(start)
			if err != nil {
				b.Fatalf("gdaltindex: %v\n%s", err, output)
			}
			if n := countFeatures(b, out); n != localTiles {
				b.Fatalf("gdaltindex indexed %d tiles, want %d:\n%s", n, localTiles, output)
			}
			theirs = localTiles / elapsed.Seconds()
		}
		b.ReportMetric(theirs, "tiles/s")
		b.ReportMetric(0, "ns/op")
	})

	if ours == 0 || theirs == 0 {
		return // a side failed, or was filtered out
	}
	ratio := ours / theirs
	fmt.Printf("local scan, %d tiles: pcrs-indexer %.0f tiles/s; gdaltindex %.0f tiles/s; ratio %.2f\n", localTiles, ours, theirs, ratio)
	if ratio < localMinSpeedup {
		b.Errorf("pcrs-indexer indexes %.2fx gdaltindex's tiles/s; it must stay above %.2fx", ratio, localMinSpeedup)
	}
}

// countFeatures counts the features of a GeoJSON file.
func countFeatures(b *testing.B, path string) int {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var fc struct {
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	return len(fc.Features)
}
