package httpdir

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for the listing parsers: every byte of a listing page comes
// from a server that may be hostile. Beyond "no panic", each target checks
// that what is listed is a direct child of the folder, addressable again,
// sized sanely, listed once (HTML), the same on a second parse, and that
// the parse takes time and memory linear in the page.

// fuzzBases are listing URLs as List resolves links against them (path
// ending with "/", no RawPath), including awkward ones a redirect may
// land on.
var fuzzBases = []string{
	"http://h/tiles/",
	"http://tiles.example.fr/livraison/dalles/",
	"https://h:8443/",
	"http://h/dir%20with%20space/%C3%BC/",
	"http://h/a%2Fb/",
	"http://h/x/%2e%2e/",
}

func fuzzBase(t testing.TB, i uint8) *url.URL {
	u, err := url.Parse(fuzzBases[int(i)%len(fuzzBases)])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return u
}

// captures are the listing pages in testdata (real servers' output).
func captures(f *testing.F, pattern string) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(names) == 0 {
		f.Fatalf("no testdata/%s: %v", pattern, err)
	}
	var out [][]byte
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// linearBudget runs fn and fails when it took more time or allocated more
// memory than a budget linear in n, the input's length. Real listings
// parse at 10 to 40 ns a byte (about 1 µs under -race) and allocate about
// 40 bytes a byte: the budgets leave more than an order of magnitude to
// spare, and fail what grows faster than the page.
func linearBudget(t *testing.T, what string, n int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	// Budgets 25 to 35 times what a linear parse takes, so that only a
	// blow-up fails (the quadratic link finder took 2.4 s on 62 KB
	// without the race detector), never a loaded machine: under -race a
	// 22 KB page took 90 ms alone and 908 ms beside other test binaries.
	// TestAnchorsLinear holds the link finder linear by counting bytes.
	budget := 50*time.Millisecond + time.Duration(n)*time.Microsecond
	if raceEnabled {
		budget = time.Second + time.Duration(n)*100*time.Microsecond
	}
	if elapsed > budget {
		t.Errorf("%s took %v on %d bytes (budget %v): not linear in the page", what, elapsed, n, budget)
	}
	// The race detector empties sync.Pools (regexp's among them) at
	// random: allocations are then no measure.
	if alloc, budget := after.TotalAlloc-before.TotalAlloc, uint64(4<<20+256*n); alloc > budget && !raceEnabled {
		t.Errorf("%s allocated %d bytes on %d bytes (budget %d)", what, alloc, n, budget)
	}
}

var raceEnabled = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// checkEntries asserts what List relies on: every entry is a direct child
// of base (a non-empty name, no '/', not "." or ".."), a folder exactly
// when its path ends with '/', with a size that is -1 or exact, and a key
// that List's own keyURL turns back into a request for the same path. n
// is the page's length, to bound the names it yields. unique asks that no
// path be listed twice: parseHTML promises it (Apache links each file
// twice), parseJSON does not, and need not: only a hostile server repeats
// a name, and the scan keeps one verdict a key.
func checkEntries(t *testing.T, base *url.URL, entries []entry, n int, unique bool) {
	t.Helper()
	seen := map[string]bool{}
	names := 0
	s := &Storage{root: base}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Path, base.Path)
		name := strings.TrimSuffix(rest, "/")
		switch {
		case !ok:
			t.Errorf("entry %q is not below %q", e.Path, base.Path)
		case name == "" || name == "." || name == ".." || strings.Contains(name, "/"):
			t.Errorf("entry %q is not a direct child of %q", e.Path, base.Path)
		case e.Dir != strings.HasSuffix(rest, "/"):
			t.Errorf("entry %q: Dir = %v", e.Path, e.Dir)
		case unique && seen[e.Path]:
			t.Errorf("entry %q listed twice", e.Path)
		case e.Size < -1:
			t.Errorf("entry %q: size %d, neither exact nor unknown (-1)", e.Path, e.Size)
		case e.Dir && e.Size != -1:
			// A folder's date is harmless (nginx's JSON gives one): List
			// keeps only its path.
			t.Errorf("folder %q has a size %d", e.Path, e.Size)
		}
		seen[e.Path] = true
		names += len(name)
		req, err := http.NewRequest(http.MethodGet, s.keyURL(rest).String(), nil)
		if err != nil {
			t.Errorf("entry %q cannot be requested back: %v", e.Path, err)
		} else if req.URL.Path != e.Path {
			t.Errorf("entry %q is requested back as %q", e.Path, req.URL.Path)
		}
	}
	// Decoding (%XX, &entities;) may lengthen a name a little, never more.
	if names > 3*n+64 {
		t.Errorf("%d entries naming %d bytes out of a %d-byte page", len(entries), names, n)
	}
}

