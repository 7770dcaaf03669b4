package ftp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

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

// TestNoGreetingHonoursContext: the server accepts and never greets: Open
// ends with the context's deadline and hangs up.
func TestNoGreetingHonoursContext(t *testing.T) {
	l, accepted := servertest.Listen(t, "127.0.0.1", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := ftp.Open(ctx, &url.URL{Scheme: "ftp", Host: l.Addr().String(), Path: "/"}, storage.Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	closedByClient(t, <-accepted)
}

// TestGuardedDial: the guard is on the control and data connections: an
// allowed address is served (a listing and a read need both), a refused
// one is not connected to, finally.
func TestGuardedDial(t *testing.T) {
	u := servertest.VsftpdTree(t, map[string][]byte{"d/a.tif": []byte("abcdef")}, storagetest.ModTime)
	allowed := &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	s, err := ftp.Open(context.Background(), u, storage.Options{Guard: allowed})
	if err != nil {
		t.Fatalf("allowed: %v", err)
	}
	defer s.Close()
	if page, err := s.List(context.Background(), ""); err != nil || len(page.Dirs) != 1 {
		t.Errorf("allowed: list %+v, %v", page, err)
	}
	p := make([]byte, 3)
	if n, err := s.ReadAt(context.Background(), "d/a.tif", p, 2); err != nil || string(p[:n]) != "cde" {
		t.Errorf("allowed: read %q, %v", p[:n], err)
	}
	_, err = ftp.Open(context.Background(), u, storage.Options{Guard: &netguard.Guard{}})
	if !errors.Is(err, netguard.ErrRefused) || errors.Is(err, storage.ErrTransient) {
		t.Errorf("refused: err = %v, want a final netguard.ErrRefused", err)
	}
}

// TestPassiveAddressNotFollowed: a server on 127.0.0.2 (allowed) answers
// PASV with 127.0.0.1 (refused), where a server listens: the data
// connection must not go there.
func TestPassiveAddressNotFollowed(t *testing.T) {
	target, reached := servertest.Listen(t, "127.0.0.1", nil)
	port := target.Addr().(*net.TCPAddr).Port
	pasv := fmt.Sprintf("227 Entering Passive Mode (127,0,0,1,%d,%d)", port/256, port%256)
	control, _ := servertest.Listen(t, "127.0.0.2", func(c net.Conn) { fakeFTP(c, pasv) })
	guard := &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	u := &url.URL{Scheme: "ftp", Host: control.Addr().String(), Path: "/"}
	s, err := ftp.Open(context.Background(), u, storage.Options{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.List(context.Background(), ""); err == nil {
		t.Error("listing without a data connection succeeded")
	}
	// Connections are accepted in order: the first the target sees must
	// be this one.
	probe, err := net.Dial("tcp", target.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if first := <-reached; first.RemoteAddr().String() != probe.LocalAddr().String() {
		t.Errorf("the PASV address %s was connected to", target.Addr())
	}
}

// fakeFTP logs anyone in, refuses EPSV, answers PASV with pasv, and
// refuses the rest.
func fakeFTP(c net.Conn, pasv string) {
	defer c.Close()
	fmt.Fprint(c, "220 fake\r\n")
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			fmt.Fprint(c, "230 in\r\n")
		case "FEAT":
			fmt.Fprint(c, "211 no features\r\n")
		case "TYPE", "OPTS":
			fmt.Fprint(c, "200 ok\r\n")
		case "PASV":
			fmt.Fprint(c, pasv+"\r\n")
		case "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "502 not here\r\n")
		}
	}
}
