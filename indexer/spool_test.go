package indexer

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/quality"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// TestSpoolEntries: what a packed entry and the key arena give back is what
// was spooled, through the sort and a key spooled twice; the tiles the
// union rejects are named by their rank among the readable ones, problem
// tiles between them skipped.
func TestSpoolEntries(t *testing.T) {
	sp, err := newSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	long := strings.Repeat("d/", longKey) + "long.tif"
	// Spooled out of order, readers finishing when they do.
	spooled := []struct {
		key      string
		readable bool
	}{{"c.tif", true}, {"a.tif", false}, {long, true}, {"b.tif", true}, {"e.tif", false}, {"f.tif", true}, {"b.tif", true}}
	for i, s := range spooled {
		tile := &Tile{Object: storage.Object{Key: s.key, Size: int64(1000 + i)}}
		if s.readable {
			tile.Header = &raster.Header{MimeType: "image/tiff", Width: 200, Height: 200}
		} else {
			tile.Problem = &ProblemEntry{Reason: ReasonCorrupt, Detail: "broken"}
		}
		if err := sp.add(tile); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var buf []byte
	for i, e := range sp.entries {
		keys = append(keys, e.key)
		tile, err := sp.tile(i, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if tile.Object.Key != e.key || (tile.Header != nil) != (e.flags()&flagReadable != 0) {
			t.Errorf("entry %q (flags %b) read back as %q, header %v", e.key, e.flags(), tile.Object.Key, tile.Header != nil)
		}
	}
	if want := []string{"a.tif", "b.tif", "c.tif", long, "e.tif", "f.tif"}; !slices.Equal(keys, want) {
		t.Fatalf("entries %q, want %q", keys, want)
	}
	if tile, _ := sp.tile(1, &buf); tile.Object.Size != 1006 {
		t.Errorf("b.tif spooled twice reads back %d bytes, want the last verdict's 1006", tile.Object.Size)
	}
	// Readable in order: b, c, long, f. Reject the 2nd and the 4th.
	rejected := []footprint.Rejected{{Index: 1, Err: errors.New("x")}, {Index: 3, Err: errors.New("y")}}
	if got := sp.keysAt(flagReadable, rejected); !slices.Equal(got, []string{"c.tif", "f.tif"}) {
		t.Errorf("keysAt = %q, want c.tif and f.tif", got)
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
		e := entry{at: packEntry(c.off, c.n, c.flags)}
		if e.off() != c.off || e.n() != c.n || e.flags() != c.flags {
			t.Errorf("packed %d, %d, %b: read %d, %d, %b", c.off, c.n, c.flags, e.off(), e.n(), e.flags())
		}
		e.clear(flagReadable)
		if e.off() != c.off || e.n() != c.n || e.flags() != c.flags&^flagReadable {
			t.Errorf("clearing a flag of %d, %d, %b changed it to %d, %d, %b", c.off, c.n, c.flags, e.off(), e.n(), e.flags())
		}
	}
}

// TestAttrsShared: tiles with the same attributes share one copy; a
// delivery making every tile different gets its own values all the same,
// and the table stops growing at maxSharedAttrs.
func TestAttrsShared(t *testing.T) {
	var table attrsTable
	a := table.intern(quality.Attrs{EPSG: 2154, Width: 4000, Height: 4000, Resolution: 0.05, Format: "image/tiff"})
	if b := table.intern(quality.Attrs{EPSG: 2154, Width: 4000, Height: 4000, Resolution: 0.05, Format: "image/tiff"}); a != b {
		t.Error("two tiles with the same attributes got two copies")
	}
	for i := range 3 * maxSharedAttrs {
		want := quality.Attrs{EPSG: 2154, Width: int32(i), Resolution: math.NaN()}
		got := table.intern(want)
		if got.Width != want.Width || !math.IsNaN(got.Resolution) {
			t.Fatalf("tile %d got %+v", i, *got)
		}
	}
	if len(table) != maxSharedAttrs {
		t.Errorf("the table holds %d attributes, want at most %d", len(table), maxSharedAttrs)
	}
}

// TestReportKeepsNoChunk: a report outlives its scan (the service keeps
// the last one); its paths are copies, not views of the spool's 256 KiB
// chunks of keys, which would keep them all alive.
func TestReportKeepsNoChunk(t *testing.T) {
	sp, err := newSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if err := sp.add(&Tile{Object: storage.Object{Key: "casse.tif"}, Problem: &ProblemEntry{Reason: ReasonCorrupt}}); err != nil {
		t.Fatal(err)
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	r, _, err := buildReport("x", time.Time{}, time.Time{}, listing{}, sp, &storage.Counter{}, &Outline{})
	if err != nil || len(r.Problems) != 1 || r.Problems[0].Path != "casse.tif" {
		t.Fatalf("report %+v, %v", r.Problems, err)
	}
	if unsafe.StringData(r.Problems[0].Path) == unsafe.StringData(sp.entries[0].key) {
		t.Error("the report's path views the spool's chunk of keys")
	}
}
