package sftp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
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
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// passwordServer is an in-process SSH server accepting one user by
// password and serving SFTP: OpenSSH here runs as root without PAM, so a
// password login is tested against this double.
func passwordServer(t *testing.T, user, password string) (addr, knownHostsFile string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if c.User() == user && string(pw) == password {
			return nil, nil
		}
		return nil, errors.New("denied")
	}}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
			go serveSFTP(c, cfg)
		}
	}()
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(knownhosts.Line([]string{l.Addr().String()}, hostKey.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l.Addr().String(), known
}

func serveSFTP(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem" && strings.HasSuffix(string(req.Payload), "sftp")
				_ = req.Reply(ok, nil)
				if ok {
					if srv, err := pkgsftp.NewServer(ch, pkgsftp.ReadOnly()); err == nil {
						_ = srv.Serve()
					}
					ch.Close()
				}
			}
		}()
	}
}

func TestPasswordAuth(t *testing.T) {
	const password = "sftp-pw-31f7"
	addr, known := passwordServer(t, "owner", password)
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"dalles/a.tif": []byte("abcdef")}, storagetest.ModTime)
	t.Setenv("SSH_AUTH_SOCK", "")
	u := &url.URL{Scheme: "sftp", User: url.User("owner"), Host: addr, Path: root}
	s, err := sftp.Open(context.Background(), u, storage.Options{Password: password, SFTPKnownHosts: known})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.Stat(context.Background(), "dalles/a.tif"); err != nil || o.Size != 6 {
		t.Errorf("stat with password auth: %+v %v", o, err)
	}
	_, err = sftp.Open(context.Background(), u, storage.Options{Password: "wrong", SFTPKnownHosts: known})
	var auth *sftp.AuthError
	if !errors.As(err, &auth) || errors.Is(err, storage.ErrTransient) || strings.Contains(err.Error(), "password: wrong") {
		t.Errorf("wrong password: err = %v, want a final AuthError", err)
	}
}
