package quality

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// million is a 1000 x 1000 delivery with a few planted defects: two
// missing cells, a shifted tile (off_grid and an overlap), a blank tile,
// a copy and a renamed tile.
func million() ([]Tile, map[Kind]int) {
	d := metresLL
	tiles := d.grid(1000, 1000, map[[2]int]bool{{500, 500}: true, {10, 10}: true})
	tiles[1234].Box[0] += 50
	tiles[1234].Box[2] += 50
	tiles[99_999].Size = 10_000
	dup := tiles[555_555]
	dup.Path = strings.Replace(dup.Path, "dalles/", "doublons/", 1)
	tiles = append(tiles, dup)
	tiles[777_777].Path = strings.Replace(tiles[777_778].Path, "dalles/", "dalles/lot2/", 1)
	return tiles, map[Kind]int{OffGrid: 1, Overlap: 1, Duplicate: 1, NameMismatch: 1, SizeOutlier: 1, Missing: 2}
}

// BenchmarkCheck1M checks 1,000,000 tiles, in the order a storage lists
// them (by path, here also by place) and shuffled (every pass then misses
// the cache). Run with -cpu 1: a check must stay under 2 s on one core.
func BenchmarkCheck1M(b *testing.B) {
	tiles, want := million()
	shuffled := slices.Clone(tiles)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, c := range []struct {
		name  string
		tiles []Tile
	}{{"listed", tiles}, {"shuffled", shuffled}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := Check(c.tiles, Options{})
				for _, k := range Kinds {
					if res.ByKind[k] != want[k] {
						b.Fatalf("warnings %v, want %v", res.ByKind, want)
					}
				}
			}
			perCheck := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(perCheck, "s/check")
			if perCheck > 2 {
				b.Errorf("checking 1,000,000 tiles took %.2f s, over the 2 s a scan may spend on it", perCheck)
			}
		})
	}
}

// BenchmarkCheckStream1M is BenchmarkCheck1M's listed delivery through
// CheckStream, which keeps the tiles on disk between its passes.
func BenchmarkCheckStream1M(b *testing.B) {
	tiles, want := million()
	tiles = byPath(tiles)
	b.ReportAllocs()
	for b.Loop() {
		res, declined, err := CheckStream(listed(tiles), Options{})
		if err != nil || declined != nil {
			b.Fatalf("declined %v, %v", declined, err)
		}
		for _, k := range Kinds {
			if res.ByKind[k] != want[k] {
				b.Fatalf("warnings %v, want %v", res.ByKind, want)
			}
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/check")
}
