package sftp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// TestListingBounded: on OpenSSH, a folder whose listing passes the bound
// fails with a final ErrTooLarge naming it, while reads on the same
// sessions go on; no session is dropped. Within the bound, it lists whole.
func TestListingBounded(t *testing.T) {
	srv := servertest.Sshd(t)
	proxy := servertest.NewProxy(t, srv.Addr, 0)
	root := t.TempDir()
	files := map[string][]byte{"a.tif": []byte("abcdef")}
	for i := range 300 {
		files[fmt.Sprintf("big/tile-%04d.tif", i)] = []byte("x")
	}
	servertest.WriteTree(t, root, files, storagetest.ModTime)
	s := openBehind(t, srv, proxy, root)
	ctx := context.Background()
	read := func() error {
		p := make([]byte, 6)
		if n, err := s.ReadAt(ctx, "a.tif", p, 0); (err != nil && err != io.EOF) || string(p[:n]) != "abcdef" {
			return fmt.Errorf("read %q, %v", p[:n], err)
		}
		return nil
	}
	for range 2 * sftp.Sessions { // every session connected
		if err := read(); err != nil {
			t.Fatal(err)
		}
	}
	connected := proxy.Accepted()

	restore := sftp.SetListBounds(8<<10, 1<<30, 1<<30)
	var wg sync.WaitGroup
	errs := make(chan error, 8*sftp.Sessions)
	for range 2 * sftp.Sessions {
		wg.Go(func() {
			page, err := s.List(ctx, "big")
			if !errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), `/big"`) || !strings.Contains(err.Error(), "8192 bytes") {
				errs <- fmt.Errorf("list: %d objects, err = %v, want a final ErrTooLarge naming big and 8192 bytes", len(page.Objects), err)
			}
		})
		for range 2 {
			wg.Go(func() {
				if err := read(); err != nil {
					errs <- fmt.Errorf("read during the listings: %w", err)
				}
			})
		}
	}
	wg.Wait()
	restore()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range 2 * sftp.Sessions {
		if err := read(); err != nil {
			t.Errorf("read after the listings: %v", err)
		}
	}
	page, err := s.List(ctx, "big")
	if err != nil || len(page.Objects) != 300 {
		t.Errorf("with the usual bound: %d objects, %v; want 300", len(page.Objects), err)
	}
	if n := proxy.Accepted(); n != connected {
		t.Errorf("%d connections, then %d: a session was dropped", connected, n)
	}
}
