package indexer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// spool keeps every tile's verdict on disk as soon as it is known, so that
// a scan's memory does not grow with its tiles: a national run holds
// millions. What stays in memory is one small entry per tile, its key and
// where its record is; everything else (the header, its bands, the
// problem's detail) is read back from the file when an output needs it.
type spool struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	end     int64
	entries []entry
	keys    keyArena
	err     error
	// misplaced are the tiles the union set aside after they were spooled.
	misplaced map[string]*ProblemEntry
	// placed are the WGS84 outlines of problem tiles whose header placed
	// them, drawn once the reads are done.
	placed map[string]*geometry
}

// entry is one spooled tile: its key and, packed in one word so that a
// million entries cost 24 MB, where its record starts (offBits: a spool
// of up to 64 GiB), its length (lenBits) and its flags.
type entry struct {
	key string
	at  uint64
}

const (
	flagBits = 4
	lenBits  = 24
	offBits  = 64 - lenBits - flagBits
	maxSpool = 1 << offBits
)

func packEntry(off int64, n int, flags uint8) uint64 {
	return uint64(off)<<(lenBits+flagBits) | uint64(n)<<flagBits | uint64(flags)
}

func (e entry) off() int64     { return int64(e.at >> (lenBits + flagBits)) }
func (e entry) n() int         { return int(e.at >> flagBits & (1<<lenBits - 1)) }
func (e entry) flags() uint8   { return uint8(e.at & (1<<flagBits - 1)) }
func (e *entry) clear(f uint8) { e.at &^= uint64(f) }

const (
	flagReadable uint8 = 1 << iota
	flagReused
	// flagTransient marks an unreachable tile the storage may serve next
	// time: it makes the scan incomplete.
	flagTransient
	flagPlaced // a problem tile whose header placed it
)

// Every flag must fit in flagBits: this fails to compile otherwise.
var _ [1<<flagBits - int(flagPlaced)<<1]struct{}

// maxRecord bounds one spooled record (its length must fit lenBits): a
// header with thousands of bands is refused by raster long before.
const maxRecord = 1<<lenBits - 1

// spooled is a Tile as written to the spool.
type spooled struct {
	Key       string          `json:"k"`
	Size      int64           `json:"s"`
	ETag      string          `json:"e,omitempty"`
	ModTime   time.Time       `json:"m"`
	Header    *raster.Header  `json:"h,omitempty"`
	Problem   *ProblemEntry   `json:"p,omitempty"`
	Reused    bool            `json:"r,omitempty"`
	Placed    *footprint.Tile `json:"pl,omitempty"`
	Permanent bool            `json:"pe,omitempty"`
}

// newSpool opens an unlinked temporary file: nothing is left behind, even
// when the process is killed.
func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "pcrs-indexer-spool-*")
	if err != nil {
		return nil, fmt.Errorf("creating the scan's spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating the scan's spool: %w", err)
	}
	s := &spool{f: f, w: bufio.NewWriterSize(f, 1<<20), misplaced: map[string]*ProblemEntry{}, placed: map[string]*geometry{}}
	// A Result dropped without Close must not keep a descriptor open.
	runtime.AddCleanup(s, func(f *os.File) { f.Close() }, f)
	return s, nil
}

// add records t's verdict. Called from every reader at once.
func (s *spool) add(t *Tile) error {
	b, err := json.Marshal(spooled{Key: t.Object.Key, Size: t.Object.Size, ETag: t.Object.ETag, ModTime: t.Object.ModTime,
		Header: t.Header, Problem: t.Problem, Reused: t.Reused, Placed: t.placed, Permanent: t.permanent})
	if err != nil {
		return fmt.Errorf("spooling %s: %w", t.Object.Key, err)
	}
	if len(b) > maxRecord {
		return fmt.Errorf("spooling %s: a %d-byte verdict", t.Object.Key, len(b))
	}
	var flags uint8
	switch {
	case t.Header != nil:
		flags |= flagReadable
	case t.Problem != nil && t.Problem.Reason == ReasonUnreachable && !t.permanent:
		flags |= flagTransient
	}
	if t.Reused {
		flags |= flagReused
	}
	if t.placed != nil {
		flags |= flagPlaced
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.end+int64(len(b)) > maxSpool {
		s.err = fmt.Errorf("spooling %s: the scan's spool would pass %d GiB", t.Object.Key, maxSpool>>30)
		return s.err
	}
	e := entry{key: s.keys.add(t.Object.Key), at: packEntry(s.end, len(b), flags)}
	if _, err := s.w.Write(b); err != nil {
		s.err = fmt.Errorf("writing the scan's spool: %w", err)
		return s.err
	}
	s.end += int64(len(b))
	s.entries = append(s.entries, e)
	return nil
}

// finish makes the spool readable, its tiles sorted by key. A key spooled
// twice keeps its last verdict.
func (s *spool) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing the scan's spool: %w", err)
	}
	sort.SliceStable(s.entries, func(i, j int) bool { return s.entries[i].key < s.entries[j].key })
	out := s.entries[:0]
	for i, e := range s.entries {
		if i+1 < len(s.entries) && s.entries[i+1].key == e.key {
			continue
		}
		out = append(out, e)
	}
	clear(s.entries[len(out):])
	s.entries = out
	return nil
}

