package indexer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage/local"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// openState opens a state file for the test, its namespace for dir.
func openState(t *testing.T, dir string) *state.Namespace {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store.Namespace(dir)
}

// scanWithState scans the local folder dir keeping its records in ns.
func scanWithState(t *testing.T, dir string, ns *state.Namespace) *indexer.Result {
	t.Helper()
	st, _ := local.New(dir)
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "aude", State: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return res
}

// TestIncrementalRescan: a rescan reads only new or changed objects,
// forgets deleted ones, and reports what it reused.
func TestIncrementalRescan(t *testing.T) {
	dir := buildStorage(t)
	ns := openState(t, dir)
	scan := func() *indexer.Result { return scanWithState(t, dir, ns) }
	first := scan()
	if first.Report.Counts.Reused != 0 || first.Report.IO.Requests != 19 {
		t.Fatalf("first scan: reused %d, %d requests", first.Report.Counts.Reused, first.Report.IO.Requests)
	}

	again := scan()
	if again.Report.Counts.Reused != 12 || again.Report.IO.Requests != 3 {
		t.Errorf("unchanged rescan: reused %d (want 12), %d requests (want the 3 listings only)", again.Report.Counts.Reused, again.Report.IO.Requests)
	}
	if again.Report.Counts != (indexer.Counts{Objects: 18, Tiles: 17, Readable: 12, Reused: 12, Problems: 5}) || len(problemsOf(t, again)) != 5 {
		t.Errorf("unchanged rescan counts %+v, problems %d", again.Report.Counts, len(problemsOf(t, again)))
	}

	// One tile rewritten (new size and time), one deleted, one added.
	changed := filepath.Join(dir, "dalles/0_0.jp2")
	if err := (tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: x0, Y: y0, Creation: []string{"QUALITY=60"}}).Write(changed); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(changed, future, future)
	if err := os.Remove(filepath.Join(dir, "dalles/2_0.jp2")); err != nil {
		t.Fatal(err)
	}
	if err := (tilegen.Tile{EPSG: 2154, X: x0 + 4000, Y: y0}).Write(filepath.Join(dir, "ilot/nouvelle.tif")); err != nil {
		t.Fatal(err)
	}
	third := scan()
	if third.Report.Counts.Readable != 12 || third.Report.Counts.Reused != 10 || third.Report.IO.Requests != 3+2 {
		t.Errorf("after changes: readable %d (want 12), reused %d (want 10), %d requests (want 3 listings + 2 reads)",
			third.Report.Counts.Readable, third.Report.Counts.Reused, third.Report.IO.Requests)
	}
	var gone map[string]any
	if ok, _ := ns.Get("dalles/2_0.jp2", &gone); ok {
		t.Error("the deleted tile is still remembered")
	}
}

// TestProblemKeepsItsPlace: a tile that turns unreadable stays on the map
// where its last readable header put it, in the scan that finds it broken
// and in the incremental rescans that recall that verdict; so does a
// tile cut short, placed by its own header, when recalled.
func TestProblemKeepsItsPlace(t *testing.T) {
	dir := buildStorage(t)
	ns := openState(t, dir)
	scan := func() *indexer.Result { return scanWithState(t, dir, ns) }
	placed := func(res *indexer.Result, path string) string {
		t.Helper()
		for _, p := range problemsOf(t, res) {
			if p.Path == path {
				if p.Geometry == nil {
					t.Fatalf("%s: problem %q not placed", path, p.Reason)
				}
				b, _ := json.Marshal(p.Geometry)
				return string(b)
			}
		}
		t.Fatalf("%s: no problem", path)
		return ""
	}
	const broken, cut = "dalles/3_0.TIF", "dalles/coupee.tif"
	first := scan()
	var where footprint.Tile
	_ = first.EachTile(func(tl *indexer.Tile) error {
		if tl.Object.Key == broken {
			where = tl.Polygon
		}
		return nil
	})
	var ps footprint.Projectors
	defer ps.Close()
	poly, err := ps.TilePolygon(where, footprint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(struct {
		Type        string      `json:"type"`
		Coordinates orb.Polygon `json:"coordinates"`
	}{"Polygon", poly})
	cutPlace := placed(first, cut)

	// The healthy tile is replaced by an error page: no header to read.
	if err := tilegen.WriteFile(filepath.Join(dir, broken), []byte(tilegen.HTMLErrorPage)); err != nil {
		t.Fatal(err)
	}
	second := scan()
	if got := placed(second, broken); got != string(want) {
		t.Errorf("the broken tile is placed at %s, want where it was read: %s", got, want)
	}
	third := scan()
	_ = third.EachTile(func(tl *indexer.Tile) error {
		if (tl.Object.Key == broken || tl.Object.Key == cut) && !tl.Reused {
			t.Errorf("%s was read again, not recalled", tl.Object.Key)
		}
		return nil
	})
	if got := placed(third, broken); got != string(want) {
		t.Errorf("recalled, the broken tile is placed at %s, want %s", got, want)
	}
	if got := placed(third, cut); got != cutPlace {
		t.Errorf("recalled, the tile cut short is placed at %s, want %s", got, cutPlace)
	}
}
