package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/pkg/sftp"
)

// fakeServer answers SFTP requests on its pipe: every READDIR gets a NAME
// of perPacket entries (fewer if they pass 250 KiB) named with nameLen
// bytes (no name with 0), each with ext(i) empty extended attributes,
// until total entries are sent (then EOF), never ending when total is 0.
// STAT answers a 42-byte file. It counts the READDIR requests it got.
type fakeServer struct {
	perPacket, nameLen, total int
	ext                       func(i int) int
	readdirs                  atomic.Int64
}

func (fs *fakeServer) serve(r io.Reader, w io.Writer) {
	sent := 0
	for {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(l[:]))
		if _, err := io.ReadFull(r, req); err != nil {
			return
		}
		typ, id := req[0], req[1:5]
		var out []byte
		status := func(code uint32) {
			out = append([]byte{101}, id...)
			out = binary.BigEndian.AppendUint32(out, code)
			out = append(out, 0, 0, 0, 0, 0, 0, 0, 0)
		}
		switch typ {
		case 1: // INIT
			out = []byte{2, 0, 0, 0, 3}
		case 11: // OPENDIR
			out = append(append([]byte{102}, id...), 0, 0, 0, 1, 'h')
		case 12: // READDIR
			fs.readdirs.Add(1)
			if fs.total > 0 && sent >= fs.total {
				status(1) // EOF
				break
			}
			n := fs.perPacket
			if fs.total > 0 {
				n = min(n, fs.total-sent)
			}
			out = append([]byte{fxpName}, id...)
			out = binary.BigEndian.AppendUint32(out, 0) // the count, below
			count := 0
			for ; count < n; count++ {
				name := fmt.Sprintf("%0*d", fs.nameLen, sent)
				if fs.nameLen == 0 {
					name = ""
				}
				e := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
				e = append(e, name...)
				e = append(e, 0, 0, 0, 0) // no long name
				if ext := fs.extended(sent); ext > 0 {
					e = binary.BigEndian.AppendUint32(e, 1<<31) // SSH_FILEXFER_ATTR_EXTENDED
					e = binary.BigEndian.AppendUint32(e, uint32(ext))
					e = append(e, make([]byte, 8*ext)...)
				} else {
					e = append(e, 0, 0, 0, 0) // no attributes
				}
				if len(out)+len(e) > 250<<10 {
					break
				}
				out = append(out, e...)
				sent++
			}
			binary.BigEndian.PutUint32(out[5:], uint32(count))
		case 17, 7: // STAT, LSTAT
			out = append(append([]byte{105}, id...), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42)
		case 4: // CLOSE
			status(0)
		default:
			status(8) // unsupported
		}
		if _, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(out))), out...)); err != nil {
			return
		}
	}
}

func (fs *fakeServer) extended(i int) int {
	if fs.ext == nil {
		return 0
	}
	return fs.ext(i)
}

// fakeClient starts fs and a client reading and writing through a
// listBound, as connect does.
func fakeClient(t *testing.T, fs *fakeServer) (*sftp.Client, *listBound) {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	go fs.serve(sr, sw)
	lb := newListBound()
	c, err := sftp.NewClientPipe(boundReader{cr, lb}, boundWriter{cw, lb}, sftp.UseConcurrentReads(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close(); sr.Close(); c.Close() })
	return c, lb
}

