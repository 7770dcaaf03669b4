package httpdir

import (
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// anchorExpr is the expression anchors was once written with, kept as the
// reference its results are held to.
var anchorExpr = regexp.MustCompile(`(?is)^<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>`)

// anchorsByExpression is anchors as it was: right, but quadratic on some
// pages, so only for short ones.
func anchorsByExpression(page string, n int) []anchor {
	lower := asciiLower(page)
	var out []anchor
	closing := -1 // the first "</a" at or after the last start, -2: none left
	for pos := 0; len(out) < n; {
		i := strings.Index(lower[pos:], "<a")
		if i < 0 {
			break
		}
		start := pos + i
		pos = start + 2
		if closing != -2 && closing < start {
			if j := strings.Index(lower[start:], "</a"); j >= 0 {
				closing = start + j
			} else {
				closing = -2
			}
		}
		if closing == -2 {
			break
		}
		if closing-start > maxAnchor-3 {
			continue
		}
		end := closing + 3
		gt := strings.IndexByte(lower[end:min(len(lower), end+64)], '>')
		if gt < 0 {
			continue
		}
		m := anchorExpr.FindStringSubmatchIndex(page[start : end+gt+1])
		if m == nil {
			continue
		}
		a := anchor{start: start, end: start + m[1]}
		for g := 2; g <= 6; g += 2 {
			if m[g] >= 0 {
				a.href = [2]int{start + m[g], start + m[g+1]}
				break
			}
		}
		out = append(out, a)
		pos = a.end
	}
	return out
}

func sameAnchors(t *testing.T, what, page string) {
	t.Helper()
	want := anchorsByExpression(page, maxLinks+1)
	got := anchors(page, maxLinks+1)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %q:\n got %v\nwant %v", what, page[:min(len(page), 300)], got, want)
	}
}

// TestAnchorsAsTheExpression: on real servers' pages and on token soups
// of what the grammar turns on, anchors finds what the expression finds.
func TestAnchorsAsTheExpression(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.html"))
	if len(names) == 0 {
		t.Fatal("no testdata/*.html")
	}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := anchors(string(raw), maxLinks+1); len(got) == 0 {
			t.Errorf("%s: no link found", n)
		}
		sameAnchors(t, n, string(raw))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	soups := 20000
	if raceEnabled {
		soups = 2000 // the expression is slow under the race detector
	}
	for range soups {
		var b strings.Builder
		for range rng.IntN(6) {
			b.WriteString(pick("<a", "<A", "<abbr", "<a", "<a"))
			b.WriteString(pick(" ", "\t", "\n", "\v", "", "  "))
			for range rng.IntN(3) {
				b.WriteString(pick("href", "HREF", "data-href", "title", "hre", "xhref"))
				b.WriteString(pick("=", " = ", "\n=", "", " "))
				b.WriteString(pick(`"x"`, `'y'`, "z", `"a>b"`, `"open`, "'op>en", `""`, "", ">", `"</a>"`, `"q'`))
				b.WriteString(pick(" ", "", "\t"))
			}
			b.WriteString(pick(">", ">", "", "<"))
			b.WriteString(pick("text", "", "<b>t</b>", "</abbr>", "<a", ">", `"`, "é\xff"))
			b.WriteString(pick("</a>", "</a>", "</A >", "</a\n>", "</a", "</a x>", "</a</a>", "", "</abbr>"))
			b.WriteString(pick("", "\n", " 02-Jan-2024 03:04 12\n"))
		}
		page := []byte(b.String())
		for range rng.IntN(3) {
			if len(page) > 0 {
				i := rng.IntN(len(page))
				page = append(page[:i], page[i+1:]...)
			}
		}
		sameAnchors(t, "soup", string(page))
	}
	// Elements about maxAnchor long, and starts more than 64 bytes before
	// the closing "</a"'s '>'.
	for k := -6; k <= 6; k++ {
		long := strings.Repeat("y", maxAnchor+k-len(`<a href=x></a>`))
		sameAnchors(t, "long", `<a href=x>`+long+`</a>`)
		sameAnchors(t, "long quoted", `<a <a href="x">`+long+`</a>`)
		sameAnchors(t, "far close", `<a href=x>y</a`+strings.Repeat(" ", 60+k)+`>`)
	}
}

