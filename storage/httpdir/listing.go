package httpdir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// entry is one link of a listing page.
type entry struct {
	Path    string // resolved, decoded
	Dir     bool
	Size    int64 // -1 when the page gives no exact size
	ModTime time.Time
}

var (
	tagRe = regexp.MustCompile(`(?s)<[^>]*>`)
	// Columns after the link: nginx "02-Jan-2024 03:04   1048576", Apache
	// "2024-01-02 03:04  1.0M", lighttpd "2024-Jan-02 03:04:05 1.0M".
	afterRe = regexp.MustCompile(`^\s*(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}|\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?|\d{4}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2})\s+(\d+|[\d.]+[KMGTP]|-)\s`)
	// IIS puts the columns before the link: "1/14/2024  9:05 AM  2397687".
	beforeRe = regexp.MustCompile(`(\d{1,2}/\d{1,2}/\d{4})\s+(\d{1,2}:\d{2} [AP]M)\s+(\d+|<dir>)\s*$`)
)

var afterLayouts = []string{"02-Jan-2006 15:04", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-Jan-02 15:04:05"}

// maxLinks bounds the links read from one listing page: a folder of
// 100,000 tiles with their world files is 200,000 links.
const maxLinks = 250_000

// errTooManyLinks fails a page of either kind, HTML or JSON, alike; List
// adds the page's URL.
var errTooManyLinks = fmt.Errorf("%w: more than %d links", storage.ErrTooLarge, maxLinks)

// parseHTML reads the links of a listing page at base. Only links to
// children of base are kept: no parent, no sort links, nothing elsewhere.
// listing says whether the page reads as a directory listing at all: a
// child, a link to the parent folder, or an index title.
func parseHTML(base *url.URL, page string) (out []entry, listing bool, err error) {
	seen := map[string]bool{}
	matches := anchors(page, maxLinks+1)
	if len(matches) > maxLinks {
		return nil, false, errTooManyLinks
	}
	prevEnd := 0
	for i, m := range matches {
		href := html.UnescapeString(page[m.href[0]:m.href[1]])
		before := page[prevEnd:m.start]
		afterEnd := len(page)
		if i+1 < len(matches) {
			afterEnd = matches[i+1].start
		}
		after := page[m.end:afterEnd]
		prevEnd = m.end

		u, ok := child(base, href)
		if !ok {
			listing = listing || isParent(base, href)
			continue
		}
		if seen[u.Path] {
			continue
		}
		seen[u.Path] = true
		e := entry{Path: u.Path, Dir: strings.HasSuffix(u.Path, "/"), Size: -1}
		if !e.Dir {
			e.Size, e.ModTime = columns(before, after)
		}
		out = append(out, e)
	}
	listing = listing || len(out) > 0 || indexTitleRe.MatchString(page) || emptyGoIndexRe.MatchString(page)
	return out, listing, nil
}

var (
	// Titles of empty listings: Apache, nginx, lighttpd ("Index of"),
	// python ("Directory listing for").
	indexTitleRe = regexp.MustCompile(`(?i)<(?:title|h1)>\s*(?:index of|directory listing for)\s`)
	// Go's http.FileServer lists an empty folder as a bare <pre></pre>.
	emptyGoIndexRe = regexp.MustCompile(`(?i)^\s*(?:<!doctype html>\s*)?(?:<meta [^>]*>\s*)?<pre>\s*</pre>\s*$`)
)

// isParent says whether href links to the folder above base.
func isParent(base *url.URL, href string) bool {
	ref, err := url.Parse(href)
	if err != nil || ref.RawQuery != "" {
		return false
	}
	u := base.ResolveReference(ref)
	if u.Host != base.Host {
		return false
	}
	parent := path.Dir(strings.TrimSuffix(base.Path, "/"))
	return strings.TrimSuffix(u.Path, "/") == strings.TrimSuffix(parent, "/")
}

// maxAnchor bounds one <a ...>...</a> element.
const maxAnchor = 8 << 10

// anchor locates one link element in a page, and its href.
type anchor struct {
	start, end int
	href       [2]int
}

// anchors finds up to n link elements: at each "<a" in turn, the
// element that the expression
//
//	(?is)^<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>
//
// matches, run on the page from that "<a" to the end of the first "</a"
// after it (and its '>' within 64 bytes), the element no longer than
// maxAnchor. That expression was the parser once; it is written out by
// hand because a regexp engine tried at every "<a" looks ahead anew each
// time: on a hostile page of "<a " after "<a " with a "</a>" every 8 KB,
// that was 8 KB of work a byte (2.4 s for 62 KB). Here every byte is
// looked at a bounded number of times: TestAnchorsLinear counts them,
// TestAnchorsAsTheExpression and FuzzAnchors hold the results to the
// expression's.
func anchors(page string, n int) []anchor {
	sc := anchorScan{page: page, lower: asciiLower(page)}
	return sc.all(n)
}

// anchorScan is one page's scan for links.
type anchorScan struct {
	page, lower string
	examined    int // bytes looked at, which must stay linear in the page
}

// index is the first needle in lower[from:to], or -1.
func (sc *anchorScan) index(from, to int, needle string) int {
	i := strings.Index(sc.lower[from:to], needle)
	if i < 0 {
		sc.examined += to - from
		return -1
	}
	sc.examined += i + len(needle)
	return from + i
}

// indexByte is the first c in page[from:to], or -1.
func (sc *anchorScan) indexByte(from, to int, c byte) int {
	i := strings.IndexByte(sc.page[from:to], c)
	if i < 0 {
		sc.examined += to - from
		return -1
	}
	sc.examined += i + 1
	return from + i
}

// skipSpace is the first byte at or after i that is not \s, or to.
func (sc *anchorScan) skipSpace(i, to int) int {
	from := i
	for i < to && isSpace(sc.page[i]) {
		i++
	}
	sc.examined += i - from + 1
	return i
}

// isSpace is the expression's \s.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func (sc *anchorScan) all(n int) []anchor {
	page := sc.page
	var out []anchor
	// closing is the first "</a" at or after the current "<a"; every "<a"
	// before it shares it, and end, the end of its "</a\s*>", or -1 when
	// no element can close there.
	closing, end := -1, -1
	for pos := 0; len(out) < n; {
		start := sc.index(pos, len(page), "<a")
		if start < 0 {
			break
		}
		pos = start + 2
		if closing < start {
			if closing = sc.index(start, len(page), "</a"); closing < 0 {
				break // no element can close
			}
			end = sc.closeEnd(closing)
		}
		if end < 0 {
			pos = closing + 3
			continue
		}
		if closing-start > maxAnchor-3 || !isSpace(page[start+2]) {
			continue
		}
		// The start tag cannot hold a '>' before its href's value, nor
		// the closing "</a" before its own '>'.
		gt := sc.indexByte(start+3, closing, '>')
		if gt < 0 {
			pos = closing // every "<a" before closing fails alike
			continue
		}
		href, ok := sc.href(start+3, gt, closing)
		if !ok {
			// Every "<a" before gt tries the same href candidates, or
			// fewer: all fail.
			pos = gt
			continue
		}
		out = append(out, anchor{start: start, end: end, href: href})
		pos = end
	}
	return out
}

