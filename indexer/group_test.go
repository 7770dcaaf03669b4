package indexer

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// collect runs pages through a grouper and returns, per tile handed on,
// its siblings' keys, and the tiles handed on after each page.
func collect(t *testing.T, ordered bool, pages []storage.Listed) (map[string][]string, [][]string, error) {
	t.Helper()
	siblings := map[string][]string{}
	var handed []string
	g := newGrouper(ordered, func(tile Tile) error {
		if _, dup := siblings[tile.Object.Key]; dup {
			t.Errorf("%s handed on twice", tile.Object.Key)
		}
		var s []string
		for _, o := range tile.Siblings {
			s = append(s, o.Key)
		}
		slices.Sort(s)
		siblings[tile.Object.Key] = s
		handed = append(handed, tile.Object.Key)
		return nil
	}, func(storage.Object) {})
	var after [][]string
	for _, p := range pages {
		if err := g.page(p); err != nil {
			return siblings, after, err
		}
		after = append(after, slices.Clone(handed))
	}
	return siblings, after, g.finish()
}

func objects(keys ...string) []storage.Object {
	out := make([]storage.Object, len(keys))
	for i, k := range keys {
		out[i] = storage.Object{Key: k, Size: 10}
	}
	return out
}

// An ordered listing hands a tile on as soon as the listing has gone past
// its stem, with a sidecar listed on the next page still attached, and a
// folder whose name has a dot does not split a stem.
func TestGrouperOrdered(t *testing.T) {
	pages := []storage.Listed{
		{Objects: objects("d/a.tfw", "d/a.tif"), Done: false},
		{Objects: objects("d/a.tif.aux.xml", "d/a.x/b.jp2", "d/a.y.prj", "d/b.jp2"), Done: false},
		{Objects: objects("d/c.jp2", "e/LISEZMOI.txt"), Done: true},
	}
	sib, after, err := collect(t, true, pages)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"d/a.tif":     {"d/a.tfw", "d/a.tif.aux.xml", "d/a.y.prj"},
		"d/a.x/b.jp2": nil,
		"d/b.jp2":     nil,
		"d/c.jp2":     nil,
	}
	for k, w := range want {
		if got, ok := sib[k]; !ok || !slices.Equal(got, w) {
			t.Errorf("%s: siblings %v (handed on: %v), want %v", k, got, ok, w)
		}
	}
	// d/a.tif waits for its .aux.xml on page 2; d/a.x/b.jp2 and d/a.tif
	// are complete once d/b.jp2 is listed, before the listing ends.
	if len(after[0]) != 0 {
		t.Errorf("after page 1, handed on %v: d/a.tif's sidecars may follow", after[0])
	}
	if !slices.Contains(after[1], "d/a.tif") || !slices.Contains(after[1], "d/a.x/b.jp2") {
		t.Errorf("after page 2, handed on %v: reading must not wait for the listing's end", after[1])
	}
}

// A storage that promised order and breaks it fails the scan: a tile may
// have been read without a sidecar listed later.
func TestGrouperOrderBroken(t *testing.T) {
	pages := []storage.Listed{
		{Objects: objects("b.tif"), Done: false},
		{Objects: objects("a.tif.aux.xml"), Done: true},
	}
	_, _, err := collect(t, true, pages)
	if !errors.Is(err, ErrUnordered) || !strings.Contains(err.Error(), "a.tif.aux.xml") {
		t.Fatalf("error %v, want ErrUnordered naming the key", err)
	}
}

// An unordered listing hands a folder's tiles on when that folder's
// listing is done, whatever the order of its pages, and other folders
// do not wait for it.
func TestGrouperUnordered(t *testing.T) {
	pages := []storage.Listed{
		{Chain: "d/", Objects: objects("d/a.tif", "d/b.jp2"), Done: false},
		{Chain: "e/", Objects: objects("e/c.jp2"), Done: true},
		{Chain: "d/", Objects: objects("d/a.tfw", "d/b.j2w", "d/b.jp2.aux.xml"), Done: true},
	}
	sib, after, err := collect(t, false, pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(after[0]) != 0 || !slices.Equal(after[1], []string{"e/c.jp2"}) {
		t.Errorf("handed on %v then %v: d/ must wait for its last page, e/ must not", after[0], after[1])
	}
	if !slices.Equal(sib["d/a.tif"], []string{"d/a.tfw"}) || !slices.Equal(sib["d/b.jp2"], []string{"d/b.j2w", "d/b.jp2.aux.xml"}) {
		t.Errorf("siblings %v", sib)
	}
}
