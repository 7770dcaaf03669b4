package servertest

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Ports for the servers come from outside the kernel's ephemeral range
// (ip_local_port_range), where no listen on port 0 and no outgoing
// connection of any process lands, and each is reserved across test
// processes by a lock file held until the test ends. go test runs packages
// as parallel processes: a port probed free, released, then given to a
// server a moment later could meanwhile go to another package's listener,
// and the readiness check then talked to that one (a CI run had versitygw's
// port answered by another server: PutObject 404 before any write).

// lockDir holds one lock file per reserved port, shared by every test
// process on the machine: a fixed path, not $TMPDIR's, which two test
// processes may set differently.
const lockDir = "/tmp/pcrs-servertest-ports"

// FreePort returns a port of 127.0.0.1 that is free and reserved for the
// calling test until it ends.
func FreePort(t testing.TB) int {
	t.Helper()
	return PortRange(t, 1)
}

// PortRange returns the first of n consecutive ports, free and reserved
// for the calling test until it ends (FTP passive data ports).
func PortRange(t testing.TB, n int) int {
	t.Helper()
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(lockDir, 0o1777) // shared by every user running tests, as /tmp is
	lo, hi := portPool()
	span := hi - lo - n + 1 // the bases that fit
	if span <= 0 {
		t.Fatalf("no room for %d ports in %d-%d", n, lo, hi-1)
	}
	first := rand.IntN(span)
	for i := 0; i < span; i += n {
		base := lo + (first+i)%span
		locks, ok, err := reserve(base, n)
		if err != nil {
			t.Fatalf("reserving ports %d-%d: %v", base, base+n-1, err)
		}
		if !ok {
			continue
		}
		t.Cleanup(func() {
			for _, f := range locks {
				f.Close() // closing drops the flock
			}
		})
		return base
	}
	t.Fatalf("no %d free consecutive ports in %d-%d", n, lo, hi-1)
	return 0
}

// reserve locks ports base..base+n-1 and checks each can be bound now; ok
// is false when one is taken (locked by another test, or bound), and err
// says what else went wrong. On any failure it releases what it took.
func reserve(base, n int) (locks []*os.File, ok bool, err error) {
	defer func() {
		if !ok {
			for _, f := range locks {
				f.Close()
			}
			locks = nil
		}
	}()
	for p := base; p < base+n; p++ {
		f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(p)), os.O_CREATE|os.O_RDONLY, 0o644) // flock needs no write access
		if err != nil {
			return locks, false, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return locks, false, nil
			}
			return locks, false, fmt.Errorf("locking port %d: %w", p, err)
		}
		locks = append(locks, f)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
				return locks, false, nil // bound by someone, or a privileged port
			}
			return locks, false, err
		}
		l.Close()
	}
	return locks, true, nil
}

// portPool is the range [lo, hi) the ports come from: below the ephemeral
// range when it leaves room there, above it otherwise.
func portPool() (lo, hi int) {
	low, high := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				low, high = l, h
			}
		}
	}
	return poolFor(low, high)
}

// poolFor is portPool for the ephemeral range low-high.
func poolFor(low, high int) (lo, hi int) {
	switch {
	case low-10000 >= 4000:
		return 10000, low
	case 65536-(high+1) >= 4000:
		return high + 1, 65536
	}
	// An ephemeral range over nearly every port ("1024 65535"): its top,
	// where the kernel hands out ports last; the locks and Start's owner
	// check still hold.
	return 65536 - 8000, 65536
}

// errNotListening: no socket listens on the port yet.
var errNotListening = errors.New("no listening socket")

// checkListener makes sure every socket that would take a connection to
// 127.0.0.1:port (one listening on 127.0.0.1, 0.0.0.0, :: or
// ::ffff:127.0.0.1) belongs to process group pgid, and not to a process
// that took the port first or shares it (SO_REUSEPORT).
func checkListener(port, pgid int) error {
	inodes, err := listeningInodes(port)
	if err != nil {
		return nil // no /proc to tell: the reservation alone has to do
	}
	if len(inodes) == 0 {
		return errNotListening
	}
	owned := map[string]bool{}
	for _, pid := range GroupMembers(pgid) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil {
				owned[link] = true
			}
		}
	}
	for inode := range inodes {
		if !owned[inode] {
			return fmt.Errorf("port %d is held by a process outside the server's group %d", port, pgid)
		}
	}
	return nil
}

// loopbackListeners are the local addresses, as /proc/net/tcp and tcp6
// write them, of sockets that take connections to 127.0.0.1.
var loopbackListeners = map[string]bool{
	"0100007F": true, "00000000": true, // 127.0.0.1, 0.0.0.0
	"00000000000000000000000000000000": true, // ::
	"0000000000000000FFFF00000100007F": true, // ::ffff:127.0.0.1
}

// listeningInodes returns the sockets ("socket:[inode]") that take
// connections to 127.0.0.1:port, read from /proc/net/tcp and tcp6.
func listeningInodes(port int) (map[string]bool, error) {
	want := fmt.Sprintf("%04X", port)
	found := map[string]bool{}
	read := 0
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		read++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode"
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" {
				continue
			}
			addr, p, ok := strings.Cut(fl[1], ":")
			if ok && p == want && loopbackListeners[addr] {
				found["socket:["+fl[9]+"]"] = true
			}
		}
		f.Close()
	}
	if read == 0 {
		return nil, errors.New("/proc/net/tcp unreadable")
	}
	return found, nil
}
