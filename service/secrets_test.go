package service

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openpcrs/pcrs-indexer/storage/backends"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// syncBuffer collects a logger's output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestShown(t *testing.T) {
	tests := map[string]string{
		"https://h/x/?apikey=k3y&page=2":      "https://h/x/?apikey=REDACTED&page=REDACTED",
		"https://tok3n@h/x/":                  "https://REDACTED@h/x/",
		"ftp://bob:p@ss/w0rd@host/pub":        "ftp://REDACTED@host/pub",
		"sftp://bob:s3cret@host:22/data":      "sftp://REDACTED@host:22/data",
		"https://h/x/?t0ken#frag":             "https://h/x/?REDACTED#REDACTED",
		"s3://bucket/prefix":                  "s3://bucket/prefix",
		"/data/tiles":                         "/data/tiles",
		"https://u:p%zz@h/?x-amz-signature=s": "https://REDACTED@h/?x-amz-signature=REDACTED",
	}
	for in, want := range tests {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
	scrub := scrubber(Record{URL: "ftp://bob:p@ss/w0rd@host/pub?apikey=k3y-9f", Credentials: Credentials{S3SecretKey: "sk-abcdef"}})
	msg := `Get "ftp://bob:p@ss/w0rd@host/pub?apikey=k3y-9f": refused (key sk-abcdef, p%40ss%2Fw0rd)`
	if got := scrub(msg); strings.Contains(got, "p@ss") || strings.Contains(got, "k3y-9f") || strings.Contains(got, "sk-abcdef") || strings.Contains(got, "w0rd") {
		t.Errorf("scrubbed: %s", got)
	}
}

// TestBearerAndNoLeak: the admin token works as a Bearer token; a token in
// the URL's user part, an API key in its query and the password appear in
// no API answer, output or log line.
func TestBearerAndNoLeak(t *testing.T) {
	const password, user, apikey = "pw-31f0c9", "tok3n-user-77", "k3y-s3cr3t-a1"
	tiles, _ := tileServer(t, password)
	logs := &syncBuffer{}
	ended := make(chan string, 4)
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, func(s *Service) {
		s.hooks.ended = func(id string) { ended <- id }
	})
	loc := strings.Replace(tiles.URL, "http://", "http://"+user+"@", 1) + "/tiles/?apikey=" + apikey
	reg := fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`, loc, password)

	bearer := func(token string) int {
		req, _ := http.NewRequest("POST", api.URL+"/storages", strings.NewReader(reg))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	if code := bearer("wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong Bearer token: %d, want 401", code)
	}
	if code := bearer(adminToken); code != http.StatusCreated {
		t.Fatalf("Bearer token: %d, want 201", code)
	}
	<-ended
	_, raw := call(t, "GET", api.URL+"/storages", "", "")
	var views []view
	if json.Unmarshal(raw, &views) != nil || len(views) != 1 || views[0].LastSuccess == nil {
		t.Fatalf("storages: %s", raw)
	}
	id := views[0].ID
	shownAll := string(raw)
	for _, path := range []string{"/storages/" + id, "/storages/" + id + "/report", "/storages/" + id + "/livrables.geojson", "/livrables.geojson", "/dalles.geojson"} {
		code, body := call(t, "GET", api.URL+path, "", "")
		if code != http.StatusOK {
			t.Errorf("%s: %d", path, code)
		}
		shownAll += string(body)
	}
	shownAll += logs.String()
	for _, secret := range []string{password, user, apikey} {
		if strings.Contains(shownAll, secret) {
			t.Errorf("%q was shown (API answers, outputs or logs)", secret)
		}
	}
	if !strings.Contains(logs.String(), "storage registered") {
		t.Error("the log capture saw nothing")
	}
}

// TestCredentialsEncrypted: credentials never reach the store's file in
// clear; without the key the service does not start; credentials stored
// in clear by earlier versions are sealed at open; with no key,
// registrations with credentials are refused.
func TestCredentialsEncrypted(t *testing.T) {
	const password = "pw-plain-7c1d44"
	tiles, _ := tileServer(t, password)
	data := t.TempDir()
	s, api, _ := newService(t, Config{DataDir: data, AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`, tiles.URL+"/tiles/", password))
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	// A record in clear, as earlier versions wrote them.
	if err := s.storages.Put("old", map[string]any{"id": "old", "url": "ftp://h/", "credentials": map[string]string{"password": "pw-legacy-0b2e"}}); err != nil {
		t.Fatal(err)
	}
	api.Close()
	s.Close()
	file, err := os.ReadFile(filepath.Join(data, "pcrs-indexer.db"))
	if err != nil || bytes.Contains(file, []byte(password)) {
		t.Errorf("the password is in the store's file in clear (%v)", err)
	}

	if _, err := New(Config{DataDir: data, Registry: backends.Registry()}); !errors.Is(err, ErrNoSecretKey) {
		t.Errorf("opening stored credentials without a key: %v, want ErrNoSecretKey", err)
	}
	wrong := bytes.Repeat([]byte{8}, 32)
	if _, err := New(Config{DataDir: data, Registry: backends.Registry(), SecretKey: wrong}); !errors.Is(err, errUnsealable) {
		t.Errorf("opening with the wrong key: %v, want errUnsealable", err)
	}
	s2, err := New(Config{DataDir: data, Registry: backends.Registry(), SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if r, err := s2.get(created.ID); err != nil || r.Credentials.Password != password {
		t.Errorf("credentials after reopen: %v", err)
	}
	var st stored
	if ok, err := s2.storages.Get("old", &st); !ok || err != nil || st.Clear != nil || st.Sealed == "" {
		t.Errorf("the record in clear was not sealed at open: %+v, %v", st, err)
	}
	if r, err := s2.get("old"); err != nil || r.Credentials.Password != "pw-legacy-0b2e" {
		t.Errorf("migrated credentials: %v", err)
	}

	_, api3, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true})
	if code, raw := call(t, "POST", api3.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "credentials": {"password": "x"}}`, tiles.URL+"/tiles/")); code != http.StatusBadRequest || !strings.Contains(string(raw), SecretKeyEnv) {
		t.Errorf("credentials without a key: %d %s, want 400 naming %s", code, raw, SecretKeyEnv)
	}
}

func TestLoadSecretKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(testKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SecretKeyEnv, "")
	if k, err := LoadSecretKey(file); err != nil || !bytes.Equal(k, testKey) {
		t.Errorf("from a file: %v", err)
	}
	if k, err := LoadSecretKey(""); k != nil || err != nil {
		t.Errorf("no key: %v %v", k, err)
	}
	t.Setenv(SecretKeyEnv, base64.StdEncoding.EncodeToString(testKey[:16]))
	if _, err := LoadSecretKey(""); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}
