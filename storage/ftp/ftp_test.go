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

// TestNameNotUTF8: a server naming a file in Windows-1252 ("r\xe9seau")
// lists it with its own bytes, and the file is read back under that key.
func TestNameNotUTF8(t *testing.T) {
	key := "d/r\xe9seau.tif"
	u := servertest.VsftpdTree(t, map[string][]byte{key: []byte("abcdef")}, storagetest.ModTime)
	s, err := ftp.Open(context.Background(), u, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var keys []string
	if err := storage.Walk(context.Background(), s, func(o storage.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != key {
		t.Fatalf("listed %q, want %q", keys, key)
	}
	p := make([]byte, 6)
	if n, err := s.ReadAt(context.Background(), key, p, 0); (err != nil && n != 6) || string(p[:n]) != "abcdef" {
		t.Errorf("read %q, %v", p[:n], err)
	}
}
