package service

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
	"github.com/openpcrs/pcrs-indexer/tilegen"
	"golang.org/x/crypto/ssh"
)

// scanWatch counts the scans that ended, per storage, from the
// scheduler's hook: a test waits for exactly the scan it caused.
type scanWatch struct {
	mu    sync.Mutex
	ended map[string]int
}

func watchScans(s *Service) *scanWatch {
	w := &scanWatch{ended: map[string]int{}}
	s.hooks.ended = func(id string) {
		w.mu.Lock()
		w.ended[id]++
		w.mu.Unlock()
	}
	return w
}

func (w *scanWatch) count(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended[id]
}

// await waits until id's n-th scan has ended (its outcome recorded).
func (w *scanWatch) await(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for w.count(id) < n {
		if time.Now().After(deadline) {
			t.Fatalf("storage %s: %d scans ended, waited for %d", id, w.count(id), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answer is a storage or an error as the API sends it.
type answer struct {
	view
	Problem
	Error string `json:"error"`
}

func decode(t *testing.T, raw []byte) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return a
}

func storageView(t *testing.T, api, id string) (view, []byte) {
	t.Helper()
	code, raw := call(t, "GET", api+"/storages/"+id, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET storage %s: %d %s", id, code, raw)
	}
	var v view
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v, raw
}

// register posts a registration and returns the new storage's id.
func register(t *testing.T, api, body string) string {
	t.Helper()
	code, raw := call(t, "POST", api+"/storages", adminToken, body)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, raw)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(raw, &created)
	return created.ID
}

// tileFiles writes n small GeoTIFF tiles below dir/dalles/ and returns
// their contents by key.
func tileFiles(t *testing.T, dir string, n int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("dalles/t%d.tif", i)
		name := filepath.Join(dir, filepath.FromSlash(key))
		if err := (tilegen.Tile{EPSG: 2154, X: 700000 + float64(i)*200, Y: 6600200}).Write(name); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[key] = raw
	}
	return files
}

// uploadS3 puts files below prefix in the server's bucket through the S3
// API.
func uploadS3(t *testing.T, srv servertest.S3Server, bucket, prefix string, files map[string][]byte) {
	t.Helper()
	client := awss3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(srv.Access, srv.Secret, "")}, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(srv.Endpoint)
		o.UsePathStyle = true
	})
	for k, content := range files {
		if _, err := client.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + k), Body: bytes.NewReader(content)}); err != nil {
			t.Fatalf("uploading %s: %v", k, err)
		}
	}
}

