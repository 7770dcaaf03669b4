package sftp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
)

// TestListingBounded: on a real sshd, a folder whose listing takes more
// bytes than the bound fails with ErrTooLarge naming it, where the
// library's ReadDir would have held all of it; under the bound it lists
// whole, and the storage goes on serving after a refused listing.
func TestListingBounded(t *testing.T) {
	srv := servertest.Sshd(t)
	root := t.TempDir()
	files := map[string][]byte{"petit/a.tif": []byte("a")}
	for i := range 500 {
		files[fmt.Sprintf("grand/PCRS_%07d_6600200.tif", 600000+200*i)] = []byte("x")
	}
	servertest.WriteTree(t, root, files, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := sftp.Open(context.Background(), location(srv, root), storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: srv.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if page, err := s.List(ctx, "grand"); err != nil || len(page.Objects) != 500 {
		t.Fatalf("grand under the default bound: %d objects, %v", len(page.Objects), err)
	}
	defer sftp.SetMaxListBytes(8 << 10)()
	_, err = s.List(ctx, "grand")
	if !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "grand") || !strings.Contains(err.Error(), "8192 bytes") {
		t.Fatalf("grand over 8 KiB: %v, want ErrTooLarge naming it", err)
	}
	if page, err := s.List(ctx, "petit"); err != nil || len(page.Objects) != 1 {
		t.Fatalf("petit after a refused listing: %d objects, %v", len(page.Objects), err)
	}
}

// TestListingOneSession: a server allowing one channel a connection
// (MaxSessions 1) refuses the listing's own channel; the folder is listed
// on the session's channel, as before the bound.
func TestListingOneSession(t *testing.T) {
	srv := servertest.SshdWith(t, "MaxSessions 1")
	root := t.TempDir()
	servertest.WriteTree(t, root, map[string][]byte{"d/a.tif": []byte("a"), "d/b.tif": []byte("b")}, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := sftp.Open(context.Background(), location(srv, root), storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: srv.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if page, err := s.List(context.Background(), "d"); err != nil || len(page.Objects) != 2 {
		t.Fatalf("with MaxSessions 1: %d objects, %v", len(page.Objects), err)
	}
}
