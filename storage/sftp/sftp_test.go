package sftp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"golang.org/x/crypto/ssh/agent"
)

func location(srv servertest.SSHServer, root string) *url.URL {
	return &url.URL{Scheme: "sftp", User: url.User(currentUser()), Host: srv.Addr, Path: root}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func TestConformanceOpenSSH(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true}, func(t *testing.T, files map[string][]byte) storage.Storage {
		srv := servertest.Sshd(t)
		root := t.TempDir()
		servertest.WriteTree(t, root, files, storagetest.ModTime)
		s, err := sftp.Open(context.Background(), location(srv, root), storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: srv.KnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestHostKeyChecked(t *testing.T) {
	srv := servertest.Sshd(t)
	other := servertest.Sshd(t) // its known_hosts names another key
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	raw, _ := os.ReadFile(other.KnownHosts)
	if err := os.WriteFile(wrong, []byte(strings.Replace(string(raw), fmt.Sprint(other.Port), fmt.Sprint(srv.Port), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: wrong}
	_, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	var mismatch *sftp.HostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("mismatched host key: err = %v, want a HostKeyMismatchError", err)
	}
	// Both fingerprints, as ssh-keygen -l prints them.
	if presented, expected := srv.HostFingerprint(t), other.HostFingerprint(t); mismatch.Presented != presented ||
		len(mismatch.Expected) != 1 || mismatch.Expected[0] != expected || !strings.Contains(err.Error(), presented) || !strings.Contains(err.Error(), expected) {
		t.Errorf("mismatch: %+v (%v), want presented %s, expected %s", mismatch, err, presented, expected)
	}
	if errors.Is(err, storage.ErrTransient) {
		t.Error("a host key mismatch must not be retried")
	}
	opts.SFTPInsecureIgnoreHostKey = true
	s, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	if err != nil {
		t.Fatalf("with --sftp-insecure-ignore-host-key: %v", err)
	}
	s.Close()
}

// TestAgentAuth: the key is only in an SSH agent.
func TestAgentAuth(t *testing.T) {
	srv := servertest.Sshd(t)
	keyring := agent.NewKeyring()
	priv, err := os.ReadFile(srv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := addKey(keyring, priv); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", serveAgent(t, keyring))
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"a.tif": []byte("abc")}, storagetest.ModTime)
	s, err := sftp.Open(context.Background(), location(srv, root), storage.Options{SFTPKnownHosts: srv.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.Stat(context.Background(), "a.tif"); err != nil || o.Size != 3 {
		t.Errorf("stat through agent auth: %+v, %v", o, err)
	}
}

func TestNoCredentials(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err := sftp.Open(context.Background(), &url.URL{Scheme: "sftp", Host: "127.0.0.1:1", Path: "/"}, storage.Options{SFTPInsecureIgnoreHostKey: true})
	if !errors.Is(err, sftp.ErrNoCredentials) {
		t.Errorf("err = %v", err)
	}
}

// TestReconnectsAfterDrop: a dropped session is reported transient, and the
// next request reconnects.
func TestReconnectsAfterDrop(t *testing.T) {
	srv := servertest.Sshd(t)
	proxy := servertest.NewProxy(t, srv.Addr, 0)
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"a.tif": []byte("abcdef")}, storagetest.ModTime)
	s := openBehind(t, srv, proxy, root)
	storagetest.SurvivesDrops(t, s, proxy.CutAll, "a.tif", []byte("abcdef"))
	if proxy.Accepted() < 2 {
		t.Errorf("%d connections: the storage did not reconnect", proxy.Accepted())
	}
}

// serveAgent serves keyring as an SSH agent on a Unix socket for the
// test's duration and returns the socket's path.
func serveAgent(t *testing.T, keyring agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	return sock
}

// openBehind opens root on srv through proxy, the proxy's address known
// under srv's host key; closed with the test.
func openBehind(t *testing.T, srv servertest.SSHServer, proxy *servertest.Proxy, root string) storage.Storage {
	t.Helper()
	known := filepath.Join(t.TempDir(), "known_hosts")
	raw, _ := os.ReadFile(srv.KnownHosts)
	_, port, _ := net.SplitHostPort(proxy.Addr)
	if err := os.WriteFile(known, []byte(strings.Replace(string(raw), fmt.Sprint(srv.Port), port, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "sftp", User: url.User(currentUser()), Host: proxy.Addr, Path: root}
	s, err := sftp.Open(context.Background(), u, storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: known})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
