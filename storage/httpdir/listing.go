package httpdir

import (
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// entry is one link of a listing page.
type entry struct {
	Path    string // resolved, decoded
	Dir     bool
	Size    int64 // -1 when the page gives no exact size
	ModTime time.Time
}

var (
	// Anchored: tried at one element's start only (see anchors).
	anchorRe = regexp.MustCompile(`(?is)^<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>`)
	tagRe    = regexp.MustCompile(`(?s)<[^>]*>`)
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

// errTooManyLinks is wrapped with the page's URL by List.
var errTooManyLinks = fmt.Errorf("more than %d links", maxLinks)

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

// anchors finds up to n anchors as an unanchored anchorRe would on the
// whole page, but runs the expression on each element alone: on a page of
// hundreds of thousands of links, the submatch engine crawls. Linear in
// the page: the closing tag after each "<a" is found by one forward scan
// shared by all of them, and the expression, anchored, gives up at the
// first byte that cannot start a link (a hostile "<a<a<a…" page took
// seconds for 60 KB when each "<a" searched the next 8 KB anew).
func anchors(page string, n int) []anchor {
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
			break // no element can close
		}
		if closing-start > maxAnchor-3 {
			continue // longer than an element may be
		}
		end := closing + 3
		gt := strings.IndexByte(lower[end:min(len(lower), end+64)], '>')
		if gt < 0 {
			continue
		}
		m := anchorRe.FindStringSubmatchIndex(page[start : end+gt+1])
		if m == nil || m[0] != 0 {
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
	var items []jsonEntry
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("JSON listing: %w", err)
	}
	if len(items) > maxLinks {
		return nil, errTooManyLinks
	}
	var out []entry
	for _, it := range items {
		if it.Name == "" || it.Name == "." || it.Name == ".." || strings.Contains(it.Name, "/") {
			continue
		}
		dir := it.Type == "directory"
		ref := &url.URL{Path: it.Name}
		if dir {
			ref.Path += "/"
		}
		u, ok := directChild(base, ref)
		if !ok {
			continue
		}
		e := entry{Path: u.Path, Dir: dir, Size: -1}
		if it.Size != nil && !dir && *it.Size >= 0 { // a negative size is unknown, not exact
			e.Size = *it.Size
		}
		if mt, err := time.Parse(time.RFC1123, it.MTime); err == nil {
			e.ModTime = mt.UTC()
		}
		out = append(out, e)
	}
	return out, nil
}
