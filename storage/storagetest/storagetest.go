// Package storagetest is the conformance suite every storage backend runs,
// against a real server for the remote ones.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// Caps says what a backend can report, so the suite asserts what it must.
type Caps struct {
	ETag    bool
	ModTime bool
	// ModTimePrecision is how coarse the listed times may be (FTP, HTTP
	// listings give minutes).
	ModTimePrecision time.Duration
}

// Fixture builds a storage holding exactly files (key → content), with every
// modification time set to ModTime when the backend allows it.
type Fixture func(t *testing.T, files map[string][]byte) storage.Storage

// ModTime is the modification time fixtures give their files.
var ModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Files is the tree every backend must serve faithfully: nested folders,
// names with spaces, accents and URL-special characters, any-case
// extensions, a zero-byte object, and one larger than a read block.
func Files() map[string][]byte {
	big := make([]byte, 300_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.UintN(256))
	}
	return map[string][]byte{
		"README.txt":                           []byte("hello\n"),
		"empty.jp2":                            {},
		"dalles/a/b/c/deep.TIF":                []byte("deep tile"),
		"dalles/dir with space/ünïcode #1.jp2": []byte("accents, space and hash"),
		"dalles/odd/50%+plus&amp;.tif":         []byte("percent plus ampersand"),
		"dalles/odd/q?uestion.tiff":            []byte("question mark"),
		"dalles/big.jp2":                       big,
	}
}

// Run runs the suite.
func Run(t *testing.T, caps Caps, fixture Fixture) {
	files := Files()
	s := fixture(t, files)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()

	t.Run("ListIsCompleteAndExact", func(t *testing.T) {
		got := map[string]storage.Object{}
		err := storage.Walk(ctx, s, func(o storage.Object) error {
			if o.Err != nil {
				// A folder the backend declined to enter (the local
				// fixture's loop) is reported, not listed.
				if strings.HasSuffix(o.Key, "/") {
					return nil
				}
				return fmt.Errorf("object %q listed with an error: %w", o.Key, o.Err)
			}
			if _, dup := got[o.Key]; dup {
				return fmt.Errorf("object %q listed twice", o.Key)
			}
			got[o.Key] = o
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keysOf(got) {
			if _, ok := files[k]; !ok {
				t.Errorf("listed %q, which the storage does not hold", k)
			}
		}
		for _, k := range keys(files) {
			if _, ok := got[k]; !ok {
				t.Errorf("%q missing from the listing", k)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		for k, content := range files {
			o := got[k]
			if o.Size != int64(len(content)) {
				t.Errorf("%s: size %d, want %d", k, o.Size, len(content))
			}
			if caps.ETag && o.ETag == "" {
				t.Errorf("%s: no ETag", k)
			}
			if caps.ModTime {
				prec := max(caps.ModTimePrecision, time.Second)
				if d := o.ModTime.Sub(ModTime); d < -prec || d > prec {
					t.Errorf("%s: modified %v, want %v (±%v)", k, o.ModTime, ModTime, prec)
				}
			}
		}
	})

	t.Run("RangedReads", func(t *testing.T) {
		big := files["dalles/big.jp2"]
		size := int64(len(big))
		tests := []struct {
			name    string
			off     int64
			len     int
			wantN   int
			wantEOF bool
		}{
			{"head", 0, 16384, 16384, false},
			{"middle", 123_457, 70_000, 70_000, false},
			{"whole", 0, len(big), len(big), false},
			{"acrossEOF", size - 100, 1000, 100, true},
			{"atEOF", size, 10, 0, true},
			{"pastEOF", size + 5000, 10, 0, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := make([]byte, tt.len)
				n, err := s.ReadAt(ctx, "dalles/big.jp2", p, tt.off)
				if n != tt.wantN {
					t.Fatalf("read %d bytes, want %d (err %v)", n, tt.wantN, err)
				}
				if tt.wantEOF != errors.Is(err, io.EOF) || (!tt.wantEOF && err != nil) {
					t.Fatalf("err = %v, want EOF=%v", err, tt.wantEOF)
				}
				if tt.wantN > 0 && !bytes.Equal(p[:n], big[tt.off:tt.off+int64(n)]) {
					t.Fatal("bytes differ from the object's")
				}
			})
		}
	})

	t.Run("OddNamesRead", func(t *testing.T) {
		for k, content := range files {
			if len(content) == 0 || len(content) > 1000 {
				continue
			}
			p := make([]byte, len(content))
			n, err := s.ReadAt(ctx, k, p, 0)
			if err != nil && !errors.Is(err, io.EOF) || !bytes.Equal(p[:n], content) {
				t.Errorf("%s: read %q, %v; want %q", k, p[:n], err, content)
			}
		}
	})

	t.Run("Stat", func(t *testing.T) {
		for _, k := range []string{"dalles/big.jp2", "dalles/dir with space/ünïcode #1.jp2", "empty.jp2"} {
			o, err := s.Stat(ctx, k)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if o.Key != k || o.Size != int64(len(files[k])) {
				t.Errorf("Stat(%q) = %+v, want size %d", k, o, len(files[k]))
			}
		}
	})

	t.Run("MissingObject", func(t *testing.T) {
		_, err := s.ReadAt(ctx, "dalles/no-such-tile.jp2", make([]byte, 10), 0)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ReadAt: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, "dalles/no-such-tile.jp2"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("Cancellation", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.ReadAt(cctx, "dalles/big.jp2", make([]byte, 10), 0); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadAt on a cancelled context: err = %v, want context.Canceled", err)
		}
		if _, err := s.List(cctx, ""); !errors.Is(err, context.Canceled) {
			t.Errorf("List on a cancelled context: err = %v, want context.Canceled", err)
		}
	})

	t.Run("ConcurrentReads", func(t *testing.T) {
		big := files["dalles/big.jp2"]
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				off := int64(i * 17_000)
				p := make([]byte, 4096)
				n, err := s.ReadAt(ctx, "dalles/big.jp2", p, off)
				if err != nil || !bytes.Equal(p[:n], big[off:off+4096]) {
					errs <- fmt.Errorf("read at %d: n=%d err=%v", off, n, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keysOf(m map[string]storage.Object) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SurvivesDrops reads key three times, cutting every connection before
// each read (cut): through the retrying decorator each read must return
// the object's bytes at offset 2, the backend reconnecting by itself.
func SurvivesDrops(t *testing.T, s storage.Storage, cut func(), key string, content []byte) {
	t.Helper()
	r := storage.Retrying(s, storage.RetryPolicy{Attempts: 4, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond})
	for i := range 3 {
		cut()
		p := make([]byte, 3)
		n, err := r.ReadAt(context.Background(), key, p, 2)
		if err != nil || !bytes.Equal(p[:n], content[2:5]) {
			t.Fatalf("read %d after a drop: %q, %v", i, p[:n], err)
		}
	}
}