// keyArena holds the spooled keys back to back in large chunks: a million
// keys cost one allocation per chunk instead of one each, and no size
// class rounds a 33-byte key up to 48. A chunk's bytes are never written
// again once a key is in them, which is what makes the strings that view
// them immutable.
type keyArena struct{ chunk []byte }

const (
	keyChunk = 256 << 10
	// longKey: a key this long gets its own allocation rather than a
	// chunk mostly left empty.
	longKey = keyChunk / 16
)

func (a *keyArena) add(key string) string {
	if key == "" || len(key) >= longKey {
		return strings.Clone(key)
	}
	if len(key) > cap(a.chunk)-len(a.chunk) {
		a.chunk = make([]byte, 0, keyChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, key...)
	return unsafe.String(&a.chunk[start], len(key))
}

// tile reads entry i back. The union's verdict overrides the reader's.
func (s *spool) tile(i int, buf *[]byte) (Tile, error) {
	e := s.entries[i]
	if cap(*buf) < e.n() {
		*buf = make([]byte, e.n())
	}
	b := (*buf)[:e.n()]
	if _, err := s.f.ReadAt(b, e.off()); err != nil {
		return Tile{}, fmt.Errorf("reading back %s from the scan's spool: %w", e.key, err)
	}
	var r spooled
	if err := json.Unmarshal(b, &r); err != nil {
		return Tile{}, fmt.Errorf("reading back %s from the scan's spool: %w", e.key, err)
	}
	// The entry's key, not the record's copy: callers keeping keys keep
	// no second copy of each.
	t := Tile{Object: storage.Object{Key: e.key, Size: r.Size, ETag: r.ETag, ModTime: r.ModTime},
		Header: r.Header, Problem: r.Problem, Reused: r.Reused, placed: r.Placed, permanent: r.Permanent}
	if r.Header != nil {
		t.Polygon = placement(r.Header)
	}
	// Looked up under the entry's key: the record's went through JSON,
	// which turns a name's invalid UTF-8 into U+FFFD.
	if p, ok := s.misplaced[e.key]; ok {
		t.Header, t.Polygon, t.Reused = nil, footprint.Tile{}, false
		t.Problem = p
	}
	if g, ok := s.placed[e.key]; ok && t.Problem != nil {
		t.Problem.Geometry = g
	}
	return t, nil
}

// each calls fn on every tile in key order; only the entries flagged
// (any of want, or all when want is 0) are read back.
func (s *spool) each(want uint8, fn func(t *Tile) error) error {
	var buf []byte
	for i, e := range s.entries {
		if want != 0 && e.flags()&want == 0 {
			continue
		}
		t, err := s.tile(i, &buf)
		if err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
	}
	return nil
}

// count is how many entries carry any of the flags: slices sized once
// never double past what a million tiles need.
func (s *spool) count(flags uint8) int {
	n := 0
	for _, e := range s.entries {
		if e.flags()&flags != 0 {
			n++
		}
	}
	return n
}

// keysAt names the rejected tiles, each Index counting only the entries
// flagged want, as each does when it reads them: one pass, for the
// rejects come by increasing Index.
func (s *spool) keysAt(want uint8, rejected []footprint.Rejected) []string {
	keys := make([]string, 0, len(rejected))
	k := 0
	for _, e := range s.entries {
		if len(keys) == len(rejected) {
			break
		}
		if e.flags()&want == 0 {
			continue
		}
		for len(keys) < len(rejected) && rejected[len(keys)].Index == k {
			keys = append(keys, e.key)
		}
		k++
	}
	return keys
}

// has says whether key was spooled (after finish).
func (s *spool) has(key string) bool {
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].key >= key })
	return i < len(s.entries) && s.entries[i].key == key
}

// setAside records the union's verdict on a readable tile.
func (s *spool) setAside(key string, p *ProblemEntry) {
	s.misplaced[key] = p
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].key >= key })
	if i < len(s.entries) && s.entries[i].key == key {
		s.entries[i].clear(flagReadable | flagReused)
	}
}

func (s *spool) close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