// TestS3EndpointPerStorage: two storages, each on its own S3 store (two
// versitygw servers, the same bucket name on both), both scan; the
// service's own endpoint, dead, is never used. The same bucket on the same
// store again is refused with the first one's id; wrong keys, a missing
// bucket or a dead endpoint are told in French with a code, and nothing is
// registered.
func TestS3EndpointPerStorage(t *testing.T) {
	const bucket = "pcrs"
	a, b := servertest.VersityGW(t, bucket), servertest.VersityGW(t, bucket)
	files := tileFiles(t, t.TempDir(), 3)
	uploadS3(t, a, bucket, "livraison/", files)
	delete(files, "dalles/t2.tif")
	uploadS3(t, b, bucket, "livraison/", files)
	var scans *scanWatch
	s, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey, S3Endpoint: "http://127.0.0.1:1"},
		func(s *Service) { scans = watchScans(s) })
	reg := func(srv servertest.S3Server, url, access, secret string) string {
		return fmt.Sprintf(`{"url": %q, "s3Endpoint": %q, "s3Region": "us-east-1", "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`, url, srv.Endpoint, access, secret)
	}
	idA := register(t, api.URL, reg(a, "s3://pcrs/livraison/", a.Access, a.Secret))
	idB := register(t, api.URL, reg(b, "s3://pcrs/livraison/", b.Access, b.Secret))
	for id, want := range map[string]int{idA: 3, idB: 2} {
		scans.await(t, id, 1)
		v, raw := storageView(t, api.URL, id)
		if v.LastSuccess == nil || v.LastCounts == nil || v.LastCounts.Readable != want {
			t.Errorf("storage %s after its scan: %s, want %d readable tiles", id, raw, want)
		}
		if strings.Contains(string(raw), a.Secret) || strings.Contains(string(raw), a.Access) {
			t.Errorf("the API shows a key: %s", raw)
		}
		if strings.Join(v.Credentials, ",") != "s3AccessKey,s3SecretKey" || v.S3Region != "us-east-1" || v.S3Endpoint == "" {
			t.Errorf("settings shown: %s", raw)
		}
	}

	// The same location: same store (trailing slash aside), bucket and prefix.
	dup := fmt.Sprintf(`{"url": "s3://pcrs/livraison", "s3Endpoint": %q, "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`, a.Endpoint+"/", a.Access, a.Secret)
	code, raw := call(t, "POST", api.URL+"/storages", adminToken, dup)
	if got := decode(t, raw); code != http.StatusConflict || got.Code != CodeDuplicate || got.ID != idA || !strings.Contains(got.Message, idA) {
		t.Errorf("duplicate: %d %s, want 409 %s naming %s", code, raw, CodeDuplicate, idA)
	}

	dead := servertest.FreePort(t)
	for name, c := range map[string]struct {
		body, code, says string
	}{
		"wrong secret key":   {reg(a, "s3://pcrs/autre/", a.Access, "secret-faux-4f1e"), CodeS3SignatureMismatch, "credentials.s3SecretKey"},
		"unknown access key": {reg(a, "s3://pcrs/autre/", "inconnue-77a0", a.Secret), CodeS3InvalidAccessKey, "credentials.s3AccessKey"},
		"missing bucket":     {reg(a, "s3://absent/", a.Access, a.Secret), CodeS3NoSuchBucket, "« absent »"},
		"wrong region":       {strings.Replace(reg(a, "s3://pcrs/autre/", a.Access, a.Secret), "us-east-1", "eu-west-3", 1), CodeS3WrongRegion, "s3Region"},
		"no keys":            {fmt.Sprintf(`{"url": "s3://pcrs/autre/", "s3Endpoint": %q}`, a.Endpoint), CodeS3AccessDenied, "credentials.s3AccessKey"},
		"dead endpoint": {fmt.Sprintf(`{"url": "s3://pcrs/autre/", "s3Endpoint": "http://127.0.0.1:%d", "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`, dead, a.Access, a.Secret),
			CodeUnreachable, "s3Endpoint"},
	} {
		code, raw := call(t, "POST", api.URL+"/storages", adminToken, c.body)
		got := decode(t, raw)
		if code != http.StatusUnprocessableEntity || got.Code != c.code || !strings.Contains(got.Message, c.says) {
			t.Errorf("%s: %d %s, want 422 %s saying %s", name, code, raw, c.code, c.says)
		}
		if strings.Contains(string(raw), "secret-faux-4f1e") || strings.Contains(string(raw), a.Secret) {
			t.Errorf("%s: the answer quotes a key: %s", name, raw)
		}
	}
	if _, raw := call(t, "GET", api.URL+"/storages", "", ""); bytes.Count(raw, []byte(`"id"`)) != 2 {
		t.Errorf("refused registrations were kept: %s", raw)
	}

	// Keys revoked after registration: the scan says so, in French.
	if err := s.put(&Record{ID: "revoked", URL: "s3://pcrs/livraison/", Settings: Settings{S3Endpoint: b.Endpoint},
		Credentials: Credentials{S3AccessKey: b.Access, S3SecretKey: "revoquee-0c3d"}, Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s.queue("revoked")
	scans.await(t, "revoked", 1)
	v, raw := storageView(t, api.URL, "revoked")
	if v.LastProblem == nil || v.LastProblem.Code != CodeS3SignatureMismatch || v.LastError == nil || strings.Contains(string(raw), "revoquee-0c3d") {
		t.Errorf("scan with a revoked key: %s", raw)
	}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// TestSFTPHostKeyConfirmed: an SFTP storage with an encrypted private key.
// The first registration answers 409 with the host key's fingerprint (as
// ssh-keygen prints it) and registers nothing; sent again with it, the
// storage is registered and scans. The server then presents another host
// key: the scan is refused with a sentence naming both fingerprints, the
// outputs stay, and confirming the new key by PATCH scans again, reusing
// every tile.
func TestSFTPHostKeyConfirmed(t *testing.T) {
	const passphrase = "phrase-9b27-de-passe"
	srv := servertest.Sshd(t)
	root := t.TempDir()
	tileFiles(t, root, 3)
	servertest.OpenUp(t, root)
	key, err := os.ReadFile(srv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	locked := string(pem.EncodeToMemory(block))
	logs := &syncBuffer{}
	var scans *scanWatch
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, func(s *Service) { scans = watchScans(s) })
	url := fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", currentUser(), srv.Port, root)
	body := func(extra string) string {
		return fmt.Sprintf(`{"url": %q, "credentials": {"sftpPrivateKey": %q, "sftpPassphrase": %q}%s}`, url, locked, passphrase, extra)
	}
	first := srv.HostFingerprint(t)

	code, rawAnswer := call(t, "POST", api.URL+"/storages", adminToken, body(""))
	got := decode(t, rawAnswer)
	if code != http.StatusConflict || got.Code != CodeHostKeyUnconfirmed || got.HostKeyFingerprint != first || got.HostKeyType != ssh.KeyAlgoED25519 || !strings.Contains(got.Message, first) {
		t.Fatalf("first contact: %d %s, want 409 %s with %s", code, rawAnswer, CodeHostKeyUnconfirmed, first)
	}
	if _, list := call(t, "GET", api.URL+"/storages", "", ""); string(bytes.TrimSpace(list)) != "[]" {
		t.Fatalf("an unconfirmed storage was registered: %s", list)
	}
	// Another fingerprint than the server's: refused, both named.
	other := "SHA256:" + strings.Repeat("A", 43)
	code, rawAnswer = call(t, "POST", api.URL+"/storages", adminToken, body(`, "hostKeyFingerprint": "`+other+`"`))
	if got := decode(t, rawAnswer); code != http.StatusUnprocessableEntity || got.Code != CodeHostKeyMismatch || !containsAll(got.Message, first, other) {
		t.Errorf("a wrong fingerprint: %d %s", code, rawAnswer)
	}

	// Confirmed, but with credentials the server refuses.
	stranger := filepath.Join(t.TempDir(), "stranger")
	servertest.NewKey(t, stranger)
	strangerKey, _ := os.ReadFile(stranger)
	for name, c := range map[string]struct{ credentials, code, says string }{
		"unauthorized key": {fmt.Sprintf(`{"sftpPrivateKey": %q}`, strangerKey), CodeSFTPAuthFailed, "identifiant ou clé refusés par le serveur SFTP : vérifiez"},
		"wrong passphrase": {fmt.Sprintf(`{"sftpPrivateKey": %q, "sftpPassphrase": "pas-elle"}`, locked), CodeSFTPKeyPassphrase, "credentials.sftpPassphrase"},
		"public key":       {fmt.Sprintf(`{"sftpPrivateKey": %q}`, ssh.MarshalAuthorizedKey(srv.Signer.PublicKey())), CodeSFTPKeyUnreadable, "pas la clé publique"},
	} {
		code, rawAnswer := call(t, "POST", api.URL+"/storages", adminToken, fmt.Sprintf(`{"url": %q, "hostKeyFingerprint": %q, "credentials": %s}`, url, first, c.credentials))
		if got := decode(t, rawAnswer); code != http.StatusUnprocessableEntity || got.Code != c.code || !strings.Contains(got.Message, c.says) {
			t.Errorf("%s: %d %s, want 422 %s saying %q", name, code, rawAnswer, c.code, c.says)
		}
	}

	id := register(t, api.URL, body(`, "hostKeyFingerprint": "`+got.HostKeyFingerprint+`"`))
	scans.await(t, id, 1)
	v, shownRaw := storageView(t, api.URL, id)
	if v.LastSuccess == nil || v.LastCounts == nil || v.LastCounts.Readable != 3 || v.HostKeyFingerprint != first || strings.Join(v.Credentials, ",") != "sftpPrivateKey,sftpPassphrase" {
		t.Fatalf("after the first scan: %s", shownRaw)
	}

	srv.NewHostKey(t)
	second := srv.HostFingerprint(t)
	if code, _ := call(t, "POST", api.URL+"/storages/"+id+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Fatalf("scan request: %d", code)
	}
	scans.await(t, id, 2)
	v, shownRaw = storageView(t, api.URL, id)
	if p := v.LastProblem; p == nil || p.Code != CodeHostKeyMismatch || !containsAll(p.Message, first, second, "PATCH") || p.HostKeyFingerprint != second {
		t.Fatalf("scan against a changed host key: %s, want %s naming %s and %s", shownRaw, CodeHostKeyMismatch, first, second)
	}
	if v.LastCounts.Readable != 3 {
		t.Errorf("the refused scan changed the counts: %s", shownRaw)
	}
	if code, out := call(t, "GET", api.URL+"/storages/"+id+"/dalles.geojson", "", ""); code != http.StatusOK || bytes.Count(out, []byte(`"Feature"`)) != 3 {
		t.Errorf("outputs after the refused scan: %d, %d features", code, bytes.Count(out, []byte(`"Feature"`)))
	}

	code, rawAnswer = call(t, "PATCH", api.URL+"/storages/"+id, adminToken, `{"hostKeyFingerprint": "`+second+`"}`)
	if code != http.StatusOK {
		t.Fatalf("confirming the new host key: %d %s", code, rawAnswer)
	}
	scans.await(t, id, 3)
	v, shownRaw = storageView(t, api.URL, id)
	if v.LastError != nil || v.LastProblem != nil || v.LastCounts == nil || v.LastCounts.Reused != 3 || v.HostKeyFingerprint != second {
		t.Errorf("after the new key was confirmed: %s, want a scan reusing the 3 tiles", shownRaw)
	}
	for _, secret := range []string{passphrase, strings.Split(locked, "\n")[1]} {
		if strings.Contains(logs.String(), secret) || strings.Contains(string(shownRaw), secret) {
			t.Errorf("the key or its passphrase was shown or logged")
		}
	}
}

// basicAuthNginx serves root at /tiles/ (autoindex) behind HTTP basic
// auth, the accepted password read from a file nginx reads at each
// request; it returns the listing's URL with the user, and the password
// file.
func basicAuthNginx(t *testing.T, root, user, password string) (string, string) {
	t.Helper()
	bin := servertest.Binary(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	port := servertest.FreePort(t)
	users := servertest.WriteFile(t, dir, "htpasswd", user+":{PLAIN}"+password+"\n")
	conf := servertest.WriteFile(t, dir, "nginx.conf", strings.Join([]string{
		"user root;",
		"worker_processes 1;",
		"pid " + filepath.Join(dir, "nginx.pid") + ";",
		"error_log " + filepath.Join(dir, "error.log") + ";",
		"events { worker_connections 256; }",
		"http {",
		"  access_log off;",
		"  client_body_temp_path " + dir + "/body; proxy_temp_path " + dir + "/proxy; fastcgi_temp_path " + dir + "/fcgi; uwsgi_temp_path " + dir + "/uwsgi; scgi_temp_path " + dir + "/scgi;",
		fmt.Sprintf("  server { listen 127.0.0.1:%d;", port),
		"    location /tiles/ { alias " + root + "/; autoindex on; auth_basic \"pcrs\"; auth_basic_user_file " + users + "; }",
		"  }",
		"}",
	}, "\n")+"\n")
	servertest.Start(t, port, bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	return fmt.Sprintf("http://%s@127.0.0.1:%d/tiles/", user, port), users
}

// TestPatchKeepsState: the owner's password changes on the server; PATCH
// gives the new one without losing anything: the next scan reuses every
// tile and the outputs stay served throughout. A wrong new password is
// refused and changes nothing; the location never changes.
func TestPatchKeepsState(t *testing.T) {
	const before, after = "ancien-mdp-61c2", "nouveau-mdp-0e94"
	root := t.TempDir()
	tileFiles(t, root, 3)
	servertest.OpenUp(t, root)
	url, users := basicAuthNginx(t, root, "owner", before)
	var scans *scanWatch
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey}, func(s *Service) { scans = watchScans(s) })
	id := register(t, api.URL, fmt.Sprintf(`{"url": %q, "credentials": {"password": %q}}`, url, before))
	scans.await(t, id, 1)
	if v, raw := storageView(t, api.URL, id); v.LastSuccess == nil || v.LastCounts.Readable != 3 {
		t.Fatalf("first scan: %s", raw)
	}

	servertest.WriteFile(t, filepath.Dir(users), "htpasswd", "owner:{PLAIN}"+after+"\n")
	code, raw := call(t, "PATCH", api.URL+"/storages/"+id, adminToken, `{"credentials": {"password": "pas-le-bon-3d"}}`)
	if got := decode(t, raw); code != http.StatusUnprocessableEntity || got.Code == "" || got.Message == "" || strings.Contains(string(raw), "pas-le-bon-3d") {
		t.Errorf("a wrong new password: %d %s, want 422", code, raw)
	}
	for name, body := range map[string]string{
		"another location": `{"url": "http://example.org/tiles/"}`,
		"S3 settings":      `{"s3Region": "gra"}`,
		"unknown field":    `{"pasword": "x"}`,
	} {
		if code, raw := call(t, "PATCH", api.URL+"/storages/"+id, adminToken, body); code != http.StatusBadRequest {
			t.Errorf("PATCH with %s: %d %s, want 400", name, code, raw)
		}
	}
	if code, _ := call(t, "PATCH", api.URL+"/storages/nope", adminToken, `{"name": "x"}`); code != http.StatusNotFound {
		t.Errorf("PATCH of no storage: %d", code)
	}
	if code, _ := call(t, "PATCH", api.URL+"/storages/"+id, "", `{"name": "x"}`); code != http.StatusUnauthorized {
		t.Errorf("PATCH without the admin token: %d", code)
	}
	if n := scans.count(id); n != 1 {
		t.Fatalf("refused changes caused %d scans", n-1)
	}

	code, raw = call(t, "PATCH", api.URL+"/storages/"+id, adminToken, fmt.Sprintf(`{"credentials": {"password": %q}, "interval": "2h"}`, after))
	if code != http.StatusOK || strings.Contains(string(raw), after) {
		t.Fatalf("PATCH the password: %d %s", code, raw)
	}
	scans.await(t, id, 2)
	v, raw := storageView(t, api.URL, id)
	if v.LastError != nil || v.LastCounts == nil || v.LastCounts.Reused != 3 || v.Interval != "2h0m0s" || strings.Join(v.Credentials, ",") != "password" {
		t.Errorf("after PATCH: %s, want a scan reusing the 3 tiles", raw)
	}
	for _, output := range []string{"dalles.geojson", "livrables.geojson", "report", "dalles.fgb"} {
		if code, _ := call(t, "GET", api.URL+"/storages/"+id+"/"+output, "", ""); code != http.StatusOK {
			t.Errorf("%s after PATCH: %d", output, code)
		}
	}
}

// TestLocationKey: what counts as the same location.
func TestLocationKey(t *testing.T) {
	s := &Service{cfg: Config{S3Endpoint: "https://s3.example.fr"}}
	same := [][2]Record{
		{{URL: "https://h.fr/tiles/"}, {URL: "HTTPS://a:b@H.FR:443/tiles?apikey=x"}},
		{{URL: "sftp://u@h.fr/data/"}, {URL: "sftp://v:pw@h.fr:22/data"}},
		{{URL: "ftp://h.fr/pub/./x/"}, {URL: "ftp://h.fr:21/pub/x"}},
		{{URL: "s3://b/p/"}, {URL: "s3://b/p", Settings: Settings{S3Endpoint: "https://S3.example.fr/"}}},
		// One host, several spellings: the root's trailing dot, an
		// IPv4-mapped IPv6 literal, a long IPv6 form; bucket names' case.
		{{URL: "https://h.fr/tiles/"}, {URL: "https://h.fr./tiles/"}},
		{{URL: "sftp://u@1.2.3.4/data/"}, {URL: "sftp://u@[::ffff:1.2.3.4]:22/data/"}},
		{{URL: "https://[2001:db8::1]/t/"}, {URL: "https://[2001:DB8:0:0:0:0:0:1]:443/t/"}},
		{{URL: "s3://bucket/p/"}, {URL: "s3://BUCKET/p/"}},
	}
	for _, c := range same {
		if a, b := s.locationKey(c[0]), s.locationKey(c[1]); a != b {
			t.Errorf("%s and %s differ: %s, %s", c[0].URL, c[1].URL, a, b)
		}
	}
	differ := [][2]Record{
		{{URL: "https://h.fr/tiles/"}, {URL: "http://h.fr/tiles/"}},
		{{URL: "sftp://h.fr/data/"}, {URL: "sftp://h.fr:2222/data/"}},
		{{URL: "s3://b/p/"}, {URL: "s3://b/p/", Settings: Settings{S3Endpoint: "https://other.example.fr"}}},
		{{URL: "s3://b/p/"}, {URL: "s3://b/q/"}},
	}
	for _, c := range differ {
		if a, b := s.locationKey(c[0]), s.locationKey(c[1]); a == b {
			t.Errorf("%s (%s) and %s (%s) are one location: %s", c[0].URL, c[0].S3Endpoint, c[1].URL, c[1].S3Endpoint, a)
		}
	}
}

// TestPatchMovesS3Store: a PATCH of s3Endpoint moves the storage to
// another store holding two of the same keys. Those are other objects: the
// next scan reads every tile again (none reused, though the state knew
// each key and versitygw's ETags, the contents' MD5, are the same), the
// download links given for the first store stop working, and the scan
// after it reuses every tile. A scan the scheduler started from the record
// as it was before the move does nothing but queue one of the record as
// it is.
func TestPatchMovesS3Store(t *testing.T) {
	const bucket = "pcrs"
	a, b := servertest.VersityGW(t, bucket), servertest.VersityGW(t, bucket)
	files := tileFiles(t, t.TempDir(), 3)
	files["dalles/bad.tif"] = []byte("II*\x00 the first store's broken tile")
	uploadS3(t, a, bucket, "livraison/", files)
	delete(files, "dalles/t2.tif") // 2 of 3: the scan after the move says where it read
	files["dalles/bad.tif"] = []byte("II*\x00 the second store's broken tile")
	uploadS3(t, b, bucket, "livraison/", files)
	var scans *scanWatch
	svc, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey},
		func(s *Service) { scans = watchScans(s) })
	id := register(t, api.URL, fmt.Sprintf(`{"url": "s3://pcrs/livraison/", "s3Endpoint": %q, "s3Region": "us-east-1", "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`,
		a.Endpoint, a.Access, a.Secret))
	scans.await(t, id, 1)
	before, err := svc.get(id)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := shareOf(t, api.URL, id)
	_, links, raw := linksFor(t, api.URL, id, key, "dalles/bad.tif")
	first := links["dalles/bad.tif"]
	if code, got := call(t, "GET", api.URL+first, "", ""); code != http.StatusOK || !strings.Contains(string(got), "first store") {
		t.Fatalf("the first store's link: %d %q (links %s)", code, got, raw)
	}

	code, raw := call(t, "PATCH", api.URL+"/storages/"+id, adminToken, fmt.Sprintf(`{"s3Endpoint": %q}`, b.Endpoint))
	if code != http.StatusOK {
		t.Fatalf("PATCH s3Endpoint: %d %s", code, raw)
	}
	scans.await(t, id, 2)
	v, raw := storageView(t, api.URL, id)
	if v.S3Endpoint != b.Endpoint || v.LastCounts == nil || v.LastCounts.Readable != 2 || v.LastCounts.Reused != 0 {
		t.Errorf("after the move: %s, want 2 tiles read from %s, none reused", raw, b.Endpoint)
	}
	if code, got := call(t, "GET", api.URL+first, "", ""); code != http.StatusForbidden {
		t.Errorf("the first store's link after the move: %d %q, want 403", code, got)
	}
	_, links, _ = linksFor(t, api.URL, id, key, "dalles/bad.tif")
	if code, got := call(t, "GET", api.URL+links["dalles/bad.tif"], "", ""); code != http.StatusOK || !strings.Contains(string(got), "second store") {
		t.Errorf("a link given after the move: %d %q, want the second store's file", code, got)
	}
	if code, raw := call(t, "POST", api.URL+"/storages/"+id+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Fatalf("scan: %d %s", code, raw)
	}
	scans.await(t, id, 3)
	if v, raw := storageView(t, api.URL, id); v.LastCounts == nil || v.LastCounts.Reused != 2 {
		t.Errorf("the scan after: %s, want the 2 tiles reused", raw)
	}

	// The stale scan reads nothing and writes nothing (it would fill the
	// state with the first store's three tiles), and the scan it queues
	// in its place reads the second store.
	svc.scan(context.Background(), *before, &progress{})
	scans.await(t, id, 4)
	if n, err := svc.objects(id).Len(); err != nil || n != 3 {
		t.Errorf("state after a stale scan: %d records, %v; want the 3 objects of the second store", n, err)
	}
	if v, raw := storageView(t, api.URL, id); v.LastCounts == nil || v.LastCounts.Readable != 2 || v.LastCounts.Reused != 2 {
		t.Errorf("after the stale scan and the one it queued: %s, want the second store's 2 tiles, reused", raw)
	}
}

