package ftp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
)

// TestListingTooLong: a listing longer than the bound fails with
// ErrTooLarge, naming the folder and the bound, and the client stops
// reading there: the server gets no more than the bound and what the
// sockets' buffers hold (a few MiB on loopback) written of its 64 MiB.
func TestListingTooLong(t *testing.T) {
	const bound = 256 << 10
	defer ftp.SetListBounds(bound, 1<<30)()
	srv := newListServer(t, false)
	// Lines the parser skips, so that only the bytes count.
	line := strings.Repeat("x", 1022) + "\r\n"
	listing := []byte(strings.Repeat(line, (64<<20)/len(line)))
	got := srv.list(t, "big", listing)
	if !errors.Is(got.err, storage.ErrTooLarge) || !strings.Contains(got.err.Error(), `"/big"`) || !strings.Contains(got.err.Error(), "262144 bytes") {
		t.Errorf("err = %v, want ErrTooLarge naming /big and 262144 bytes", got.err)
	}
	if len(got.page.Dirs)+len(got.page.Objects) > 0 {
		t.Errorf("a page %+v with the error", got.page)
	}
	select {
	case n := <-srv.sent:
		if n > bound+16<<20 {
			t.Errorf("the server wrote %d MiB of the listing: the client kept reading", n>>20)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server is still writing the listing")
	}
}

// TestListingTooManyLines: a listing of more lines than the bound fails
// with ErrTooLarge naming it, however short the lines; one at the bound
// is listed.
func TestListingTooManyLines(t *testing.T) {
	defer ftp.SetListBounds(1<<30, 100)()
	srv := newListServer(t, false)
	if got := srv.list(t, "", []byte(manyFiles(100))); got.err != nil || len(got.page.Objects) != 100 {
		t.Errorf("100 lines: %d objects, %v; want all 100", len(got.page.Objects), got.err)
	}
	got := srv.list(t, "sub", []byte(manyFiles(101)))
	if !errors.Is(got.err, storage.ErrTooLarge) || !strings.Contains(got.err.Error(), `"/sub"`) || !strings.Contains(got.err.Error(), "100 lines") {
		t.Errorf("101 lines: %d objects, err = %v, want ErrTooLarge naming /sub and 100 lines", len(got.page.Objects), got.err)
	}
}