func FuzzParseHTML(f *testing.F) {
	for i, page := range captures(f, "*.html") {
		f.Add(uint8(i), string(page))
		f.Add(uint8(0), string(page))
		if strings.Contains(string(page), "/livraison/") {
			f.Add(uint8(1), string(page)) // IIS's absolute links
		}
	}
	// Hand-made hostile pages.
	for _, page := range []string{
		"",
		"<a",
		"<a href=",
		`<a href="../">../</a><a href="./">.</a><a href="%2e%2e/">x</a><a href="..%2f..%2fetc/">y</a><a href="%2e/">z</a>`,
		`<a href="x%00y.tif">nul</a> 02-Jan-2024 03:04 12` + "\n",
		"<a href=\"\xff\xfe.tif\">bad utf-8</a> 02-Jan-2024 03:04 12\n",
		`<a href="x.tif">x</a> 02-Jan-2024 03:04 99999999999999999999999999` + "\n",
		`<a href="y.tif">y</a> 31-Feb-9999 99:99 -1` + "\n",
		`<a href="z.tif">z</a> 2024-13-45 25:61  1.0P` + "\n",
		" 99/99/9999 99:99 PM 18446744073709551615 <A HREF=\"big.jp2\">big</A>",
		`<a href="//evil/tiles/x">x</a><a href="http://h/tiles/a?b">q</a><a href="#f">f</a><a href="javascript:x">j</a>`,
		`<a href="http://h:80/tiles/p.tif">p</a><a href="HTTP://H/tiles/q.tif">q</a><a href="/tiles/r.tif#frag">r</a>`,
		`<a href="dup.tif">1</a><a href="dup.tif">2</a><a href="./dup.tif">3</a><a href="dup.tif#x">4</a>`,
		`<a href='single.tif'>s</a><a href=bare.tif>b</a><A HREF = "upper.tif" >u</A >`,
		strings.Repeat("<div>", 2000) + `<a href="deep.tif">deep</a>` + strings.Repeat("</div>", 2000),
		strings.Repeat(`<a href="x.tif">`, 500),
		"<title>Index of /</title>",
		"<pre></pre>",
		`<a href="&#x2e;&#x2e;/">ent</a><a href="&amp;amp;.tif">amp</a><a href="&NotEqualTilde;">long entity</a>`,
	} {
		f.Add(uint8(0), page)
	}
	f.Fuzz(func(t *testing.T, b uint8, page string) {
		base := fuzzBase(t, b)
		var entries []entry
		var listing bool
		var err error
		linearBudget(t, "parseHTML", len(page), func() { entries, listing, err = parseHTML(base, page) })
		if err != nil {
			// Only more than maxLinks links fails a page, and a fuzzed
			// page holds far fewer.
			if len(page) < 10*maxLinks {
				t.Fatalf("error on a %d-byte page: %v", len(page), err)
			}
			return
		}
		if len(entries) > 0 && !listing {
			t.Errorf("%d entries, but not a listing", len(entries))
		}
		if links := strings.Count(asciiLower(page), "<a"); len(entries) > links {
			t.Errorf("%d entries out of %d links", len(entries), links)
		}
		checkEntries(t, base, entries, len(page), true)
		again, listing2, err2 := parseHTML(base, page)
		if err2 != nil || listing2 != listing || !reflect.DeepEqual(again, entries) {
			t.Errorf("a second parse differs: %v %v %+v, then %v %v %+v", err, listing, entries, err2, listing2, again)
		}
	})
}

