package servertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	HostKey    string     // the server's private host key file

	bin, dir, conf string
	pgid           int
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
func Sshd(t testing.TB) SSHServer { return SshdWith(t) }

// SshdWith is Sshd with extra settings, which override the usual ones
// (sshd keeps the first value of a keyword).
func SshdWith(t testing.TB, extra ...string) SSHServer {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := SSHServer{Port: FreePort(t), ClientKey: filepath.Join(dir, "client_key"), HostKey: filepath.Join(dir, "host_key"),
		bin: Binary(t, "sshd", "/usr/sbin/sshd"), dir: dir}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
	s.Signer = NewKey(t, s.ClientKey)
	WriteFile(t, dir, "authorized_keys", string(ssh.MarshalAuthorizedKey(s.Signer.PublicKey())))
	s.trust(t, NewKey(t, s.HostKey))
	s.conf = WriteFile(t, dir, "sshd_config", lines(append(extra,
		fmt.Sprintf("Port %d", s.Port),
		"ListenAddress 127.0.0.1",
		"HostKey "+s.HostKey,
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
	)...))
	s.pgid = Start(t, s.Port, s.bin, "-D", "-e", "-f", s.conf)
	return s
}

// trust makes KnownHosts trust host, and only it.
func (s *SSHServer) trust(t testing.TB, host ssh.Signer) {
	s.KnownHosts = WriteFile(t, s.dir, "known_hosts", knownhosts.Line([]string{s.Addr}, host.PublicKey())+"\n")
}

// NewHostKey restarts the server on the same port with a fresh host key,
// as an administrator replacing it would; KnownHosts trusts the new one.
func (s *SSHServer) NewHostKey(t testing.TB) {
	t.Helper()
	_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	if left := awaitGroupGone(s.pgid, 10*time.Second); len(left) > 0 {
		t.Fatalf("sshd processes %v outlived SIGKILL", left)
	}
	s.trust(t, NewKey(t, s.HostKey))
	s.pgid = Start(t, s.Port, s.bin, "-D", "-e", "-f", s.conf)
}

// HostFingerprint is the host key's fingerprint as ssh-keygen -l prints
// it ("SHA256:…"), read by ssh-keygen itself.
func (s *SSHServer) HostFingerprint(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(Binary(t, "ssh-keygen", "/usr/bin/ssh-keygen"), "-l", "-E", "sha256", "-f", s.HostKey).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v", err)
	}
	f := strings.Fields(string(out)) // "256 SHA256:… comment (ED25519)"
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l printed %q", out)
	}
	return f[1]
}
