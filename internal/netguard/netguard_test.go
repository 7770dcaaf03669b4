package netguard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
)

func TestCheckAddr(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.255.0.9", "0.0.0.0", "0.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.1.1.1",
		"255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.0.8",
		"::", "::1", "::127.0.0.1", "fe80::1", "fc00::1", "fd00:ec2::254", "fec0::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::8.8.8.8", // NAT64
		"2002:7f00:1::", "2002:c0a8:101::1", // 6to4 of 127.0.0.1 and 192.168.1.1
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
	}
	allowed := []string{
		"192.0.2.1", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
		"193.0.0.1", "2a00:1450:4007::200e", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
		"2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
	}
	g := &netguard.Guard{}
	for _, s := range refused {
		err := g.CheckAddr(netip.MustParseAddr(s))
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("%s: err = %v, want refused", s, err)
		} else if !strings.Contains(err.Error(), netip.MustParseAddr(s).String()) {
			t.Errorf("%s: the error does not name the address: %v", s, err)
		}
	}
	for _, s := range allowed {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
	var none *netguard.Guard
	if err := none.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("a nil guard refused: %v", err)
	}
	lan := &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	if err := lan.CheckAddr(netip.MustParseAddr("10.1.2.3")); err != nil {
		t.Errorf("allowed prefix refused: %v", err)
	}
	if err := lan.CheckAddr(netip.MustParseAddr("::ffff:10.1.2.3")); err != nil {
		t.Errorf("allowed prefix, IPv4-mapped, refused: %v", err)
	}
	if err := lan.CheckAddr(netip.MustParseAddr("10.2.0.1")); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("10.2.0.1 outside the allowed prefix: %v", err)
	}
}

// countingServer listens on 127.0.0.1, counts the connections it gets and
// closes them.
type countingServer struct {
	l        net.Listener
	mu       sync.Mutex
	accepted []net.Conn
	arrived  chan struct{}
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{l: l, arrived: make(chan struct{}, 1024)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // whoever got here fails at once instead of waiting
			s.mu.Lock()
			s.accepted = append(s.accepted, c)
			s.mu.Unlock()
			s.arrived <- struct{}{}
		}
	}()
	return s
}

func (s *countingServer) port() int { return s.l.Addr().(*net.TCPAddr).Port }

// connectionsBefore connects once itself and returns how many connections
// the server accepted before that one: connections are accepted in order,
// so any earlier attempt that reached the server is counted.
func (s *countingServer) connectionsBefore(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp", s.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	for {
		<-s.arrived
		s.mu.Lock()
		last := s.accepted[len(s.accepted)-1]
		n := len(s.accepted) - 1
		s.mu.Unlock()
		if last.RemoteAddr().String() == local {
			return n
		}
	}
}

func TestDialRefusesLoopback(t *testing.T) {
	srv := newCountingServer(t)
	g := &netguard.Guard{}
	for _, addr := range []string{srv.l.Addr().String(), fmt.Sprintf("localhost:%d", srv.port())} {
		c, err := g.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("dialing %s: err = %v, want refused", addr, err)
		}
	}
	if n := srv.connectionsBefore(t); n != 0 {
		t.Errorf("the loopback server got %d connections through the guard", n)
	}
	if _, err := g.DialContext(context.Background(), "unix", "/run/x.sock"); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("unix socket: err = %v, want refused", err)
	}
}

// TestDialAllowed: an allowed address is really connected to (the guard
// is not a wall), and a nil guard dials anything.
func TestDialAllowed(t *testing.T) {
	srv := newCountingServer(t)
	for _, g := range []*netguard.Guard{{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, nil} {
		c, err := g.DialContext(context.Background(), "tcp", srv.l.Addr().String())
		if err != nil {
			t.Fatalf("guard %+v: %v", g, err)
		}
		c.Close()
	}
	if n := srv.connectionsBefore(t); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
