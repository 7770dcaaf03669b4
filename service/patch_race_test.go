package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// changeOnRead is a request body that, at its first read (after the
// handler has read the record, before it writes it), lets another change
// land: the race a slow client opens.
type changeOnRead struct {
	body   *strings.Reader
	change func()
}

func (c *changeOnRead) Read(p []byte) (int, error) {
	if c.change != nil {
		c.change()
		c.change = nil
	}
	return c.body.Read(p)
}

// TestPatchRefusesAStaleRecord: a name-only PATCH whose body arrives
// after the owner confirmed a new host key must not write back the old
// one it read first: it is refused (409 changed_meanwhile), and the
// confirmed key stays.
func TestPatchRefusesAStaleRecord(t *testing.T) {
	const oldFP = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	const newFP = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA"
	s, _, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	rec := &Record{ID: "r1", URL: "sftp://u@203.0.113.7/data/", Name: "n", Interval: time.Hour, NextScan: time.Now().Add(time.Hour),
		Credentials: Credentials{Password: "pw-xyz"}, Settings: Settings{HostKeyFingerprint: oldFP}}
	if err := s.put(rec); err != nil {
		t.Fatal(err)
	}
	body := &changeOnRead{body: strings.NewReader(`{"name": "renommé"}`), change: func() {
		s.recordsMu.Lock()
		defer s.recordsMu.Unlock()
		cur, _ := s.get("r1")
		cur.HostKeyFingerprint = newFP
		_ = s.put(cur)
	}}
	req := httptest.NewRequest(http.MethodPatch, "/storages/r1", body)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	got, _ := s.get("r1")
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"changed_meanwhile"`) {
		t.Errorf("PATCH on a record changed meanwhile: %d %s, want 409 changed_meanwhile", w.Code, w.Body)
	}
	if got.HostKeyFingerprint != newFP || got.Name != "n" {
		t.Errorf("stored: name %q, fingerprint %s; want the change made meanwhile kept, this one refused", got.Name, got.HostKeyFingerprint)
	}
	// Sent again on the record as it is now, it applies.
	req = httptest.NewRequest(http.MethodPatch, "/storages/r1", strings.NewReader(`{"name": "renommé"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	w = httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if got, _ = s.get("r1"); w.Code != http.StatusOK || got.Name != "renommé" || got.HostKeyFingerprint != newFP {
		t.Errorf("PATCH again: %d, name %q, fingerprint %s", w.Code, got.Name, got.HostKeyFingerprint)
	}
}
