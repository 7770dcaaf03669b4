package service

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
)

// page gets a page and its body.
func page(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// shareOf asks storage id's share link.
func shareOf(t *testing.T, api, id string) (key, path string) {
	t.Helper()
	code, raw := call(t, "POST", api+"/storages/"+id+"/share", adminToken, "")
	var share struct{ Key, Path string }
	if err := json.Unmarshal(raw, &share); code != http.StatusOK || err != nil || share.Key == "" {
		t.Fatalf("share %s: %d %s", id, code, raw)
	}
	if want := "/livraisons/" + id + "?cle=" + share.Key; share.Path != want {
		t.Errorf("share path %q, want %q", share.Path, want)
	}
	return share.Key, share.Path
}

// linksFor asks download links with key for paths.
func linksFor(t *testing.T, api, id, key string, paths ...string) (int, map[string]string, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"key": key, "paths": paths})
	code, raw := call(t, "POST", api+"/storages/"+id+"/download-links", "", string(body))
	var got struct{ Links map[string]string }
	_ = json.Unmarshal(raw, &got)
	return code, got.Links, raw
}

// TestShareKeys: a storage's share key opens its delivery page with
// download links; a tampered key, another storage's, a download token or
// a revoked key get 403 and a French sentence; the links go to the
// problem tiles only, each token to its own file; revoking ends every
// link given, and the next one works.
func TestShareKeys(t *testing.T) {
	other := newDelivery(t, grid{lon0: 2.3, lat0: 43.2, dx: 0.0025, dy: 0.0018, cols: 2, rows: 2}, map[string]any{
		"problems": []map[string]any{{"path": cutTile, "reason": "corrupt"}}})
	var svc *Service
	api, id, dir := holeDelivery(t, func(s *Service) { svc = s; other.register(t, s, "autre", "Autre livraison") })

	for _, m := range []string{"POST", "DELETE"} {
		if code, _ := call(t, m, api.URL+"/storages/"+id+"/share", "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s share without the admin token: %d, want 401", m, code)
		}
	}
	key, path := shareOf(t, api.URL, id)
	if again, _ := shareOf(t, api.URL, id); again != key {
		t.Errorf("a second share link has another key: links given earlier would stop working")
	}
	otherKey, _ := shareOf(t, api.URL, "autre")

	resp, body := page(t, api.URL+path)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-storage="`+id+`" data-shared="true"`) ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the shared page: %d, Referrer-Policy %q, Cache-Control %q", resp.StatusCode, resp.Header.Get("Referrer-Policy"), resp.Header.Get("Cache-Control"))
	}
	if resp, body := page(t, api.URL+"/livraisons/"+id); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-shared="false"`) {
		t.Errorf("the public page: %d", resp.StatusCode)
	}
	rec, err := svc.get(id)
	if err != nil {
		t.Fatal(err)
	}
	fileToken := svc.signFileToken(*rec, cutTile, time.Now().Add(time.Hour))
	refused := map[string]string{
		"tampered": key[:len(key)-2] + flip(key[len(key)-2:]), "another storage's": otherKey, "empty": "",
		"a download token": svc.signToken(id, time.Now().Add(time.Hour)), "a file token": fileToken, "garbage": "%%%",
	}
	for name, k := range refused {
		resp, body := page(t, api.URL+"/livraisons/"+id+"?cle="+url.QueryEscape(k))
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!containsAll(body, "Lien de partage invalide", "révoqué ou mal copié", `href="/livraisons/`+id+`"`) {
			t.Errorf("%s key: %d %q, want 403 saying so in French", name, resp.StatusCode, body)
		}
		if code, _, raw := linksFor(t, api.URL, id, k, cutTile); code != http.StatusForbidden || !strings.Contains(string(raw), `"code":"share_key_invalid"`) {
			t.Errorf("%s key, download links: %d %s", name, code, raw)
		}
	}
	if resp, body := page(t, api.URL+"/livraisons/nope?cle="+key); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Livraison introuvable") {
		t.Errorf("an unknown delivery: %d", resp.StatusCode)
	}

	// Links for the problem tiles asked, none for a readable tile or
	// anything else.
	code, links, raw := linksFor(t, api.URL, id, key, cutTile, "dalles/PCRS_7000_66002.tif", "../secret", holeName)
	if code != http.StatusOK || len(links) != 1 || links[cutTile] == "" {
		t.Fatalf("download links: %d %s, want one, for %s", code, raw, cutTile)
	}
	want, _ := os.ReadFile(filepath.Join(dir, cutTile))
	if code, got := call(t, "GET", api.URL+links[cutTile], "", ""); code != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("the link: %d, %d bytes of %d", code, len(got), len(want))
	}
	u, _ := url.Parse(links[cutTile])
	token := u.Query().Get("token")
	for name, target := range map[string]string{
		"another file":            "/storages/" + id + "/files/dalles/PCRS_7000_66002.tif",
		"the same file elsewhere": "/storages/autre/files/" + cutTile,
	} {
		if code, raw := call(t, "GET", api.URL+target+"?token="+token, "", ""); code != http.StatusForbidden || !strings.Contains(string(raw), "lien de téléchargement expiré ou invalide") {
			t.Errorf("the token for %s: %d %s, want 403 in French", name, code, raw)
		}
	}
	expired := svc.signFileToken(*rec, cutTile, time.Now().Add(-time.Second))
	if code, _ := call(t, "GET", api.URL+"/storages/"+id+"/files/"+cutTile+"?token="+expired, "", ""); code != http.StatusForbidden {
		t.Errorf("an expired file token: %d, want 403", code)
	}
	if code, _ := call(t, "GET", api.URL+"/storages/"+id+"/files/"+cutTile+"?token="+key, "", ""); code != http.StatusForbidden {
		t.Errorf("the share key as a download token: %d, want 403", code)
	}
	if code, _, raw := linksFor(t, api.URL, id, key, make([]string, maxLinkPaths+1)...); code != http.StatusBadRequest {
		t.Errorf("%d paths: %d %s, want 400", maxLinkPaths+1, code, raw)
	}

	// Revoked: the link given stops working, a new one works.
	if code, raw := call(t, "DELETE", api.URL+"/storages/"+id+"/share", adminToken, ""); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, raw)
	}
	if resp, _ := page(t, api.URL+path); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a revoked link: %d, want 403", resp.StatusCode)
	}
	if code, _, _ := linksFor(t, api.URL, id, key, cutTile); code != http.StatusForbidden {
		t.Errorf("a revoked key's download links: %d, want 403", code)
	}
	fresh, path := shareOf(t, api.URL, id)
	if resp, _ := page(t, api.URL+path); fresh == key || resp.StatusCode != http.StatusOK {
		t.Errorf("a new link after revoking: same key %v, %d", fresh == key, resp.StatusCode)
	}
	if resp, _ := page(t, api.URL+"/livraisons/autre?cle="+otherKey); resp.StatusCode != http.StatusOK {
		t.Errorf("revoking one storage's links revoked another's: %d", resp.StatusCode)
	}
}