// twinStores are two S3 stores (versitygw) holding the same three tiles
// at s3://pcrs/livraison/.
func twinStores(t *testing.T) (a, b servertest.S3Server) {
	t.Helper()
	const bucket = "pcrs"
	a, b = servertest.VersityGW(t, bucket), servertest.VersityGW(t, bucket)
	files := tileFiles(t, t.TempDir(), 3)
	uploadS3(t, a, bucket, "livraison/", files)
	uploadS3(t, b, bucket, "livraison/", files)
	return a, b
}

// TestServiceEndpointMovesStorages: a storage without an endpoint of its
// own follows the service's --s3-endpoint; restarted with another one, the
// service finds the storage's state describing the first store, clears it,
// and reads every tile again.
func TestServiceEndpointMovesStorages(t *testing.T) {
	a, b := twinStores(t)
	data := t.TempDir()
	cfg := Config{DataDir: data, AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey, S3Endpoint: a.Endpoint, Registry: backends.Registry()}
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scans := watchScans(first)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { first.Run(ctx); close(done) }()
	api := httptest.NewServer(first.Handler())
	id := register(t, api.URL, fmt.Sprintf(`{"url": "s3://pcrs/livraison/", "s3Region": "us-east-1", "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`, a.Access, a.Secret))
	scans.await(t, id, 1)
	api.Close()
	cancel()
	<-done
	first.Close()

	cfg.S3Endpoint = b.Endpoint
	var again *scanWatch
	_, api2, _ := newService(t, cfg, func(s *Service) { again = watchScans(s) })
	if code, raw := call(t, "POST", api2.URL+"/storages/"+id+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Fatalf("scan: %d %s", code, raw)
	}
	again.await(t, id, 1)
	if v, raw := storageView(t, api2.URL, id); v.LastCounts == nil || v.LastCounts.Readable != 3 || v.LastCounts.Reused != 0 {
		t.Errorf("after the service's endpoint changed: %s, want 3 tiles read again, none reused", raw)
	}
}

