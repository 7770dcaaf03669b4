package httpdir

import (
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// entry is one link of a listing page.
type entry struct {
	URL     *url.URL // resolved
	Dir     bool
	Size    int64 // -1 when the page gives no exact size
	ModTime time.Time
}

var (
	anchorRe = regexp.MustCompile(`(?is)<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>`)
	tagRe    = regexp.MustCompile(`(?s)<[^>]*>`)
	// Columns after the link: nginx "02-Jan-2024 03:04   1048576", Apache
	// "2024-01-02 03:04  1.0M", lighttpd "2024-Jan-02 03:04:05 1.0M".
	afterRe = regexp.MustCompile(`^\s*(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}|\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?|\d{4}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2})\s+(\d+|[\d.]+[KMGTP]|-)\s`)
	// IIS puts the columns before the link: "1/14/2024  9:05 AM  2397687".
	beforeRe = regexp.MustCompile(`(\d{1,2}/\d{1,2}/\d{4})\s+(\d{1,2}:\d{2} [AP]M)\s+(\d+|<dir>)\s*$`)
)

var afterLayouts = []string{"02-Jan-2006 15:04", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-Jan-02 15:04:05"}

// parseHTML reads the links of a listing page at base. Only links to
// children of base are kept: no parent, no sort links, nothing elsewhere.
func parseHTML(base *url.URL, page string) []entry {
	var out []entry
	seen := map[string]bool{}
	matches := anchorRe.FindAllStringSubmatchIndex(page, -1)
	prevEnd := 0
	for i, m := range matches {
		href := firstGroup(page, m, 2, 4, 6)
		before := page[prevEnd:m[0]]
		afterEnd := len(page)
		if i+1 < len(matches) {
			afterEnd = matches[i+1][0]
		}
		after := page[m[1]:afterEnd]
		prevEnd = m[1]

		u, ok := child(base, html.UnescapeString(href))
		if !ok || seen[u.Path] {
			continue
		}
		seen[u.Path] = true
		e := entry{URL: u, Dir: strings.HasSuffix(u.Path, "/"), Size: -1}
		if !e.Dir {
			e.Size, e.ModTime = columns(before, after)
		}
		out = append(out, e)
	}
	return out
}

func firstGroup(s string, m []int, groups ...int) string {
	for _, g := range groups {
		if m[g] >= 0 {
			return s[m[g]:m[g+1]]
		}
	}
	return ""
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
		u := base.ResolveReference(ref)
		e := entry{URL: u, Dir: dir, Size: -1}
		if it.Size != nil && !dir {
			e.Size = *it.Size
		}
		if mt, err := time.Parse(time.RFC1123, it.MTime); err == nil {
			e.ModTime = mt.UTC()
		}
		out = append(out, e)
	}
	return out, nil
}
