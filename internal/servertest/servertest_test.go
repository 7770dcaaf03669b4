package servertest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServersLeaveNoProcess: a web server's workers die with it when the
// test that started it ends.
func TestServersLeaveNoProcess(t *testing.T) {
	for name, start := range map[string]func(t testing.TB, root string) HTTPServer{
		"nginx":    func(t testing.TB, root string) HTTPServer { return Nginx(t, root, false) },
		"apache":   Apache,
		"lighttpd": Lighttpd,
	} {
		var pgid int
		t.Run(name, func(t *testing.T) {
			srv := start(t, t.TempDir())
			pgid = srv.PGID
			members := GroupMembers(pgid)
			if len(members) == 0 || members[0] == 0 {
				t.Fatalf("no process found in the server's group %d", pgid)
			}
			t.Logf("%s runs as processes %v of group %d", name, members, pgid)
		})
		if pgid == 0 {
			continue // the server did not start: its subtest says why
		}
		if left := GroupMembers(pgid); len(left) > 0 {
			t.Errorf("%s: processes %v of group %d left after its test", name, left, pgid)
		}
	}
}

// TestPortsReserved: ports come from outside the kernel's ephemeral range,
// are never handed out twice while reserved, and their lock is held against
// every other opener (another test process included: flock is per open
// file).
func TestPortsReserved(t *testing.T) {
	low, high := portPool()
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < low || p >= high {
			t.Errorf("port %d outside the pool %d-%d", p, low, high)
		}
		f, err := os.Open(filepath.Join(lockDir, strconv.Itoa(p)))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			t.Errorf("port %d: its lock was free to take", p)
		}
		f.Close()
	}
	base := PortRange(t, 40)
	for p := base; p < base+40; p++ {
		if seen[p] {
			t.Errorf("range %d+40 overlaps port %d", base, p)
		}
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var eLow, eHigh int
	if _, err := fmt.Sscan(string(b), &eLow, &eHigh); err != nil {
		t.Fatal(err)
	}
	if low <= eHigh && high > eLow {
		t.Errorf("pool %d-%d overlaps the ephemeral range %d-%d", low, high, eLow, eHigh)
	}
}

// TestPortPool: the pool stays out of the ephemeral range whenever there
// is room (below it first), and keeps a pool at the top when the range
// takes nearly every port.
func TestPortPool(t *testing.T) {
	for _, c := range []struct{ low, high, lo, hi int }{
		{32768, 60999, 10000, 32768}, // Linux's default
		{15000, 30000, 10000, 15000},
		{12000, 60000, 60001, 65536}, // too little room below, enough above
		{1024, 65535, 57536, 65536},  // everything: the top, where the kernel hands out last
	} {
		if lo, hi := poolFor(c.low, c.high); lo != c.lo || hi != c.hi {
			t.Errorf("ephemeral %d-%d: pool %d-%d, want %d-%d", c.low, c.high, lo, hi, c.lo, c.hi)
		}
	}
}

// TestListenerOwner: Start's check tells a server's own listening socket
// from one another process opened first on its port.
func TestListenerOwner(t *testing.T) {
	srv := Nginx(t, t.TempDir(), false)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	if err := checkListener(port, srv.PGID); err != nil {
		t.Errorf("nginx's own socket: %v", err)
	}
	free := FreePort(t)
	if err := checkListener(free, srv.PGID); !errors.Is(err, errNotListening) {
		t.Errorf("nobody listening: %v, want errNotListening", err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", free))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := checkListener(free, srv.PGID); err == nil || errors.Is(err, errNotListening) {
		t.Errorf("a socket of this process taken for nginx's: %v", err)
	}
}

// fatalTB records a Fatalf and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg chan string
}

func (f fatalTB) Helper() {}
func (f fatalTB) Fatalf(format string, args ...any) {
	f.msg <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f fatalTB) Fatal(args ...any) {
	f.msg <- fmt.Sprint(args...)
	runtime.Goexit()
}

// TestStartRefusesAnotherListener: when another process answers on the
// server's port, Start fails instead of handing the test someone else's
// server (a process that never listens stands for a server whose bind
// failed).
func TestStartRefusesAnotherListener(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tb := fatalTB{TB: t, msg: make(chan string, 1)}
	returned := make(chan int, 1)
	go func() { returned <- Start(tb, port, Binary(t, "sleep", "/bin/sleep"), "60") }()
	select {
	case pgid := <-returned:
		t.Errorf("Start returned group %d for a port another process holds", pgid)
	case msg := <-tb.msg:
		if !strings.Contains(msg, "outside the server's group") {
			t.Errorf("Start failed with %q, want the port's holder named", msg)
		}
	case <-time.After(time.Minute):
		t.Fatal("Start neither returned nor failed in a minute")
	}
}