// repeatTo repeats block up to size bytes.
func repeatTo(block string, size int) string {
	return strings.Repeat(block, size/len(block)+1)[:size]
}

// hostilePage is "<a " after "<a ", with a "</a>" after every 8,100
// bytes: each "<a" reaches a "</a" within maxAnchor, so each is tried,
// and none is a link.
func hostilePage(size int) string {
	return repeatTo(strings.Repeat("<a ", 2700)+"</a>", size)
}

// TestAnchorsLinear: the bytes anchors looks at grow as the page does,
// on hostile pages of every shape the grammar can be made to look ahead
// on. Work, not time, so the test is as steady as the code.
func TestAnchorsLinear(t *testing.T) {
	shapes := map[string]string{ // repeated blocks
		"bare <a":         "<a ",
		"<a and </a>":     strings.Repeat("<a ", 2700) + "</a>",
		"no > before </a": strings.Repeat("<a x", 2000) + "</a>",
		"href= chain":     strings.Repeat("<a href=", 1000) + "></a>",
		"open quotes":     strings.Repeat(`<a href="x`, 800) + "></a>",
		"empty tags":      strings.Repeat("<a >", 2000) + "</a>",
		"bad close":       strings.Repeat("<a href=x>", 800) + "</a x>",
		"links":           "<a href=\"x.tif\">x.tif</a>  02-Jan-2024 03:04   1048576\n",
	}
	const size = 64 << 10
	for name, shape := range shapes {
		work := func(size int) int {
			sc := anchorScan{page: repeatTo(shape, size)}
			sc.lower = asciiLower(sc.page)
			sc.all(maxLinks + 1)
			return sc.examined
		}
		w1, w2 := work(size), work(2*size)
		t.Logf("%s: %d bytes looked at on %d, %d on %d", name, w1, size, w2, 2*size)
		if w1 > 6*size || float64(w2) > 2.2*float64(w1) {
			t.Errorf("%s: %d bytes looked at on %d, %d on %d: not linear in the page", name, w1, size, w2, 2*size)
		}
	}
}

// TestHostileAnchorsPage is the page that once took 2.4 s: no link, and
// a few looks a byte.
func TestHostileAnchorsPage(t *testing.T) {
	page := hostilePage(62 << 10)
	base, _ := url.Parse("http://h/tiles/")
	entries, listing, err := parseHTML(base, page)
	if err != nil || listing || len(entries) != 0 {
		t.Errorf("%d entries, listing %v, err %v; want none, not a listing", len(entries), listing, err)
	}
	sc := anchorScan{page: page, lower: asciiLower(page)}
	sc.all(maxLinks + 1)
	if sc.examined > 4*len(page) {
		t.Errorf("%d bytes looked at on a %d-byte page", sc.examined, len(page))
	}
}

// FuzzAnchors holds anchors to the expression on any short page.
func FuzzAnchors(f *testing.F) {
	for _, page := range []string{
		`<a href="x">x</a>`, `<A HREF = 'y' >y</A >`, `<a href=z>z</a</a>`, `<a title="a>b" href="c>d">e</a>`,
		`<a href="x>y</a>`, `<a data-href="1" href="2">3</a>`, `<a href=>x</a><a href=y>y</a>`, "<a\thref\n=\n\"q\"\n>r</a\n>",
		`<a <a href="x">x</a>`, `<abbr><a href=x>x</abbr></a>`, `<a href="</a>">x</a>`, `<a href="x" </a>`,
	} {
		f.Add(page)
	}
	f.Fuzz(func(t *testing.T, page string) {
		if len(page) > 4<<10 {
			return // the expression is slow on long pages, and nothing needs them
		}
		sameAnchors(t, "page", page)
	})
}
