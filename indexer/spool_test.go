package indexer

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/internal/extsort"
	"github.com/openpcrs/pcrs-indexer/quality"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// TestSpoolEntries: what a packed entry and the key arena give back is what
// was spooled, through the sort and a key spooled twice; the tiles the
// union rejects are named by their rank among the readable ones, problem
// tiles between them skipped.
func TestSpoolEntries(t *testing.T) {
	long := strings.Repeat("d/", 16<<10) + "long.tif"
	// Spooled out of order, readers finishing when they do.
	spooled := []struct {
		key      string
		readable bool
	}{{"c.tif", true}, {"a.tif", false}, {long, true}, {"b.tif", true}, {"e.tif", false}, {"f.tif", true}, {"b.tif", true}}
	var tiles []*Tile
	for i, s := range spooled {
		tile := &Tile{Object: storage.Object{Key: s.key, Size: int64(1000 + i)}}
		if s.readable {
			tile.Header = &raster.Header{MimeType: "image/tiff", Width: 200, Height: 200}
		} else {
			tile.Problem = &ProblemEntry{Reason: ReasonCorrupt, Detail: "broken"}
		}
		tiles = append(tiles, tile)
	}
	sp := spoolOf(t, tiles...)
	var keys []string
	var buf []byte
	var sizeOfB int64
	if err := sp.walk(func(key []byte, e entry, aside *ProblemEntry) error {
		keys = append(keys, string(key))
		tile, err := sp.tile(string(key), e, aside, &buf)
		if err != nil {
			return err
		}
		if tile.Object.Key != string(key) || (tile.Header != nil) != (e.flags()&flagReadable != 0) {
			t.Errorf("entry %q (flags %b) read back as %q, header %v", key, e.flags(), tile.Object.Key, tile.Header != nil)
		}
		if string(key) == "b.tif" {
			sizeOfB = tile.Object.Size
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.tif", "b.tif", "c.tif", long, "e.tif", "f.tif"}; !slices.Equal(keys, want) || sp.len() != len(want) {
		t.Fatalf("entries %q (len %d), want %q", keys, sp.len(), want)
	}
	if sizeOfB != 1006 {
		t.Errorf("b.tif spooled twice reads back %d bytes, want the last verdict's 1006", sizeOfB)
	}
	// Readable in order: b, c, long, f. Reject the 4th and the 2nd (the
	// union says them in no order), the 2nd twice: the last stands.
	var named []string
	n, err := sp.setAside(rejectedOf(t, map[int]string{3: "y"}, map[int]string{1: "x0"}, map[int]string{1: "x"}), func(key, detail []byte) {
		named = append(named, string(key)+":"+string(detail))
	})
	if err != nil || n != 2 || !slices.Equal(named, []string{"c.tif:x", "f.tif:y"}) {
		t.Errorf("set aside %d: %q, %v, want c.tif for x and f.tif for y", n, named, err)
	}
	var readable, problems []string
	if err := sp.each(0, func(tile *Tile) error {
		if tile.Header != nil {
			readable = append(readable, tile.Object.Key)
		} else {
			problems = append(problems, tile.Object.Key+":"+tile.Problem.Detail)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(readable, []string{"b.tif", long}) || !slices.Equal(problems, []string{"a.tif:broken", "c.tif:x", "e.tif:broken", "f.tif:y"}) {
		t.Errorf("after the union: readable %.40q, problems %q", readable, problems)
	}
	// has, asked in key order as Prune asks, then out of order.
	for _, c := range []struct {
		key  string
		want bool
	}{{"", false}, {"a.tif", true}, {"aa.tif", false}, {"b.tif", true}, {"f.tif", true}, {"g.tif", false}, {"c.tif", true}, {"d.tif", false}, {long, true}} {
		if got := sp.has(c.key); got != c.want {
			t.Errorf("has(%.20q) = %v, want %v", c.key, got, c.want)
		}
	}
}

// TestSpoolManyRuns: many more tiles than one run of the index holds
// (here 1 KiB, some 40 tiles), spooled in reverse order and one of them
// twice, come back in key order, each with its last record.
func TestSpoolManyRuns(t *testing.T) {
	sp := openSpool(t)
	sp.sorter = extsort.New(indexOrder(1 << 10))
	const n = 5000
	if err := sp.add(&Tile{Object: storage.Object{Key: "dalles/0000007.tif", Size: -1}, Problem: &ProblemEntry{Reason: ReasonCorrupt}}); err != nil {
		t.Fatal(err)
	}
	for i := n - 1; i >= 0; i-- {
		tile := &Tile{Object: storage.Object{Key: fmt.Sprintf("dalles/%07d.tif", i), Size: int64(i)}, Problem: &ProblemEntry{Reason: ReasonCorrupt}}
		if err := sp.add(tile); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	i := 0
	if err := sp.each(0, func(tile *Tile) error {
		if want := fmt.Sprintf("dalles/%07d.tif", i); tile.Object.Key != want || tile.Object.Size != int64(i) {
			return fmt.Errorf("tile %d is %s of %d bytes, want %s", i, tile.Object.Key, tile.Object.Size, want)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != n || sp.len() != n {
		t.Fatalf("%d tiles read back (len %d), want %d", i, sp.len(), n)
	}
}

// TestEntryPacking: an entry holds the largest offset, length and flags
// it allows without one spilling into another.
func TestEntryPacking(t *testing.T) {
	for _, c := range []struct {
		off   int64
		n     int
		flags uint8
	}{{0, 0, 0}, {maxSpool - 1, maxRecord, flagReadable | flagReused | flagTransient | flagPlaced}, {12345, 678, flagPlaced}, {maxSpool - 1, 0, 0}, {0, maxRecord, 0}} {
		e := packEntry(c.off, c.n, c.flags)
		if e.off() != c.off || e.n() != c.n || e.flags() != c.flags {
			t.Errorf("packed %d, %d, %b: read %d, %d, %b", c.off, c.n, c.flags, e.off(), e.n(), e.flags())
		}
		e = e.without(flagReadable)
		if e.off() != c.off || e.n() != c.n || e.flags() != c.flags&^flagReadable {
			t.Errorf("clearing a flag of %d, %d, %b changed it to %d, %d, %b", c.off, c.n, c.flags, e.off(), e.n(), e.flags())
		}
	}
}

// TestSpoolLimit: a verdict that would take the spool past what an entry
// addresses is refused, naming the tile, and the spool stays failed.
func TestSpoolLimit(t *testing.T) {
	sp := openSpool(t)
	sp.end = maxSpool - 10
	err := sp.add(&Tile{Object: storage.Object{Key: "dalles/de-trop.tif"}, Problem: &ProblemEntry{Reason: ReasonCorrupt}})
	if err == nil || !strings.Contains(err.Error(), "dalles/de-trop.tif") || !strings.Contains(err.Error(), "64 GiB") {
		t.Fatalf("a verdict past %d bytes: %v", int64(maxSpool), err)
	}
	if err := sp.finish(); err == nil {
		t.Error("the spool finished after refusing a verdict")
	}
}

// TestSetAsideUnderAnyName: a tile the union sets aside reads back as its
// problem, also when its name is not UTF-8 (JSON rewrites such a name in
// the record, so the record's copy of the key cannot find it).
func TestSetAsideUnderAnyName(t *testing.T) {
	key := "dalles/bad\xff.tif"
	sp := spoolOf(t, &Tile{Object: storage.Object{Key: key}, Header: &raster.Header{MimeType: "image/tiff", Width: 200, Height: 200}})
	if n, err := sp.setAside(rejectedOf(t, map[int]string{0: "outside its CRS"}), func(_, _ []byte) {}); n != 1 || err != nil {
		t.Fatalf("set aside %d: %v", n, err)
	}
	var got []*Tile
	if err := sp.each(0, func(tile *Tile) error {
		got = append(got, tile)
		return nil
	}); err != nil || len(got) != 1 {
		t.Fatalf("%d tiles read back: %v", len(got), err)
	}
	if n, err := sp.count(flagReadable); n != 0 || err != nil {
		t.Errorf("%d readable after the union set the only tile aside (%v)", n, err)
	}
	if tile := got[0]; tile.Header != nil || tile.Problem == nil || tile.Problem.Reason != ReasonMisplaced {
		t.Errorf("%q set aside reads back with header %v, problem %+v", key, tile.Header != nil, tile.Problem)
	}
}

// TestQualityFromSpool: the check reads the readable tiles back from the
// spool, by path, and says what is wrong with them.
func TestQualityFromSpool(t *testing.T) {
	var tiles []*Tile
	for _, key := range []string{"b/t.tif", "a/t.tif"} {
		h := &raster.Header{MimeType: "image/tiff", EPSG: 2154, Width: 200, Height: 200, GeoTransform: [6]float64{700000, 1, 0, 6600200, 0, -1}}
		tiles = append(tiles, &Tile{Object: storage.Object{Key: key, Size: 1000}, Header: h})
	}
	tiles = append(tiles, &Tile{Object: storage.Object{Key: "c/t.tif"}, Problem: &ProblemEntry{Reason: ReasonCorrupt}})
	sp := spoolOf(t, tiles...)
	warnings, byKind, err := checkQuality(sp, nil, footprint.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].Kind != quality.Duplicate || warnings[0].Path != "b/t.tif" || warnings[0].Other != "a/t.tif" ||
		byKind[string(quality.Duplicate)] != 1 || warnings[0].Geometry == nil {
		t.Fatalf("warnings %+v, counts %v", warnings, byKind)
	}
}

// rejectedOf is the union's rejections, given in batches in that order,
// sorted as buildOutline sorts them.
func rejectedOf(t *testing.T, batches ...map[int]string) *extsort.Sorted {
	t.Helper()
	s := extsort.New(rejectedOrder)
	for _, b := range batches {
		for i, detail := range b {
			if err := s.Add(rejectedRecord(nil, i, detail)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sorted, err := s.Sort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sorted.Close() })
	return sorted
}

// openSpool is an empty spool closed with the test.
func openSpool(t *testing.T) *spool {
	t.Helper()
	sp, err := newSpool()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.close() })
	return sp
}

// spoolOf is a finished spool of tiles, spooled in their order.
func spoolOf(t *testing.T, tiles ...*Tile) *spool {
	t.Helper()
	sp := openSpool(t)
	for _, tile := range tiles {
		if err := sp.add(tile); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestQualityDeclineLogged: a delivery the streamed check leaves to the
// in-memory one (more than 16 tiles over 64 cells of the overlap search
// each) gets its warnings, and the log says why memory grew.
func TestQualityDeclineLogged(t *testing.T) {
	var tiles []*Tile
	at := func(key string, x, y float64, px int) *Tile {
		h := &raster.Header{MimeType: "image/tiff", EPSG: 2154, Width: px, Height: px, GeoTransform: [6]float64{x, 1, 0, y + float64(px), 0, -1}}
		return &Tile{Object: storage.Object{Key: key, Size: 1000}, Header: h}
	}
	for c := range 6 {
		for r := range 6 {
			tiles = append(tiles, at(fmt.Sprintf("dalles/%d_%d.tif", c, r), 700000+200*float64(c), 6600000+200*float64(r), 200))
		}
	}
	for k := range 17 {
		tiles = append(tiles, at(fmt.Sprintf("mosaique%02d.tif", k), 700000, 6600000, 4000+k))
	}
	sp := spoolOf(t, tiles...)
	var logged bytes.Buffer
	warnings, byKind, err := checkQuality(sp, nil, footprint.Options{}, slog.New(slog.NewJSONHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if byKind[string(quality.Overlap)] != 17*36+17*16/2 || len(warnings) == 0 {
		t.Errorf("warnings %v", byKind)
	}
	if !strings.Contains(logged.String(), `"msg":"warnings checked in memory"`) || !strings.Contains(logged.String(), "more than 16 tiles over 64 cells") {
		t.Errorf("log %s", logged.String())
	}
}
