package ftp_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

// vsftpd lists with ls-style dates: the day only, for files over six
// months old.
func TestConformanceVsftpd(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ModTime: true, ModTimePrecision: 24 * time.Hour}, func(t *testing.T, files map[string][]byte) storage.Storage {
		u := servertest.VsftpdTree(t, files, storagetest.ModTime)
		s, err := ftp.Open(context.Background(), u, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReconnectsAfterDrop: a dropped control connection is reported
// transient, and the next request reconnects.
func TestReconnectsAfterDrop(t *testing.T) {
	u := servertest.VsftpdTree(t, map[string][]byte{"d/a.tif": []byte("abcdef")}, storagetest.ModTime)
	proxy := servertest.NewProxy(t, u.Host, 0)
	u.Host = proxy.Addr
	s, err := ftp.Open(context.Background(), u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storagetest.SurvivesDrops(t, s, proxy.CutAll, "d/a.tif", []byte("abcdef"))
	if proxy.Accepted() < 2 {
		t.Errorf("%d connections: the storage did not reconnect", proxy.Accepted())
	}
}

func TestLoginRefused(t *testing.T) {
	u := servertest.VsftpdTree(t, nil, storagetest.ModTime)
	u.User = url.User("nobody-here")
	_, err := ftp.Open(context.Background(), u, storage.Options{Password: "wrong-pw-123"})
	if err == nil || errors.Is(err, storage.ErrTransient) || strings.Contains(err.Error(), "wrong-pw-123") {
		t.Errorf("err = %v, want a final login error without the password", err)
	}
}
