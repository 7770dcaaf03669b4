package service

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLastProblemHoldsNoSecret: a server that echoes the password it
// received in its status line (a misconfigured proxy does) must not get
// it stored in clear in the state file (credentials there are sealed),
// nor shown by the public view of the storage once the password has been
// changed (the view scrubs with the credentials the record has now).
func TestLastProblemHoldsNoSecret(t *testing.T) {
	const oldPW, newPW = "ancien-secret-8f3a", "nouveau-secret-51c0"
	var echo atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); echo.Load() {
			c, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			fmt.Fprintf(buf, "HTTP/1.1 403 refused for %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", pw)
			buf.Flush()
			c.Close()
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>Index of /</title></head><body><a href="../">../</a></body></html>`)
	}))
	defer srv.Close()
	data := t.TempDir()
	s, api, _ := newService(t, Config{DataDir: data, AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	watch := watchScans(s)
	id := register(t, api.URL, fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`, srv.URL+"/tiles/", oldPW))
	watch.await(t, id, 1)
	echo.Store(true)
	if code, raw := call(t, "POST", api.URL+"/storages/"+id+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Fatalf("scan: %d %s", code, raw)
	}
	watch.await(t, id, 2)
	v, raw := storageView(t, api.URL, id)
	if !strings.Contains(string(raw), `"lastProblem":{`) {
		t.Fatalf("the failed scan left no problem: %s (%+v)", raw, v)
	}
	echo.Store(false)
	if code, raw := call(t, "PATCH", api.URL+"/storages/"+id, adminToken, fmt.Sprintf(`{"credentials": {"password": %q}}`, newPW)); code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", code, raw)
	}
	if _, raw = storageView(t, api.URL, id); strings.Contains(string(raw), oldPW) {
		t.Errorf("the public view shows the old password: %s", raw)
	}
	s.Close() // the state file as it rests
	if file, _ := os.ReadFile(filepath.Join(data, "pcrs-indexer.db")); bytes.Contains(file, []byte(oldPW)) || bytes.Contains(file, []byte(newPW)) {
		t.Error("a password is in clear in the state file")
	}
}

// TestReportHoldsNoSecret: a tile whose server echoes the password in its
// status line becomes a problem quoting it; no file the scan writes (the
// report, the problems layer) holds the password.
func TestReportHoldsNoSecret(t *testing.T) {
	const pw = "secret-echo-4b7d"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".tif") {
			_, got, _ := r.BasicAuth()
			c, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			fmt.Fprintf(buf, "HTTP/1.1 404 nothing for %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", got)
			buf.Flush()
			c.Close()
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>Index of /tiles/</title></head><body><a href="../">../</a><a href="a.tif">a.tif</a></body></html>`)
	}))
	defer srv.Close()
	data := t.TempDir()
	s, api, _ := newService(t, Config{DataDir: data, AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey})
	watch := watchScans(s)
	id := register(t, api.URL, fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`, srv.URL+"/tiles/", pw))
	watch.await(t, id, 1)
	files, err := os.ReadDir(s.outDir(id))
	if err != nil {
		t.Fatal(err)
	}
	reports := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(s.outDir(id), f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(pw)) {
			t.Errorf("%s holds the password", f.Name())
		}
		if strings.HasPrefix(f.Name(), "report") {
			reports++
			if !bytes.Contains(b, []byte("nothing for")) {
				t.Errorf("%s does not quote the server's answer: %s", f.Name(), b)
			}
		}
	}
	if reports == 0 {
		t.Fatalf("the scan wrote no report: %v", files)
	}
}
