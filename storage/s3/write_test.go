package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
)

func readAll(t *testing.T, s storage.Storage, key string) ([]byte, error) {
	t.Helper()
	p := make([]byte, 1<<16)
	n, err := s.ReadAt(context.Background(), key, p, 0)
	if err == io.EOF {
		err = nil
	}
	return p[:n], err
}

// TestPutDeleteVersityGW: objects written below the prefix are read back,
// replaced whole, deleted; a key leaving the prefix is refused before any
// request.
func TestPutDeleteVersityGW(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	ctx := context.Background()
	s, err := s3.New(awsConfig(srv), bucket, "sorties/shard-0", srv.Endpoint, true)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, content string) error {
		return s.Put(ctx, key, strings.NewReader(content), int64(len(content)))
	}
	if err := put("abc/report.json", `{"counts":{}}`); err != nil {
		t.Fatal(err)
	}
	if err := put("abc/report.json", `{}`); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s, "abc/report.json"); err != nil || string(got) != `{}` {
		t.Fatalf("read back %q, %v; want the replacing content", got, err)
	}
	// Below the prefix, nowhere else: the gateway's folder tells.
	if _, err := os.Stat(filepath.Join(srv.Root, bucket, "sorties", "shard-0", "abc", "report.json")); err != nil {
		t.Errorf("not written below the prefix: %v", err)
	}
	if err := s.Delete(ctx, "abc/report.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, s, "abc/report.json"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "abc/report.json"); err != nil {
		t.Errorf("deleting an absent key: %v", err)
	}
	for _, bad := range []string{"../evade.json", "abc/../../evade.json", "/abs.json", "abc/", ""} {
		if err := put(bad, "x"); !errors.Is(err, storage.ErrBadKey) {
			t.Errorf("Put(%q): %v, want ErrBadKey", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.Root, bucket, "sorties", "evade.json")); err == nil {
		t.Error("a key leaving the prefix was written")
	}
}

// TestPutFailuresVersityGW: a missing bucket and an expired deadline fail
// the write, naming the object.
func TestPutFailuresVersityGW(t *testing.T) {
	srv := servertest.VersityGW(t, bucket)
	missing, err := s3.New(awsConfig(srv), "no-such-bucket", "p", srv.Endpoint, true)
	if err != nil {
		t.Fatal(err)
	}
	err = missing.Put(context.Background(), "a/report.json", bytes.NewReader([]byte("{}")), 2)
	if err == nil || !strings.Contains(err.Error(), "s3://no-such-bucket/p/a/report.json") {
		t.Errorf("missing bucket: %v, want an error naming the object", err)
	}
	s, err := s3.New(awsConfig(srv), bucket, "", srv.Endpoint, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := s.Put(ctx, "late.json", bytes.NewReader([]byte("{}")), 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired deadline: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Root, bucket, "late.json")); err == nil {
		t.Error("written past its deadline")
	}
}
