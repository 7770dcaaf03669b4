package ftp_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// vsftpd lists with ls-style dates: the day only, for files over six
// months old.
func TestConformanceVsftpd(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true, ModTimePrecision: 24 * time.Hour}, func(t *testing.T, files map[string][]byte) storage.Storage {
		root, err := os.MkdirTemp("", "pcrs-ftp-*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		servertest.WriteTree(t, root, files, storagetest.ModTime)
		u, _ := url.Parse(servertest.Vsftpd(t, root))
		s, err := ftp.Open(context.Background(), u, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
