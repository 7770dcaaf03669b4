package ftp_test

import (
	"context"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// TestIdlePooledConnection: after a transfer the library leaves a deadline
// (the shut timeout) on the control connection; a pooled connection idle
// past it must serve the next listing and read itself, without an error
// to retry and without a new connection.
func TestIdlePooledConnection(t *testing.T) {
	const shut = 250 * time.Millisecond
	defer ftp.SetShutTimeout(shut)()
	u := servertest.VsftpdTree(t, map[string][]byte{"d/a.tif": []byte("abcdef")}, storagetest.ModTime)
	proxy := servertest.NewProxy(t, u.Host, 0) // counts the control connections
	u.Host = proxy.Addr
	s, err := ftp.Open(context.Background(), u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each wait starts after the transfer that set the deadline ended, so
	// it is past that deadline by shut at least: the rest of the wait is
	// margin for the runtime's timer to mark the connection expired.
	idle := func() { time.Sleep(4 * shut) }
	if _, err := s.List(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	idle()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if page, err := s.List(ctx, "d"); err != nil || len(page.Objects) != 1 {
		t.Errorf("listing on the idle connection: %+v, %v", page, err)
	}
	idle()
	p := make([]byte, 3)
	if n, err := s.ReadAt(context.Background(), "d/a.tif", p, 2); err != nil || string(p[:n]) != "cde" {
		t.Errorf("read on the idle connection: %q, %v", p[:n], err)
	}
	if n := proxy.Accepted(); n != 1 {
		t.Errorf("%d control connections, want the pooled one only", n)
	}
}