// TestEndlessListing: a server answering READDIR without end fails the
// listing with ErrTooLarge at whichever bound comes first, and the
// client stops asking at once; the session is still sound: a stat and
// another listing on it are answered.
func TestEndlessListing(t *testing.T) {
	for _, tc := range []struct {
		nameLen, ext int
		want         string
	}{
		{8, 0, "more than 250000 entries"},              // 20 bytes an entry: the entries come first
		{200, 0, "longer than 33554432 bytes"},          // 216 bytes an entry
		{1, 20, "more than 250000 extended attributes"}, // 177 bytes an entry
	} {
		t.Run(fmt.Sprint(tc.nameLen, "-", tc.ext), func(t *testing.T) {
			fs := &fakeServer{perPacket: 1000, nameLen: tc.nameLen, ext: func(int) int { return tc.ext }}
			c, lb := fakeClient(t, fs)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for range 2 {
				before := fs.readdirs.Load()
				entries, err := lb.readDir(ctx, c, "/endless")
				if !errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), `"/endless"`) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want a final ErrTooLarge naming /endless, %s", err, tc.want)
				}
				if entries != nil {
					t.Errorf("%d entries with the error", len(entries))
				}
				// Past the bound, at most the READDIR answered by the
				// packet that crossed it.
				entryBytes := uint64(4 + tc.nameLen + 8)
				if tc.ext > 0 {
					entryBytes += 4 + 8*uint64(tc.ext)
				}
				packetBytes := 13 + 1000*entryBytes
				most := int64(min(maxListEntries/1000, maxListBytes/packetBytes, maxListExtended/uint64(1000*max(tc.ext, 1)))) + 2
				if n := fs.readdirs.Load() - before; n > most {
					t.Errorf("%d READDIR requests, want at most %d", n, most)
				}
				if fi, err := c.Stat("/a.tif"); err != nil || fi.Size() != 42 {
					t.Fatalf("stat after the listing: %v, %v", fi, err)
				}
			}
		})
	}
}

// TestListingWithinBounds: a listing of as many entries as the bound, and
// almost as many bytes, is whole. The heap it holds is about the most a
// listing can hold (logged with -v): a stopped listing holds at most
// that and the entries of the packet crossing the bound.
func TestListingWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		what string
		fs   *fakeServer
	}{
		// Names as long as 250,000 entries allow within 32 MiB.
		{"names", &fakeServer{perPacket: 1000, nameLen: int(maxListBytes/maxListEntries) - 4 - 8 - 1, total: int(maxListEntries)}},
		// The same with an empty extended attribute each (8 bytes, 32
		// held), names shorter to make room: the most held.
		{"extended", &fakeServer{perPacket: 1000, nameLen: int(maxListBytes/maxListEntries) - 4 - 8 - 1 - 12, total: int(maxListEntries), ext: func(int) int { return 1 }}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c, lb := fakeClient(t, tc.fs)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			entries, err := lb.readDir(context.Background(), c, "/full")
			runtime.GC()
			runtime.ReadMemStats(&after)
			if err != nil || len(entries) != tc.fs.total {
				t.Fatalf("%d entries, %v; want %d", len(entries), err, tc.fs.total)
			}
			held := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
			t.Logf("%d entries, %d NAME bytes: %.1f MiB held", len(entries), lb.in.nameBytes, held)
			// The README's worst case (about 60 MiB), with a margin for
			// the runtime's own bookkeeping.
			if held > 80 {
				t.Errorf("a listing at the bounds holds %.1f MiB, over 80", held)
			}
			runtime.KeepAlive(entries)
		})
	}
}

type sink struct{ got []byte }

func (s *sink) Write(p []byte) (int, error) { s.got = append(s.got, p...); return len(p), nil }
func (s *sink) Close() error                { return nil }

// TestStoppedListingWrites: once a listing is stopped, a write starting a
// READDIR is refused whole; other packets, and bytes 12 inside a packet,
// pass; when the listing is over, READDIR passes again.
func TestStoppedListingWrites(t *testing.T) {
	lb := newListBound()
	out := &sink{}
	w := boundWriter{out, lb}
	readdir := packet(fxpReaddir, 0, 0, 0, 1, 0, 0, 0, 1, 'h')
	stat := packet(17, 0, 0, 0, 2)
	write := func(p []byte) error { _, err := w.Write(p); return err }
	lb.active, lb.tripped, lb.cancel = true, storage.ErrTooLarge, func() {}
	if err := write(readdir); !errors.Is(err, errListingStopped) {
		t.Errorf("READDIR of a stopped listing: err = %v", err)
	}
	// A packet whose header and payload come apart, the payload looking
	// like a READDIR.
	if err := errors.Join(write(stat[:5]), write(stat[5:]), write(packet(5, 0, 0, 0, 3)[:7]), write([]byte{0, 0, 0, 9, fxpReaddir, 0, 0})); err != nil {
		t.Errorf("other packets: %v", err)
	}
	lb.active, lb.tripped = false, nil
	if err := write(readdir); err != nil {
		t.Errorf("READDIR after the listing: %v", err)
	}
	if want := len(stat) + 7 + 7 + len(readdir); len(out.got) != want {
		t.Errorf("%d bytes written, want %d", len(out.got), want)
	}
}
