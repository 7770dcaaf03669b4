package raster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// TestConcurrentInspectRace: thousands of copies of the same healthy tile
// inspected 64 at a time all get the same header and no problem: nothing
// one goroutine reads from GDAL is overwritten by another's call (the race
// once marked healthy striped GeoTIFFs "transfer cut short"). Run under
// -race.
func TestConcurrentInspectRace(t *testing.T) {
	const workers = 64
	dir := t.TempDir()
	kinds := map[string]struct {
		tile   tilegen.Tile
		copies int
		fast   bool // the Go reader answers; else GDAL reads every copy
	}{
		// 2,000 strips of one row, uncompressed: the offsets span blocks.
		"strips.tif": {tilegen.Tile{EPSG: 2154, Width: 1000, Height: 2000, Bands: 1, Creation: []string{"BLOCKYSIZE=1"}}, 3000, true},
		"jpeg.tif":   {tilegen.Tile{EPSG: 2154, Width: 2000, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}, 3000, true},
		// A CRS the Go readers leave to GDAL: GDAL's whole path, raced
		// (fewer copies: PROJ takes milliseconds per tile).
		"gdal.tif": {tilegen.Tile{EPSG: 32631, X: 500000, Y: 4800000, Width: 1000, Height: 2000, Bands: 1, Creation: []string{"BLOCKYSIZE=1"}}, 500, false},
	}
	for name, kind := range kinds {
		tile, copies := kind.tile, kind.copies
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := tile.Write(path); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := corePlainGDAL(t, path, false)
			if werr != nil {
				t.Fatal(werr)
			}
			src := &coreMemSource{files: map[string][]byte{}}
			for i := range copies {
				src.files[fmt.Sprintf("d%02d/%05d.tif", i%50, i)] = data
			}
			if fast := fastAnswer(t, src, File{Key: "d00/00000.tif", Size: int64(len(data))}); fast != kind.fast {
				t.Fatalf("Go reader answers = %v, want %v", fast, kind.fast)
			}
			keys := make(chan string)
			var mu sync.Mutex
			var failures []string
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for key := range keys {
						h, err := Inspect(context.Background(), src, File{Key: key, Size: int64(len(data))}, nil)
						if err != nil || !reflect.DeepEqual(h, want) {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("%s: %+v, %v", key, h, err))
							mu.Unlock()
						}
					}
				}()
			}
			for key := range src.files {
				keys <- key
			}
			close(keys)
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d of %d copies differ from plain GDAL's %+v; first: %s", len(failures), copies, want, failures[0])
			}
		})
	}
}
