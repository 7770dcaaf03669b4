package ftp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// selfSigned writes a certificate for 127.0.0.1, its own issuer, and its
// key as PEM files into a fresh folder, and returns them with a pool that
// trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pcrs-indexer test FTPS"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// vsftpdTLSTree serves files with vsftpd, TLS forced on login and data,
// and returns its ftps:// URL and a pool trusting its certificate.
func vsftpdTLSTree(t *testing.T, files map[string][]byte) (*url.URL, *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := selfSigned(t)
	root := t.TempDir()
	servertest.WriteTree(t, root, files, storagetest.ModTime)
	u, err := url.Parse(servertest.VsftpdTLS(t, root, certFile, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	return u, pool
}

func TestConformanceVsftpdTLS(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true, ModTimePrecision: 24 * time.Hour}, func(t *testing.T, files map[string][]byte) storage.Storage {
		u, pool := vsftpdTLSTree(t, files)
		defer ftp.SetRootCAs(pool)()
		s, err := ftp.Open(context.Background(), u, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFTPSDataChannel: with TLS forced on the data connections, a listing,
// ranged reads (one cut short, one to the end) and a stat are served, over
// one control connection whose data connections each resume its session.
func TestFTPSDataChannel(t *testing.T) {
	u, pool := vsftpdTLSTree(t, map[string][]byte{"d/a.tif": []byte("abcdef"), "d/e/b.tif": nil})
	defer ftp.SetRootCAs(pool)()
	proxy := servertest.NewProxy(t, u.Host, 0) // counts the control connections
	u.Host = proxy.Addr
	s, err := ftp.Open(context.Background(), u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A data channel left in plaintext waits for the server, which waits
	// for a TLS handshake: each request's deadline turns that into a
	// failure of its own.
	bounded := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	page, err := s.List(bounded(), "d")
	if err != nil || len(page.Dirs) != 1 || page.Dirs[0] != "d/e" || len(page.Objects) != 1 || page.Objects[0].Key != "d/a.tif" || page.Objects[0].Size != 6 {
		t.Errorf("list: %+v, %v; want d/e and d/a.tif of 6 bytes", page, err)
	}
	p := make([]byte, 3)
	if n, err := s.ReadAt(bounded(), "d/a.tif", p, 2); err != nil || string(p[:n]) != "cde" {
		t.Errorf("read cut short: %q, %v; want \"cde\"", p[:n], err)
	}
	p = make([]byte, 8)
	if n, err := s.ReadAt(bounded(), "d/a.tif", p, 1); !errors.Is(err, io.EOF) || string(p[:n]) != "bcdef" {
		t.Errorf("read to the end: %q, %v; want \"bcdef\", EOF", p[:n], err)
	}
	if o, err := s.Stat(bounded(), "d/a.tif"); err != nil || o.Size != 6 {
		t.Errorf("stat: %+v, %v; want 6 bytes", o, err)
	}
	if n := proxy.Accepted(); n != 1 {
		t.Errorf("%d control connections, want one", n)
	}
}

// TestFTPSListingBound: the listing bound counts the listing's lines, not
// the TLS records' bytes they arrive in.
func TestFTPSListingBound(t *testing.T) {
	const n = 150
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("d/tile-%03d.tif", i)] = []byte("x")
	}
	u, pool := vsftpdTLSTree(t, files)
	defer ftp.SetRootCAs(pool)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := ftp.Open(ctx, u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	restore := ftp.SetListBounds(1<<30, n)
	page, err := s.List(ctx, "d")
	restore()
	if err != nil || len(page.Objects) != n {
		t.Errorf("%d lines, bound %d: %d objects, %v; want all", n, n, len(page.Objects), err)
	}
	defer ftp.SetListBounds(1<<30, n-1)()
	if _, err := s.List(ctx, "d"); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("%d lines, bound %d: err = %v, want ErrTooLarge", n, n-1, err)
	}
}

// TestFTPSUntrustedCertificate: a certificate the roots do not vouch for
// fails the opening, finally (no retry fixes it), saying why.
func TestFTPSUntrustedCertificate(t *testing.T) {
	u, _ := vsftpdTLSTree(t, nil)
	_, _, other := selfSigned(t)
	for name, pool := range map[string]*x509.CertPool{"system roots": nil, "another CA": other} {
		restore := ftp.SetRootCAs(pool)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := ftp.Open(ctx, u, storage.Options{})
		cancel()
		restore()
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: err = %v, want a final certificate verification error", name, err)
		}
	}
}