// closeEnd is the end of the "</a\s*>" ending at the first '>' within 64
// bytes after the "</a" at closing (the expression's content runs up to
// the last "</a" before that '>'), or -1.
func (sc *anchorScan) closeEnd(closing int) int {
	gt := sc.indexByte(closing+3, min(len(sc.page), closing+3+64), '>')
	if gt < 0 {
		return -1
	}
	t := gt
	for t > closing+3 && isSpace(sc.page[t-1]) {
		t--
	}
	sc.examined += gt - t
	if sc.lower[t-3:t] != "</a" {
		return -1
	}
	return gt + 1
}

// href finds the value of the first href attribute in the start tag
// [from, gt) whose element can close before closing: quoted, when the
// closing quote comes before closing with a '>' after it (a quoted value
// may hold '>'), else bare, up to a space or gt.
func (sc *anchorScan) href(from, gt, closing int) ([2]int, bool) {
	page := sc.page
	for p := from; ; {
		if p = sc.index(p, gt, "href"); p < 0 {
			return [2]int{}, false
		}
		q := sc.skipSpace(p+4, gt)
		if page[q] != '=' { // page[gt] is '>'
			p = q // "href" does not overlap itself: none starts before q
			continue
		}
		v := sc.skipSpace(q+1, gt)
		if v == gt {
			return [2]int{}, false // an empty value, and no tag left
		}
		if c := page[v]; c == '"' || c == '\'' {
			if k := sc.indexByte(v+1, closing, c); k >= 0 && sc.indexByte(k+1, closing, '>') >= 0 {
				return [2]int{v + 1, k}, true
			}
		}
		e := v
		for e < gt && !isSpace(page[e]) {
			e++
		}
		sc.examined += e - v
		return [2]int{v, e}, true
	}
}

