package httpdir

import (
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseListings reads pages captured from real servers.
func TestParseListings(t *testing.T) {
	common := map[string]int64{"dir with space/": 0, "z0/": 0, "z1/": 0}
	with := func(extra map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		file string
		base string
		want map[string]int64 // name → exact size, -1 when not exact, 0 for folders
	}{
		{"nginx.html", "http://h/tiles/", with(map[string]int64{"README.txt": 6, "big.tif": 1048576, "ünïcode #1.tif": 2})},
		{"nginx-autoindex-json.json", "http://h/tiles/", with(map[string]int64{"README.txt": 6, "big.tif": 1048576, "ünïcode #1.tif": 2})},
		{"apache-fancy-table.html", "http://h/tiles/", with(map[string]int64{".hidden": 2, "README.txt": 6, "big.tif": -1, "ünïcode #1.tif": 2})},
		{"apache-fancy.html", "http://h/tiles/", with(map[string]int64{".hidden": 2, "README.txt": 6, "big.tif": -1, "ünïcode #1.tif": 2})},
		{"apache-plain.html", "http://h/tiles/", with(map[string]int64{".hidden": -1, "README.txt": -1, "big.tif": -1, "ünïcode #1.tif": -1})},
		{"lighttpd.html", "http://h/tiles/", with(map[string]int64{"README.txt": -1, "big.tif": -1, "ünïcode #1.tif": -1})},
		{"go-net-http-fileserver.html", "http://h/tiles/", with(map[string]int64{".hidden": -1, "README.txt": -1, "big.tif": -1, "ünïcode #1.tif": -1})},
		{"python-http-server.html", "http://h/tiles/", with(map[string]int64{".hidden": -1, "README.txt": -1, "big.tif": -1, "ünïcode #1.tif": -1})},
		{"iis.html", "http://tiles.example.fr/livraison/dalles/", map[string]int64{"ligne 01/": 0, "AUDE_PCRS_0651600_6226800.jp2": 2397687, "AUDE_PCRS_0651600_6226800.j2w": 611}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			base, _ := url.Parse(tt.base)
			var entries []entry
			if strings.HasSuffix(tt.file, ".json") {
				if entries, err = parseJSON(base, raw); err != nil {
					t.Fatal(err)
				}
			} else {
				var listing bool
				if entries, listing, err = parseHTML(base, string(raw)); err != nil || !listing {
					t.Fatalf("listing = %v, err = %v", listing, err)
				}
			}
			got := map[string]int64{}
			for _, e := range entries {
				name := strings.TrimPrefix(e.Path, base.Path)
				if e.Dir {
					got[name] = 0
				} else {
					got[name] = e.Size
				}
			}
			if a, b := sorted(got), sorted(tt.want); a != b {
				t.Errorf("entries\n got %s\nwant %s", a, b)
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Path, "big.tif") && e.Size > 0 {
					if want := time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC); !e.ModTime.Truncate(time.Minute).Equal(want) {
						t.Errorf("big.tif modified %v, want %v", e.ModTime, want)
					}
				}
			}
		})
	}
}

func TestChildLinks(t *testing.T) {
	base, _ := url.Parse("http://h/a/b/")
	tests := map[string]string{
		"x.tif":                 "/a/b/x.tif",
		"sub/":                  "/a/b/sub/",
		"/a/b/abs.tif":          "/a/b/abs.tif",
		"http://h/a/b/full/":    "/a/b/full/",
		"%2Bplus+%25pct%23.tif": "/a/b/+plus+%pct#.tif",
		"../":                   "",
		"/":                     "",
		"?C=N;O=D":              "",
		"http://other/a/b/x":    "",
		"sub/deeper/x.tif":      "",
		"#top":                  "",
		"./":                    "",
		"https://h/a/b/x.tif":   "",
	}
	for href, want := range tests {
		u, ok := child(base, href)
		got := ""
		if ok {
			got = u.Path
		}
		if got != want {
			t.Errorf("child(%q) = %q, want %q", href, got, want)
		}
	}
}

func sorted(m map[string]int64) string {
	var keys []string
	for k, v := range m {
		keys = append(keys, k+"="+strconv.FormatInt(v, 10))
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}