// flip changes every character of s.
func flip(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == 'A' {
			out[i] = 'B'
		} else {
			out[i] = 'A'
		}
	}
	return string(out)
}

// TestShareLinkNameNotUTF8: a problem tile named in Windows-1252 on a
// real web server (nginx: Go's file server answers 404 for such a name)
// is shown readably in the report, and its share link downloads the
// object under its own bytes.
func TestShareLinkNameNotUTF8(t *testing.T) {
	dir := holeTiles(t)
	content := []byte("not a TIFF at all, but named like one")
	if err := os.WriteFile(filepath.Join(dir, "dalles/cass\xe9.tif"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	servertest.OpenUp(t, dir)
	api, id := deliveryAt(t, servertest.Nginx(t, dir, false).URL)
	code, report := call(t, "GET", api.URL+"/storages/"+id+"/report", "", "")
	var rep struct {
		Problems []struct{ Path, RawPath string }
	}
	if err := json.Unmarshal(report, &rep); code != http.StatusOK || err != nil {
		t.Fatalf("report: %d %v", code, err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || p.Path == "dalles/cassé.tif" && p.RawPath == "dalles/cass%E9.tif"
	}
	if !found {
		t.Fatalf("problems %+v, want dalles/cassé.tif from the key dalles/cass%%E9.tif", rep.Problems)
	}
	key, _ := shareOf(t, api.URL, id)
	code, links, body := linksFor(t, api.URL, id, key, "dalles/cassé.tif")
	if code != http.StatusOK || links["dalles/cassé.tif"] == "" {
		t.Fatalf("download links: %d %s", code, body)
	}
	resp, err := http.Get(api.URL + links["dalles/cassé.tif"])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("the link %s: %d %q, want the object's bytes", links["dalles/cassé.tif"], resp.StatusCode, got)
	}
	// The browser saves it under the name the report shows.
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename*=utf-8''cass%C3%A9.tif" {
		t.Errorf("Content-Disposition %q, want the readable name, RFC 2231", cd)
	}
}
