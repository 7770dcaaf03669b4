package raster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// FuzzTIFF feeds arbitrary bytes, as an object, to scanTIFF and header():
// no panic, a *Problem or a result, and never more bytes fetched than the
// object holds (each block once: the caps bound the work, the object's
// size bounds the reads).
func FuzzTIFF(f *testing.F) {
	dir := f.TempDir()
	for i, tile := range []struct {
		t        tilegen.Tile
		switches []string
	}{
		{tilegen.Tile{EPSG: 2154, Width: 16}, []string{"-co", "BLOCKYSIZE=4"}},
		{tilegen.Tile{EPSG: 3950, Width: 32}, []string{"-co", "TILED=YES", "-co", "BLOCKXSIZE=16", "-co", "BLOCKYSIZE=16", "-co", "BIGTIFF=YES", "-co", "ENDIANNESS=BIG"}},
		{tilegen.Tile{EPSG: 2154, Width: 16, Rotation: 0.01}, []string{"-mo", "AREA_OR_POINT=Point", "-co", "INTERLEAVE=BAND"}},
	} {
		path := translate(f, dir, "seed"+string(rune('a'+i))+".tif", tile.t, tile.switches...)
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(makeTIFF(false, []tiffTag{longTag(tagImageWidth, 640000), longTag(tagImageLength, 640000), shortTag(tagTileWidth, 16), shortTag(tagTileLength, 16)}, 0))
	f.Add([]byte("MM\x00+\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		info, src, err := scanBytes(data)
		if src.fetched > int64(len(data)) {
			t.Fatalf("fetched %d bytes of a %d-byte object", src.fetched, len(data))
		}
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Reason != ErrCorrupt {
				t.Fatalf("not a corrupt *Problem: %v", err)
			}
			return
		}
		if p := info.incompleteProblem(); p != nil && p.Reason != ErrCorrupt && p.Reason != ErrEmpty {
			t.Fatalf("incomplete with reason %v", p.Reason)
		}
		if h, ok := info.header(); ok {
			if h.Width <= 0 || h.Height <= 0 || len(h.Bands) == 0 || !pcrsCRS(h.EPSG) {
				t.Fatalf("header() answers %+v", h)
			}
		}
	})
}

// TestFuzzTIFFCorpusKept: the seed corpus the fuzzer found is in the tree.
func TestFuzzTIFFCorpusKept(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzTIFF", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no FuzzTIFF corpus in testdata/fuzz/FuzzTIFF: %v", err)
	}
}
