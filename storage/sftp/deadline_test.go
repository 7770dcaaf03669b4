package sftp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// silentServer accepts TCP connections and never says a word. Each
// accepted connection is sent on the returned channel.
func silentServer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	l, ch := servertest.Listen(t, "127.0.0.1", nil)
	return l.Addr().String(), ch
}

// closedByClient reads c until the client closes it (a bounded wait, so
// that a leaked connection fails the test instead of hanging it).
func closedByClient(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the client left its connection open: %v", err)
	}
}

func stalledConfig(timeout time.Duration) *ssh.ClientConfig {
	return &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.Password("pw")}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: timeout}
}

// TestStalledServerHonoursContext: the server accepts, then never answers
// the SSH greeting: Open ends with the context's deadline and hangs up.
func TestStalledServerHonoursContext(t *testing.T) {
	addr, accepted := silentServer(t)
	t.Setenv("SSH_AUTH_SOCK", "")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	u := &url.URL{Scheme: "sftp", User: url.User("u"), Host: addr, Path: "/"}
	_, err := sftp.Open(ctx, u, storage.Options{Password: "pw", SFTPInsecureIgnoreHostKey: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	closedByClient(t, <-accepted)
}

// TestStalledHandshakeTimesOut: without a deadline on the context, the
// handshake timeout ends the wait, as a transient failure.
func TestStalledHandshakeTimesOut(t *testing.T) {
	addr, accepted := silentServer(t)
	s := sftp.New(addr, "/", stalledConfig(100*time.Millisecond))
	defer s.Close()
	_, err := s.Stat(context.Background(), "a.tif")
	var ne net.Error
	if !errors.Is(err, storage.ErrTransient) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a transient timeout", err)
	}
	closedByClient(t, <-accepted)
}

// TestWaitingCallerHonoursContext: while every session is stuck in a
// handshake, another request on the same session gives up when its own
// context ends, not when the handshake does.
func TestWaitingCallerHonoursContext(t *testing.T) {
	addr, accepted := silentServer(t)
	s := sftp.New(addr, "/", stalledConfig(time.Hour))
	defer s.Close()
	stuckCtx, unstick := context.WithCancel(context.Background())
	defer unstick()
	stuck := make(chan error, sftp.Sessions)
	for range sftp.Sessions {
		go func() { _, err := s.Stat(stuckCtx, "a.tif"); stuck <- err }()
	}
	for range sftp.Sessions {
		<-accepted // every session is in its handshake
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Stat(ctx, "a.tif"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting caller: err = %v, want its context's deadline", err)
	}
	select {
	case err := <-stuck:
		t.Fatalf("a stuck handshake ended before its context: %v", err)
	default:
	}
	unstick()
	for range sftp.Sessions {
		if err := <-stuck; !errors.Is(err, context.Canceled) {
			t.Errorf("stuck handshake after cancellation: err = %v", err)
		}
	}
}

// TestGuardedDial: the guard is on the SFTP connection: an allowed
// address is served, a refused one is not connected to, finally.
func TestGuardedDial(t *testing.T) {
	srv := servertest.Sshd(t)
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"a.tif": []byte("abc")}, storagetest.ModTime)
	opts := storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: srv.KnownHosts}
	opts.Guard = &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	s, err := sftp.Open(context.Background(), location(srv, root), opts)
	if err != nil {
		t.Fatalf("allowed: %v", err)
	}
	if o, err := s.Stat(context.Background(), "a.tif"); err != nil || o.Size != 3 {
		t.Errorf("allowed: stat %+v, %v", o, err)
	}
	s.Close()
	opts.Guard = &netguard.Guard{}
	_, err = sftp.Open(context.Background(), location(srv, root), opts)
	if !errors.Is(err, netguard.ErrRefused) || errors.Is(err, storage.ErrTransient) {
		t.Errorf("refused: err = %v, want a final netguard.ErrRefused", err)
	}
}

// TestIsolatedIgnoresAgent: an isolated storage does not log in with the
// process's SSH agent, which would lend the service's own identity.
func TestIsolatedIgnoresAgent(t *testing.T) {
	srv := servertest.Sshd(t)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: mustRawKey(t, srv.ClientKey)}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", serveAgent(t, keyring))
	opts := storage.Options{SFTPKnownHosts: srv.KnownHosts}
	s, err := sftp.Open(context.Background(), location(srv, "/"), opts)
	if err != nil {
		t.Fatalf("not isolated, the agent logs in: %v", err)
	}
	s.Close()
	opts.Isolated = true
	if _, err := sftp.Open(context.Background(), location(srv, "/"), opts); err == nil || !strings.Contains(err.Error(), "no SFTP credentials") {
		t.Errorf("isolated: err = %v, want no credentials", err)
	}
}

func mustRawKey(t *testing.T, file string) any {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