// heldStorage holds every listing until its context ends while hold is
// set, and says when one is held: a scan that stays running as long as a
// test needs, without timing.
type heldStorage struct {
	storage.Storage
	hold    *atomic.Bool
	listing chan<- struct{}
}

func (h heldStorage) List(ctx context.Context, cursor string) (storage.Page, error) {
	if !h.hold.Load() {
		return h.Storage.List(ctx, cursor)
	}
	select {
	case h.listing <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return storage.Page{}, ctx.Err()
}

// TestPatchStopsTheOldScan: a PATCH moving a storage to another store
// while a scan of the first one runs stops that scan, which publishes
// nothing; the scan of the new store follows.
func TestPatchStopsTheOldScan(t *testing.T) {
	a, b := twinStores(t)
	var hold atomic.Bool
	listing := make(chan struct{}, 1)
	reg := backends.Registry()
	reg.Register("s3", func(ctx context.Context, loc *url.URL, opts storage.Options) (storage.Storage, error) {
		st, err := s3.Open(ctx, loc, opts)
		if err != nil || opts.S3Endpoint != a.Endpoint {
			return st, err
		}
		return heldStorage{st, &hold, listing}, nil
	})
	var scans *scanWatch
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true, SecretKey: testKey, Registry: reg},
		func(s *Service) { scans = watchScans(s) })
	id := register(t, api.URL, fmt.Sprintf(`{"url": "s3://pcrs/livraison/", "s3Endpoint": %q, "s3Region": "us-east-1", "credentials": {"s3AccessKey": %q, "s3SecretKey": %q}}`,
		a.Endpoint, a.Access, a.Secret))
	scans.await(t, id, 1)

	hold.Store(true)
	if code, raw := call(t, "POST", api.URL+"/storages/"+id+"/scan", adminToken, ""); code != http.StatusAccepted {
		t.Fatalf("scan: %d %s", code, raw)
	}
	select { // the second scan is listing the first store
	case <-listing:
	case <-time.After(time.Minute):
		t.Fatal("the second scan never listed the first store")
	}
	if code, raw := call(t, "PATCH", api.URL+"/storages/"+id, adminToken, fmt.Sprintf(`{"s3Endpoint": %q}`, b.Endpoint)); code != http.StatusOK {
		t.Fatalf("PATCH s3Endpoint: %d %s", code, raw)
	}
	scans.await(t, id, 3) // the stopped one, then the new store's
	_, metrics := call(t, "GET", api.URL+"/metrics", "", "")
	for _, outcome := range []string{"success", "failed", "incomplete"} {
		want := map[string]string{"success": " 2\n"}[outcome]
		series := `pcrs_indexer_scans_total{outcome="` + outcome + `",storage="` + id + `"}`
		line := ""
		if i := bytes.Index(metrics, []byte(series)); i >= 0 {
			line = string(metrics[i+len(series):])
			line = line[:strings.IndexByte(line, '\n')+1]
		}
		if line != want {
			t.Errorf("%s = %q, want %q: the stopped scan counts as no outcome", series, line, want)
		}
	}
	if v, raw := storageView(t, api.URL, id); v.LastCounts == nil || v.LastCounts.Readable != 3 || v.LastCounts.Reused != 0 || v.S3Endpoint != b.Endpoint {
		t.Errorf("after the move: %s, want the new store's 3 tiles, none reused", raw)
	}
}

