package indexer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/local"
)

// publishOnce scans dir and publishes into a new output folder.
func publishOnce(t *testing.T, dir string) string {
	t.Helper()
	res, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := indexer.Publish(out, res); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for _, name := range []string{indexer.DallesFile, indexer.LivrablesFile, indexer.ReportFile} {
		if before[name] == "" || after[name] != before[name] {
			t.Errorf("%s was replaced", name)
		}
	}
}

// An emptied storage (an unmounted disk, a bucket emptied by mistake) must
// not replace the outputs by nothing.
func TestEmptyListingKeepsOutputs(t *testing.T) {
	dir := buildStorage(t)
	out := publishOnce(t, dir)
	before := snapshot(t, out)

	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "LISEZMOI.txt"), []byte("maintenance"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := scan(t, empty, nil, nil)
	if !errors.Is(err, indexer.ErrNoTiles) {
		t.Fatalf("err = %v, want ErrNoTiles", err)
	}
	if res == nil || res.Report.Counts.Objects != 1 || res.Report.Counts.Tiles != 0 {
		t.Fatalf("want a report of 1 object and no tile, got %+v", res)
	}
	if !strings.Contains(err.Error(), "1 objects") {
		t.Errorf("error %q does not say what was listed", err)
	}
	assertUnchanged(t, before, snapshot(t, out))
}

// A scan finding fewer than half the readable tiles of the outputs it
// would replace keeps them, unless the delivery really shrank.
func TestShrinkKeepsOutputs(t *testing.T) {
	dir := buildStorage(t)
	out := publishOnce(t, dir)
	before := snapshot(t, out)
	var was struct{ Counts indexer.Counts }
	readJSON(t, filepath.Join(out, indexer.ReportFile), &was)

	// Keep 3 of the readable tiles: well under half.
	kept := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !indexer.IsTile(p) || fi.Size() == 0 {
			return err
		}
		if strings.Contains(p, "dalles/") && !strings.Contains(p, "sans-") && !strings.Contains(p, "coupee") && !strings.Contains(p, "page") && kept < 3 {
			kept++
			return nil
		}
		return os.Remove(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Report.Counts.Readable; n != 3 || n*2 >= was.Counts.Readable {
		t.Fatalf("fixture: %d readable now, %d before", n, was.Counts.Readable)
	}
	err = indexer.Publish(out, res)
	if !errors.Is(err, indexer.ErrShrunk) {
		t.Fatalf("err = %v, want ErrShrunk", err)
	}
	after := snapshot(t, out)
	assertUnchanged(t, before, after)
	if _, ok := after[indexer.FailedReportFile]; !ok {
		t.Error("the shrunken scan's report was not kept beside the outputs")
	}

	st, _ := local.New(dir)
	res, err = indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "aude", AllowShrink: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := indexer.Publish(out, res); err != nil {
		t.Fatalf("with AllowShrink: %v", err)
	}
	var now struct{ Counts indexer.Counts }
	readJSON(t, filepath.Join(out, indexer.ReportFile), &now)
	if now.Counts.Readable != 3 {
		t.Errorf("published %d readable tiles, want 3", now.Counts.Readable)
	}
}

// panicky panics when one tile is read: that tile is set aside, the scan
// goes on.
type panicky struct {
	storage.Storage
	key string
}

func (p panicky) ReadAt(ctx context.Context, key string, b []byte, off int64) (int, error) {
	if key == p.key {
		panic("boom in " + key)
	}
	return p.Storage.ReadAt(ctx, key, b, off)
}

func TestPanicIsOneTilesProblem(t *testing.T) {
	dir := buildStorage(t)
	good, err := scan(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := local.New(dir)
	const victim = "dalles/0_0.jp2"
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ns := store.Namespace(dir)
	res, err := indexer.Scan(context.Background(), indexer.Config{Storage: panicky{st, victim}, Location: dir, Name: "aude", Concurrency: 4, State: ns})
	if err != nil {
		t.Fatalf("one panicking tile failed the scan: %v", err)
	}
	if res.Report.Counts.Readable != good.Report.Counts.Readable-1 {
		t.Errorf("%d readable, want %d", res.Report.Counts.Readable, good.Report.Counts.Readable-1)
	}
	var found bool
	for _, p := range problemsOf(t, res) {
		if p.Path == victim {
			found = true
			if p.Reason != indexer.ReasonCorrupt || !strings.Contains(p.Detail, "boom in "+victim) {
				t.Errorf("problem %+v, want corrupt naming the internal error", p)
			}
		}
	}
	if !found {
		t.Errorf("%s is not among the problems", victim)
	}
	// The verdict of a crash is not remembered: once fixed, the tile is
	// read again and the others are reused.
	again, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: dir, Name: "aude", Concurrency: 4, State: ns})
	if err != nil {
		t.Fatal(err)
	}
	if again.Report.Counts.Readable != good.Report.Counts.Readable || again.Report.Counts.Reused != good.Report.Counts.Readable-1 {
		t.Errorf("after the fix: %d readable, %d reused; want %d and %d", again.Report.Counts.Readable, again.Report.Counts.Reused, good.Report.Counts.Readable, good.Report.Counts.Readable-1)
	}
}

func TestCheckOut(t *testing.T) {
	if err := indexer.CheckOut(filepath.Join(t.TempDir(), "a", "b")); err != nil {
		t.Errorf("a creatable folder: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := indexer.CheckOut(filepath.Join(file, "out")); err == nil {
		t.Error("a folder below a file was accepted")
	}
}
