package indexer

import (
	"net/url"
	"testing"
)

func TestDisplayName(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"dalles/réseau.jp2", "dalles/réseau.jp2"},
		{"dalles/r\xe9seau.jp2", "dalles/réseau.jp2"},
		{"c\x9cur \x80 \x93cit\xe9\x94.tif", "cœur € “cité”.tif"},
		{"\x81\x8d\x8f\x90\x9d", "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"é\xe9", "éé"},         // valid UTF-8 kept, the stray byte read alone
		{"\xc3", "Ã"},           // a sequence cut short is one byte too
		{"\xe2\x82", "â\u201a"}, // ...and so is its second byte
	} {
		if got := DisplayName(c.key); got != c.want {
			t.Errorf("DisplayName(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestLocationOfANameNotUTF8: a web server's or FTP server's name escapes
// its bytes and stays openable; a local one cannot be said in JSON.
func TestLocationOfANameNotUTF8(t *testing.T) {
	key := "dalles/r\xe9seau.jp2"
	if got := location(gdalLocator("https://h.fr/pcrs/"), key); got != "/vsicurl/https://h.fr/pcrs/dalles/r%E9seau.jp2" {
		t.Errorf("http: %q", got)
	}
	if got := location(gdalLocator("ftp://h.fr/pcrs"), key); got != "/vsicurl/ftp://h.fr/pcrs/dalles/r%E9seau.jp2" {
		t.Errorf("ftp: %q", got)
	}
	if got := location(gdalLocator("/srv/pcrs"), key); got != "" {
		t.Errorf("a local name not in UTF-8 got the location %q", got)
	}
	if got := location(gdalLocator("/srv/pcrs"), "dalles/réseau.jp2"); got != "/srv/pcrs/dalles/réseau.jp2" {
		t.Errorf("a local UTF-8 name: %q", got)
	}
}

// TestEscapedKey: a key that is not UTF-8 escapes to a form JSON keeps and
// url.PathUnescape turns back into the same bytes; a UTF-8 key needs none.
func TestEscapedKey(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"dalles/réseau.jp2", ""},
		{"dalles/r\xe9seau.jp2", "dalles/r%E9seau.jp2"},
		{"100%\xe9 é+ ?#.tif", "100%25%E9 é+ ?#.tif"},
		{"\xc3", "%C3"},
		{"\xe2\x82é", "%E2%82é"},
	} {
		got := escapedKey(c.key)
		if got != c.want {
			t.Errorf("escapedKey(%q) = %q, want %q", c.key, got, c.want)
		}
		if got == "" {
			continue
		}
		if back, err := url.PathUnescape(got); err != nil || back != c.key {
			t.Errorf("PathUnescape(%q) = %q, %v; want %q", got, back, err, c.key)
		}
	}
}

// TestRunePrefix: a cut never splits a UTF-8 sequence, and a name of
// stray bytes is cut where it stands rather than emptied.
func TestRunePrefix(t *testing.T) {
	for _, c := range []struct{ s, want string }{
		{"abc", "abc"}, {"aaé", "aa"}, {"aéa", "aé"}, {"ééé", "é"}, {"\x80\x80\x80\x80\x80\x80", "\x80\x80\x80"}, {"ab\x80\x80", "ab\x80"},
	} {
		if got := runePrefix(c.s, 3); got != c.want {
			t.Errorf("runePrefix(%q, 3) = %q, want %q", c.s, got, c.want)
		}
	}
}