// TestAllowShrink: a delivery that really shrank is refused as shrunk, its
// outputs kept, with a sentence saying how to accept it; the admin's
// allowShrink lets the next scan publish it, once.
func TestAllowShrink(t *testing.T) {
	tiles, dir := tileServer(t, "")
	var scans *scanWatch
	_, api, _ := newService(t, Config{AdminToken: adminToken, AllowPrivateNetworks: true}, func(s *Service) { scans = watchScans(s) })
	id := register(t, api.URL, fmt.Sprintf(`{"url": %q}`, tiles.URL+"/tiles/"))
	scans.await(t, id, 1)
	for _, name := range []string{"t0.tif", "t1.tif"} {
		if err := os.Remove(filepath.Join(dir, "dalles", name)); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(query string, want int) view {
		t.Helper()
		code, raw := call(t, "POST", api.URL+"/storages/"+id+"/scan"+query, adminToken, "")
		if code != want {
			t.Fatalf("POST scan%s: %d %s, want %d", query, code, raw, want)
		}
		return decode(t, raw).view
	}
	scan("", http.StatusAccepted)
	scans.await(t, id, 2)
	v, raw := storageView(t, api.URL, id)
	if v.LastProblem == nil || v.LastProblem.Code != CodeShrunk || !strings.Contains(v.LastProblem.Message, "allowShrink=true") || v.LastCounts.Readable != 1 {
		t.Errorf("a shrunk delivery: %s, want %s saying how to accept it", raw, CodeShrunk)
	}
	if _, report := call(t, "GET", api.URL+"/storages/"+id+"/report", "", ""); !bytes.Contains(report, []byte(`"readable": 3`)) {
		t.Errorf("the outputs were replaced by the shrunk scan:\n%.300s", report)
	}
	scan("?allowShrink=maybe", http.StatusBadRequest)
	if v := scan("?allowShrink=true", http.StatusAccepted); !v.AllowShrink {
		t.Error("the storage does not show the shrink allowed")
	}
	scans.await(t, id, 3)
	v, raw = storageView(t, api.URL, id)
	if v.LastProblem != nil || v.LastCounts.Readable != 1 || v.AllowShrink {
		t.Errorf("the allowed scan: %s, want 1 tile published and the permission used", raw)
	}
	if _, report := call(t, "GET", api.URL+"/storages/"+id+"/report", "", ""); !bytes.Contains(report, []byte(`"readable": 1`)) {
		t.Errorf("the outputs were not replaced:\n%.300s", report)
	}
}
