// Package servertest starts real servers on 127.0.0.1 for the storage
// backends' integration tests: nginx, apache2 and lighttpd (HTTP listings),
// versitygw (S3), OpenSSH's sshd (SFTP) and vsftpd (FTP). `make test`
// installs them; a missing one fails the test with what to run, it is never
// skipped.
package servertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WriteTree writes files below dir, every one modified at mtime, and makes
// the tree readable by servers that drop privileges.
func WriteTree(t testing.TB, dir string, files map[string][]byte, mtime time.Time) {
	t.Helper()
	for k, content := range files {
		name := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	OpenUp(t, dir)
}

// OpenUp makes dir and every folder above it traversable, and everything
// below it readable, by any user.
func OpenUp(t testing.TB, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if info, err := os.Stat(d); err == nil && info.Mode().Perm()&0o005 != 0o005 {
			_ = os.Chmod(d, info.Mode().Perm()|0o005)
		}
	}
}

// Binary finds a server's executable, or fails the test saying how to get it.
func Binary(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s is not installed: run `make test` (it installs the integration servers) or `make deps`", name)
	return ""
}

// ModuleRoot is the folder holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// Start runs a server in the foreground, in a process group of its own,
// until the test ends, and waits until it accepts connections on port. It
// returns the group's id: the test's cleanup kills the whole group (nginx's
// and apache's workers outlive a killed master otherwise) and waits until
// none of it is left. The listening socket must belong to the group: a
// readiness check answered by another process fails the test at once.
func Start(t testing.TB, port int, name string, args ...string) int {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	pgid := cmd.Process.Pid // Setpgid with Pgid 0: the group is named after its leader
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		logf.Close()
		if left := awaitGroupGone(pgid, 10*time.Second); len(left) > 0 {
			t.Errorf("%s: processes %v of group %d still alive after SIGKILL", name, left, pgid)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			logf.Close()
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited at start:\n%s", name, out)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			switch err := checkListener(port, pgid); {
			case err == nil:
				return pgid
			case !errors.Is(err, errNotListening):
				out, _ := os.ReadFile(logf.Name())
				t.Fatalf("%s: %v:\n%s", name, err, out)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(logf.Name())
	t.Fatalf("%s did not listen on %d:\n%s", name, port, out)
	return 0
}

// awaitGroupGone waits until no live process is left in group pgid, for at
// most limit, and returns those still alive then. The group was killed:
// its members only go, so polling cannot miss the moment it is empty.
func awaitGroupGone(pgid int, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		left := GroupMembers(pgid)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// GroupMembers lists the live processes (zombies excluded: they hold no
// port, no memory) of process group pgid, read from /proc.
func GroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold anything, so
		// fields count from its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WriteFile writes a config file in a fresh folder and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// Listen listens on host:0 (a loopback address) and sends each accepted
// connection on the returned channel; serve, when not nil, then runs on it.
// Connections still unread are closed at the end of the test: a stand-in
// for a server that stalls, or answers by hand, in deadline tests.
func Listen(t testing.TB, host string, serve func(net.Conn)) (net.Listener, <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 64)
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-ch:
				c.Close()
			default:
				return
			}
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if serve != nil {
				go serve(c)
			}
			ch <- c
		}
	}()
	return l, ch
}
