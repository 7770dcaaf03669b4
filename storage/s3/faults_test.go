package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
)

// cuttingProxy forwards every request to target (Host kept, so that
// signatures hold) and cuts the body of the first ranged GET after cut
// bytes, as a dropped connection does. gets counts ranged GETs.
func cuttingProxy(t *testing.T, target string, cut int64) (endpoint string, gets *atomic.Int32) {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	gets = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = tu.Scheme, tu.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" && gets.Add(1) == 1 {
			_, _ = io.CopyN(w, resp.Body, cut)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // closes the connection mid-body
		}
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, gets
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// TestBodyCutIsRetried: a ranged GET whose body stops before the bytes
// asked for (and before the object's end) is a transient failure, which
// the retrying decorator retries; the object's real end stays io.EOF.
func TestBodyCutIsRetried(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	content := randomBytes(200_000)
	upload(t, srv, "", map[string][]byte{"dalles/a.jp2": content})
	ctx := context.Background()
	open := func(endpoint string) storage.Storage {
		st, err := s3.Open(ctx, &url.URL{Scheme: "s3", Host: bucket}, storage.Options{
			S3Endpoint: endpoint, S3PathStyle: true, S3AccessKey: srv.Access, S3SecretKey: srv.Secret, Isolated: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}

	t.Run("transient", func(t *testing.T) {
		endpoint, _ := cuttingProxy(t, srv.Endpoint, 1000)
		p := make([]byte, 50_000)
		n, err := open(endpoint).ReadAt(ctx, "dalles/a.jp2", p, 4096)
		if !errors.Is(err, storage.ErrTransient) || errors.Is(err, io.EOF) {
			t.Errorf("cut body: n=%d err=%v, want a transient error, not EOF", n, err)
		}
	})

	t.Run("retried", func(t *testing.T) {
		endpoint, gets := cuttingProxy(t, srv.Endpoint, 1000)
		var requests storage.Counter
		st := storage.Retrying(storage.Observed(open(endpoint), &requests), storage.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond})
		p := make([]byte, 50_000)
		n, err := st.ReadAt(ctx, "dalles/a.jp2", p, 4096)
		if err != nil || n != len(p) || !bytes.Equal(p, content[4096:4096+len(p)]) {
			t.Fatalf("read n=%d err=%v (bytes equal: %v)", n, err, bytes.Equal(p[:n], content[4096:4096+n]))
		}
		if requests.Requests() != 2 || gets.Load() != 2 {
			t.Errorf("%d requests counted, %d GETs reached the store; want 2 and 2 (one cut, one retry)", requests.Requests(), gets.Load())
		}
	})

	t.Run("realEndIsEOF", func(t *testing.T) {
		endpoint, _ := cuttingProxy(t, srv.Endpoint, 1<<30) // never cuts
		p := make([]byte, 1000)
		n, err := open(endpoint).ReadAt(ctx, "dalles/a.jp2", p, int64(len(content)-300))
		if n != 300 || err != io.EOF || !bytes.Equal(p[:n], content[len(content)-300:]) {
			t.Errorf("read across the end: n=%d err=%v, want 300 and io.EOF", n, err)
		}
	})
}

// storeDouble answers every S3 request with an empty listing, recording
// the Authorization headers it got.
type storeDouble struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
}

func newStoreDouble(t *testing.T) *storeDouble {
	d := &storeDouble{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.auths = append(d.auths, r.Header.Get("Authorization"))
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>pcrs</Name><IsTruncated>false</IsTruncated></ListBucketResult>`)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *storeDouble) authorizations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.auths...)
}

// TestIsolatedIgnoresEnvironment: the service's own AWS settings point at
// a store double standing for "somewhere else"; an isolated storage never
// reaches it, signs with its own keys only, and is anonymous without keys.
func TestIsolatedIgnoresEnvironment(t *testing.T) {
	env := newStoreDouble(t)
	dir := t.TempDir()
	config := servertest.WriteFile(t, dir, "config", "[default]\nregion = eu-west-3\nendpoint_url = "+env.URL+"\n")
	creds := servertest.WriteFile(t, dir, "credentials", "[default]\naws_access_key_id = file-key\naws_secret_access_key = file-secret\n")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": env.URL, "AWS_ENDPOINT_URL_S3": env.URL,
		"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_REGION": "eu-west-3",
		"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": creds,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": env.URL,
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	list := func(opts storage.Options) error {
		st, err := s3.Open(ctx, &url.URL{Scheme: "s3", Host: "pcrs"}, opts)
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = st.List(ctx, "")
		return err
	}

	own := newStoreDouble(t)
	if err := list(storage.Options{Isolated: true, S3Endpoint: own.URL, S3PathStyle: true, S3AccessKey: "own-key", S3SecretKey: "own-secret"}); err != nil {
		t.Fatal(err)
	}
	if err := list(storage.Options{Isolated: true, S3Endpoint: own.URL, S3PathStyle: true}); err != nil {
		t.Fatal(err)
	}
	auths := own.authorizations()
	if len(auths) != 2 || !strings.Contains(auths[0], "Credential=own-key/") || !strings.Contains(auths[0], "/us-east-1/s3/") || auths[1] != "" {
		t.Errorf("authorizations %q: want the storage's own keys (region us-east-1), then anonymous", auths)
	}
	if n := len(env.authorizations()); n != 0 {
		t.Errorf("the environment's endpoint got %d requests from isolated storages", n)
	}

	// The same environment does steer a storage that is not isolated: the
	// check above is not vacuous.
	if err := list(storage.Options{S3PathStyle: true}); err != nil {
		t.Fatal(err)
	}
	if got := env.authorizations(); len(got) != 1 || !strings.Contains(got[0], "Credential=env-key/") {
		t.Errorf("not isolated: the environment's endpoint got %q, want one request signed with env-key", got)
	}
}

// TestGuardedDial: the guard is on the S3 client's connections; an
// allowed address is connected to, a refused one is not, finally.
func TestGuardedDial(t *testing.T) {
	own := newStoreDouble(t)
	ctx := context.Background()
	for _, tc := range []struct {
		guard *netguard.Guard
		ok    bool
	}{
		{&netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, true},
		{&netguard.Guard{}, false},
	} {
		st, err := s3.Open(ctx, &url.URL{Scheme: "s3", Host: "pcrs"}, storage.Options{Isolated: true, S3Endpoint: own.URL, S3PathStyle: true, Guard: tc.guard})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.List(ctx, "")
		st.Close()
		switch {
		case tc.ok && err != nil:
			t.Errorf("allowed: %v", err)
		case !tc.ok && (!errors.Is(err, netguard.ErrRefused) || errors.Is(err, storage.ErrTransient)):
			t.Errorf("refused: err = %v, want a final netguard.ErrRefused", err)
		}
	}
	if n := len(own.authorizations()); n != 1 {
		t.Errorf("the store got %d requests, want 1 (the allowed one)", n)
	}
}