// FuzzParseHTMLScaled parses head + (inner×innerReps + sep)×outerReps +
// tail: the fuzzer finds the shapes, the repetition makes pages long
// enough for a cost that is not linear in the page to show.
func FuzzParseHTMLScaled(f *testing.F) {
	for _, page := range captures(f, "*.html") {
		s := string(page)
		if i := strings.Index(s, "<pre>"); i >= 0 {
			j := strings.Index(s[i:], "\n")
			k := strings.LastIndex(s, "</pre>")
			if j > 0 && k > i+j {
				f.Add(s[:i+j+1], s[i+j+1:k], "", s[k:], uint16(200), uint16(1))
			}
		}
		f.Add(s, "", "", "", uint16(0), uint16(0))
	}
	line := "<a href=\"x.tif\">x.tif</a>  02-Jan-2024 03:04   1048576\n"
	f.Add("<html><body><pre>\n", line, "", "</pre></body></html>", uint16(1000), uint16(1))
	f.Add("<html><body><pre>\n", "<b>bold</b> ", line, "</pre></body></html>", uint16(600), uint16(10))
	f.Add("<html><body><table>", "<tr><td><a href=\"y/\">y/</a></td><td>2024-01-02 03:04</td><td>-</td></tr>\n", "", "</table></body></html>", uint16(800), uint16(1))
	f.Add("<pre>", "<a href=\"z.tif\">", "</pre>", "", uint16(2000), uint16(1))
	f.Add("<ul>", "<li><abbr title=\"1 MiB\">1.0M</abbr></li>", "<li><a href=\"end.tif\">end</a></li>", "</ul>", uint16(100), uint16(30))
	f.Add("", "<a ", "</a>", "", uint16(2700), uint16(8)) // every "<a" within 8 KB of a "</a": 2.4 s once
	f.Fuzz(func(t *testing.T, head, inner, sep, tail string, innerReps, outerReps uint16) {
		const maxPage = 64 << 10
		room := maxPage - len(head) - len(tail)
		ni, no := int(innerReps), int(outerReps)
		if len(inner) > 0 && ni*len(inner) > room {
			ni = max(0, room/len(inner))
		}
		if unit := ni*len(inner) + len(sep); unit > 0 && no*unit > room {
			no = max(0, room/unit)
		}
		page := head + strings.Repeat(strings.Repeat(inner, ni)+sep, no) + tail
		base := fuzzBase(t, 0)
		var entries []entry
		var err error
		linearBudget(t, "parseHTML", len(page), func() { entries, _, err = parseHTML(base, page) })
		if err != nil {
			t.Fatalf("error on a %d-byte page: %v", len(page), err)
		}
		checkEntries(t, base, entries, len(page), true)
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, page := range captures(f, "*.json") {
		f.Add(uint8(0), page)
		f.Add(uint8(3), page)
	}
	for _, page := range []string{
		``, `null`, `[]`, `{}`, `[null]`, `[[]]`, `"x"`,
		`[{"name":"a.tif","type":"file","size":0}]`,
		`[{"name":"..","type":"directory"},{"name":".","type":"directory"},{"name":"a/b","type":"file","size":1},{"name":"","type":"file"}]`,
		`[{"name":"../../etc/passwd","type":"file","size":1},{"name":"%2e%2e","type":"directory"}]`,
		`[{"name":"x\u0000y","type":"file","size":1},{"name":"\ud800","type":"file","size":2}]`,
		"[{\"name\":\"\xff\xfe\",\"type\":\"file\",\"size\":3}]",
		`[{"name":"big","type":"file","size":9223372036854775807,"mtime":"Fri, 31 Dec 9999 23:59:59 GMT"}]`,
		`[{"name":"huge","type":"file","size":99999999999999999999}]`,
		`[{"name":"unknown","type":"file","size":-1}]`,
		`[{"name":"float","type":"file","size":1.5}]`,
		`[{"name":"d","type":"directory","size":12,"mtime":"Mon, 99 Foo 2024 99:99:99 XYZ"}]`,
		`[{"name":"q?x#y:z","type":"file","size":1},{"name":"sp ace","type":"other"}]`,
		`[{"name":"a","name":"b","type":"file","size":1}]`,
		strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
		`[` + strings.Repeat(`{},`, 3000) + `{}]`,
	} {
		f.Add(uint8(0), []byte(page))
	}
	f.Fuzz(func(t *testing.T, b uint8, body []byte) {
		base := fuzzBase(t, b)
		var entries []entry
		var err error
		linearBudget(t, "parseJSON", len(body), func() { entries, err = parseJSON(base, body) })
		if err != nil {
			if entries != nil {
				t.Errorf("entries %+v with the error %v", entries, err)
			}
			return
		}
		// Every item with a usable name is one entry, at base.Path+name;
		// none when the base holds dot segments (its links resolve
		// elsewhere, outside it).
		var items []jsonEntry
		if err := json.Unmarshal(body, &items); err != nil {
			t.Fatalf("parseJSON accepted what encoding/json refuses: %v", err)
		}
		clean := path.Clean(base.Path)
		if clean != "/" {
			clean += "/"
		}
		var want []string
		for _, it := range items {
			if it.Name == "" || it.Name == "." || it.Name == ".." || strings.Contains(it.Name, "/") || clean != base.Path {
				continue
			}
			p := base.Path + it.Name
			if it.Type == "directory" {
				p += "/"
			}
			want = append(want, p)
		}
		if len(want) != len(entries) {
			t.Fatalf("%d entries for %d named items", len(entries), len(want))
		}
		for i, e := range entries {
			if e.Path != want[i] {
				t.Errorf("item %d listed at %q, want %q", i, e.Path, want[i])
			}
		}
		checkEntries(t, base, entries, len(body), false)
		again, err2 := parseJSON(base, body)
		if err2 != nil || !reflect.DeepEqual(again, entries) {
			t.Errorf("a second parse differs: %+v, then %v %+v", entries, err2, again)
		}
	})
}

// FuzzReadListing is what List does with an answer: content type, gzip
// (declared or sniffed), JSON or HTML, truncation, listing or not.
func FuzzReadListing(f *testing.F) {
	types := []string{"text/html; charset=utf-8", "application/json", "", "text/plain", "application/gzip", "image/tiff"}
	for i, page := range append(captures(f, "*.html"), captures(f, "*.json")...) {
		f.Add(types[i%3], "", false, page)
		f.Add("", "gzip", true, page)
		f.Add("application/x-gzip", "", true, page)
	}
	f.Add("text/html", "", false, []byte("<html><body>maintenance</body></html>"))
	f.Add("text/html", "", false, []byte("<html><body><a href=\"x.tif\">x</a>"))
	f.Add("text/html", "br", false, []byte("<pre></pre>"))
	f.Add("text/html", "identity", false, []byte{0x1f, 0x8b, 0, 0})
	f.Add("application/json; x=\"", "", false, []byte(" \r\n[{\"name\":\"a\"}]"))
	f.Add("image/tiff", "", false, []byte("II*\x00"))
	f.Fuzz(func(t *testing.T, ctype, cenc string, compress bool, body []byte) {
		plain := len(body)
		if compress {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body = buf.Bytes()
		}
		read := func() ([]entry, error) {
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: readCloser{bytes.NewReader(body)}}
			if ctype != "" {
				resp.Header.Set("Content-Type", ctype)
			}
			if cenc != "" {
				resp.Header.Set("Content-Encoding", cenc)
			}
			return readListing(context.Background(), fuzzBase(t, 0), resp)
		}
		var entries []entry
		var err error
		linearBudget(t, "readListing", max(plain, len(body)), func() { entries, err = read() })
		if err != nil {
			if entries != nil {
				t.Errorf("entries %+v with the error %v", entries, err)
			}
		} else {
			checkEntries(t, fuzzBase(t, 0), entries, max(plain, len(body)), false)
		}
		again, err2 := read()
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !reflect.DeepEqual(again, entries) {
			t.Errorf("a second read differs: %v %+v, then %v %+v", err, entries, err2, again)
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
