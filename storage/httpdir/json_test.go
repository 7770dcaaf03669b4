package httpdir

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// jsonPage is an nginx JSON listing of n files.
func jsonPage(n int) []byte {
	var b strings.Builder
	b.WriteString("[\n")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{ "name":"t%06d.tif", "type":"file", "mtime":"Tue, 02 Jan 2024 03:04:05 GMT", "size":1048576 }`, i)
	}
	b.WriteString("\n]\n")
	return []byte(b.String())
}

// TestJSONItemsCapped: a JSON listing of more items than the cap fails as
// an HTML one does, after decoding no more than the cap, and in memory
// that does not grow with the items past it.
func TestJSONItemsCapped(t *testing.T) {
	base, _ := url.Parse("http://h/tiles/")
	const limit = 50
	decoded := 0
	entries, err := parseJSONItems(base, jsonPage(limit), limit, &decoded)
	if err != nil || len(entries) != limit || decoded != limit {
		t.Fatalf("%d items: %d entries after decoding %d, %v", limit, len(entries), decoded, err)
	}
	for _, n := range []int{limit + 1, 100 * limit} {
		decoded = 0
		entries, err = parseJSONItems(base, jsonPage(n), limit, &decoded)
		if !errors.Is(err, storage.ErrTooLarge) || entries != nil {
			t.Errorf("%d items: %d entries, %v; want storage.ErrTooLarge", n, len(entries), err)
		}
		if decoded > limit+1 {
			t.Errorf("%d items: %d decoded before failing, want at most %d", n, decoded, limit+1)
		}
	}
	// The error is the HTML one.
	html := strings.Repeat(`<a href="x.tif">x</a>`, maxLinks+1)
	if _, _, herr := parseHTML(base, html); herr == nil || herr.Error() != err.Error() {
		t.Errorf("HTML: %v, JSON: %v; want the same error", herr, err)
	}
	allocs := func(page []byte) float64 {
		return testing.AllocsPerRun(5, func() { parseJSONItems(base, page, limit, nil) })
	}
	short, long := jsonPage(limit+1), jsonPage(100*limit)
	a, b := allocs(short), allocs(long)
	t.Logf("%.0f allocations for %d items, %.0f for %d", a, limit+1, b, 100*limit)
	if b > a+20 {
		t.Errorf("%.0f allocations past %d of %d items, %.0f of %d: growing with the items past the cap", b, limit, 100*limit, a, limit+1)
	}
}