// asciiLower lower-cases ASCII letters only, keeping every byte offset.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// columns finds an exact size (a bare number of bytes, not "1.0M"; -1
// otherwise) and a date around a link.
func columns(before, after string) (int64, time.Time) {
	text := html.UnescapeString(tagRe.ReplaceAllString(after, " "))
	if line, _, _ := strings.Cut(text, "\n"); line != "" {
		text = line
	}
	if m := afterRe.FindStringSubmatch(text + " "); m != nil {
		var mt time.Time
		for _, l := range afterLayouts {
			if t, err := time.Parse(l, m[1]); err == nil {
				mt = t
				break
			}
		}
		if n, err := strconv.ParseInt(m[2], 10, 64); err == nil {
			return n, mt
		}
		return -1, mt
	}
	btext := html.UnescapeString(tagRe.ReplaceAllString(before, " "))
	if m := beforeRe.FindStringSubmatch(btext); m != nil {
		if n, err := strconv.ParseInt(m[3], 10, 64); err == nil {
			mt, _ := time.Parse("1/2/2006 3:04 PM", m[1]+" "+m[2])
			return n, mt
		}
	}
	return -1, time.Time{}
}

// child resolves href against base and keeps it only if it names something
// below base on the same host.
func child(base *url.URL, href string) (*url.URL, bool) {
	if href == "" || strings.HasPrefix(href, "#") {
		return nil, false
	}
	ref, err := url.Parse(href)
	if err != nil {
		return nil, false
	}
	return directChild(base, ref)
}

// directChild resolves ref against base and keeps it only if it names
// something directly below base on the same host. A base holding dot
// segments (where a redirect landed) resolves its links elsewhere: none
// of them is kept.
func directChild(base, ref *url.URL) (*url.URL, bool) {
	u := base.ResolveReference(ref)
	if u.RawQuery != "" || u.Scheme != base.Scheme || u.Host != base.Host {
		return nil, false
	}
	u.Fragment = ""
	if !strings.HasPrefix(u.Path, base.Path) || len(u.Path) <= len(base.Path) {
		return nil, false
	}
	rest := strings.TrimSuffix(u.Path[len(base.Path):], "/")
	if rest == "" || strings.Contains(rest, "/") || rest == "." || rest == ".." {
		return nil, false // not a direct child
	}
	return u, true
}

// jsonEntry is nginx's autoindex_format json.
type jsonEntry struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	MTime string `json:"mtime"`
	Size  *int64 `json:"size"`
}

func parseJSON(base *url.URL, body []byte) ([]entry, error) {
	return parseJSONItems(base, body, maxLinks, nil)
}

// parseJSONItems reads one item at a time and stops past limit items: a
// page decoded whole before its items are counted costs about a hundred
// times its length. decoded, when not nil, counts the items decoded.
// What json.Unmarshal into []jsonEntry refuses, this refuses too.
func parseJSONItems(base *url.URL, body []byte, limit int, decoded *int) ([]entry, error) {
	if len(body) > maxListing {
		return nil, fmt.Errorf("%w: page longer than %d bytes", storage.ErrTooLarge, maxListing)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("JSON listing: %w", io.ErrUnexpectedEOF)
	case err != nil:
		return nil, fmt.Errorf("JSON listing: %w", err)
	case tok == nil: // null: no items, as Unmarshal reads it
		return nil, jsonEnd(dec)
	case tok != json.Delim('['):
		return nil, fmt.Errorf("JSON listing: %v where a list of items was expected", tok)
	}
	var out []entry
	for n := 0; dec.More(); n++ {
		if n == limit {
			return nil, errTooManyLinks
		}
		var it jsonEntry
		if err := dec.Decode(&it); err != nil {
			return nil, fmt.Errorf("JSON listing: item %d: %w", n, err)
		}
		if decoded != nil {
			*decoded++
		}
		if e, ok := jsonItem(base, it); ok {
			out = append(out, e)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, fmt.Errorf("JSON listing: %w", err)
	}
	if err := jsonEnd(dec); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonEnd refuses anything but spaces after the listing, as Unmarshal does.
func jsonEnd(dec *json.Decoder) error {
	if tok, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%v after the list of items", tok)
		}
		return fmt.Errorf("JSON listing: %w", err)
	}
	return nil
}

// jsonItem is the entry an item names, if it names a direct child of base.
func jsonItem(base *url.URL, it jsonEntry) (entry, bool) {
	if it.Name == "" || it.Name == "." || it.Name == ".." || strings.Contains(it.Name, "/") {
		return entry{}, false
	}
	dir := it.Type == "directory"
	ref := &url.URL{Path: it.Name}
	if dir {
		ref.Path += "/"
	}
	u, ok := directChild(base, ref)
	if !ok {
		return entry{}, false
	}
	e := entry{Path: u.Path, Dir: dir, Size: -1}
	if it.Size != nil && !dir && *it.Size >= 0 { // a negative size is unknown, not exact
		e.Size = *it.Size
	}
	if mt, err := time.Parse(time.RFC1123, it.MTime); err == nil {
		e.ModTime = mt.UTC()
	}
	return e, true
}
