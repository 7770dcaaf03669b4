package httpdir

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCheckRedirect: a redirect is judged by the path the server will
// serve, decoded and with its dot segments resolved.
func TestCheckRedirect(t *testing.T) {
	tests := []struct {
		root, to string
		refused  string // in the error; "" when followed
	}{
		{"http://h/tiles/", "http://h/tiles/%2e%2e/other/", "leaves the storage http://h/tiles/: its path resolves to /other/"},
		{"http://h/tiles/", "http://h/tiles/../other/", "leaves the storage http://h/tiles/: its path resolves to /other/"},
		{"http://h/tiles/", "http://h/tiles/%2E%2E/%2e%2e/etc/passwd", "its path resolves to /etc/passwd"},
		{"http://h/tiles/", "http://h/tiles/..%2Fother/", "its path resolves to /other/"},
		{"http://h/tiles/", "http://h/tiles/sub/%2e%2e/%2e%2e/", "its path resolves to /"},
		{"http://h/tiles/", "http://h/tiles/%2e%2e", "its path resolves to /"},
		{"http://h/tiles/", "http://h/tiles", "its path resolves to /tiles"},
		{"http://h/tiles/", "http://h/tilesX/", "its path resolves to /tilesX/"},
		{"http://h/tiles/", "http://evil/tiles/", "leaves the storage http://h/tiles/: another host"},
		{"http://h/tiles/", "http://h/tiles/a/%2e%2e/b/", "its path holds dot segments (it resolves to /tiles/b/)"},
		{"http://h/tiles/", "http://h/tiles/%2e/", "its path holds dot segments (it resolves to /tiles/)"},
		{"http://h/", "http://h/%2e%2e/etc/", "its path holds dot segments (it resolves to /etc/)"},
		{"http://h/tiles/", "http://h/tiles/sub/", ""},
		{"http://h/tiles/", "https://h/tiles/sub/", ""},
		{"http://h/tiles/", "http://h/tiles/a%2Fb/", ""},
		{"http://h/tiles/", "http://h/tiles/dir%20with%20space/x..y.tif", ""},
		{"http://h/tiles/", "http://h/tiles//sub/", ""},
		{"http://h/", "http://h/anything/", ""},
	}
	for _, tt := range tests {
		root, _ := url.Parse(tt.root)
		s, err := New(root, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		to, err := url.Parse(tt.to)
		if err != nil {
			t.Fatal(err)
		}
		err = s.checkRedirect(&http.Request{URL: to}, nil)
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s from %s: %v, want followed", tt.to, tt.root, err)
		case tt.refused == "":
		case err == nil:
			t.Errorf("%s from %s: followed, want refused", tt.to, tt.root)
		case !errors.Is(err, errRedirect) || !strings.Contains(err.Error(), to.Redacted()) || !strings.Contains(err.Error(), tt.refused):
			t.Errorf("%s from %s: %v; want errRedirect naming the location and %q", tt.to, tt.root, err, tt.refused)
		}
	}
}
