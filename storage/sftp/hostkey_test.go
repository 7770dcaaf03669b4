package sftp_test

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"golang.org/x/crypto/ssh"
)

// privatePEM is the PEM of the key file's private key, encrypted with
// passphrase when one is given.
func privatePEM(t *testing.T, file, passphrase string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if passphrase == "" {
		return string(raw)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// TestHostKeyPinned: isolated, the backend trusts only the host key it is
// given (fingerprint or key line); without one it names the key presented
// for the owner to confirm, with the fingerprint ssh-keygen prints.
func TestHostKeyPinned(t *testing.T) {
	srv := servertest.Sshd(t)
	other := servertest.Sshd(t)
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"a.tif": []byte("abc")}, storagetest.ModTime)
	fp := srv.HostFingerprint(t)
	opts := storage.Options{Isolated: true, SFTPPrivateKey: privatePEM(t, srv.ClientKey, "")}
	ctx := context.Background()

	_, err := sftp.Open(ctx, location(srv, root), opts)
	var unknown *sftp.HostKeyUnknownError
	if !errors.As(err, &unknown) || unknown.Fingerprint != fp || unknown.Type != ssh.KeyAlgoED25519 || errors.Is(err, storage.ErrTransient) {
		t.Fatalf("no host key given: %v (%+v), want the key presented, %s", err, unknown, fp)
	}
	if !strings.Contains(err.Error(), fp) {
		t.Errorf("the error does not name the fingerprint: %v", err)
	}

	knownLine, err := os.ReadFile(srv.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	for name, pinned := range map[string]string{"fingerprint": fp, "known_hosts line": string(knownLine), "authorized key": unknown.Key} {
		opts.SFTPHostKey = pinned
		s, err := sftp.Open(ctx, location(srv, root), opts)
		if err != nil {
			t.Errorf("pinned by %s: %v", name, err)
			continue
		}
		if o, err := s.Stat(ctx, "a.tif"); err != nil || o.Size != 3 {
			t.Errorf("pinned by %s: stat %+v %v", name, o, err)
		}
		s.Close()
	}

	opts.SFTPHostKey = other.HostFingerprint(t)
	_, err = sftp.Open(ctx, location(srv, root), opts)
	var mismatch *sftp.HostKeyMismatchError
	if !errors.As(err, &mismatch) || mismatch.Presented != fp || len(mismatch.Expected) != 1 || mismatch.Expected[0] != opts.SFTPHostKey || errors.Is(err, storage.ErrTransient) {
		t.Errorf("another host key: %v (%+v)", err, mismatch)
	}
	for _, bad := range []string{"SHA256:nope", "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", "ssh-ed25519 garbage"} {
		opts.SFTPHostKey = bad
		if _, err := sftp.Open(ctx, location(srv, root), opts); !errors.Is(err, sftp.ErrHostKeyInvalid) {
			t.Errorf("host key %q: %v, want ErrHostKeyInvalid", bad, err)
		}
	}
}

// TestKeyRefused: a key the server does not authorize is an AuthError,
// final, naming the method tried.
func TestKeyRefused(t *testing.T) {
	srv := servertest.Sshd(t)
	stranger := filepath.Join(t.TempDir(), "stranger")
	servertest.NewKey(t, stranger)
	opts := storage.Options{Isolated: true, SFTPPrivateKey: privatePEM(t, stranger, ""), SFTPHostKey: srv.HostFingerprint(t)}
	_, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	var auth *sftp.AuthError
	if !errors.As(err, &auth) || errors.Is(err, storage.ErrTransient) || len(auth.Methods) != 1 || auth.Methods[0] != "publickey" {
		t.Fatalf("unauthorized key: %v (%+v), want a final AuthError after publickey", err, auth)
	}
}

// TestEncryptedKey: a PEM key given as content, encrypted, opens with its
// passphrase; a missing or wrong passphrase and an unreadable key are told
// apart, and no error quotes the key.
func TestEncryptedKey(t *testing.T) {
	srv := servertest.Sshd(t)
	const passphrase = "phrase-de-passe-8a1f"
	locked := privatePEM(t, srv.ClientKey, passphrase)
	opts := storage.Options{Isolated: true, SFTPPrivateKey: locked, SFTPKeyPassphrase: passphrase, SFTPHostKey: srv.HostFingerprint(t)}
	s, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	if err != nil {
		t.Fatalf("encrypted key with its passphrase: %v", err)
	}
	s.Close()
	for name, o := range map[string]storage.Options{
		"no passphrase":    {Isolated: true, SFTPPrivateKey: locked},
		"wrong passphrase": {Isolated: true, SFTPPrivateKey: locked, SFTPKeyPassphrase: "wrong"},
	} {
		o.SFTPHostKey = opts.SFTPHostKey
		if _, err := sftp.Open(context.Background(), location(srv, "/"), o); !errors.Is(err, sftp.ErrKeyPassphrase) {
			t.Errorf("%s: %v, want ErrKeyPassphrase", name, err)
		}
	}
	garbage := "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcy0zOWE=\n-----END OPENSSH PRIVATE KEY-----\n"
	_, err = sftp.Open(context.Background(), location(srv, "/"), storage.Options{Isolated: true, SFTPPrivateKey: garbage, SFTPHostKey: opts.SFTPHostKey})
	if !errors.Is(err, sftp.ErrKeyUnreadable) || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("unreadable key: %v, want ErrKeyUnreadable without the key", err)
	}
}

// TestPasswordRefusedByOpenSSH: OpenSSH offering password and
// keyboard-interactive without PAM answers keyboard-interactive with a
// plain failure, which the SSH library reports as "unexpected message
// type 51 (expected 60)": it is told as what it is, refused credentials.
func TestPasswordRefusedByOpenSSH(t *testing.T) {
	srv := servertest.SshdWith(t, "PasswordAuthentication yes", "KbdInteractiveAuthentication yes", "PermitEmptyPasswords no")
	opts := storage.Options{Isolated: true, Password: "not-the-password-5c", SFTPHostKey: srv.HostFingerprint(t)}
	_, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	var auth *sftp.AuthError
	if !errors.As(err, &auth) || errors.Is(err, storage.ErrTransient) {
		t.Fatalf("wrong password: %v, want a final AuthError", err)
	}
	// The case of the issue, reproduced (the test reads the library's text;
	// the backend never does).
	if !strings.Contains(auth.Err.Error(), "unexpected message type 51 (expected 60)") {
		t.Logf("OpenSSH's refusal took another form this time: %v", auth.Err)
	}
	if strings.Contains(err.Error(), "not-the-password-5c") {
		t.Error("the error quotes the password")
	}
}
