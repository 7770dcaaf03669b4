package servertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is an OpenSSH sshd serving SFTP only.
type SSHServer struct {
	Addr       string
	Port       int
	KnownHosts string     // a known_hosts file trusting this server
	ClientKey  string     // a private key file it accepts
	Signer     ssh.Signer // the same key, for agents
}

// NewKey makes an ed25519 key pair and writes the private key to file.
func NewKey(t testing.TB, file string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// Sshd starts OpenSSH's sshd on a free port with its own host key, letting
// the current user in with a fresh client key, SFTP only.
func Sshd(t testing.TB) SSHServer {
	t.Helper()
	bin := Binary(t, "sshd", "/usr/sbin/sshd")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v", err)
	}
	dir := t.TempDir()
	host := NewKey(t, filepath.Join(dir, "host_key"))
	s := SSHServer{Port: FreePort(t), ClientKey: filepath.Join(dir, "client_key")}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
	s.Signer = NewKey(t, s.ClientKey)
	WriteFile(t, dir, "authorized_keys", string(ssh.MarshalAuthorizedKey(s.Signer.PublicKey())))
	s.KnownHosts = WriteFile(t, dir, "known_hosts", knownhosts.Line([]string{s.Addr}, host.PublicKey())+"\n")
	conf := WriteFile(t, dir, "sshd_config", lines(
		fmt.Sprintf("Port %d", s.Port),
		"ListenAddress 127.0.0.1",
		"HostKey "+filepath.Join(dir, "host_key"),
		"PidFile "+filepath.Join(dir, "sshd.pid"),
		"StrictModes no",
		"UsePAM no",
		"PermitRootLogin yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthorizedKeysFile "+filepath.Join(dir, "authorized_keys"),
		"Subsystem sftp internal-sftp",
		"ForceCommand internal-sftp",
		"MaxSessions 64",
		"MaxStartups 64",
	))
	Start(t, s.Port, bin, "-D", "-e", "-f", conf)
	return s
}
