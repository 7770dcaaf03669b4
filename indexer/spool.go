package indexer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/internal/extsort"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"

	"github.com/openpcrs/pcrs-indexer/internal/scratch"
)

// spool keeps every tile's verdict on disk as soon as it is known, so that
// a scan's memory does not grow with its tiles: a national run holds
// millions. Its index (each tile's key, where its record is, its flags) is
// sorted on disk too (extsort): memory holds one run of it at most. The
// header, its bands, the problem's detail are read back from the records
// when an output needs them.
type spool struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	end    int64
	sorter *extsort.Sorter
	// index is the sorted index, once finished: a key spooled twice
	// keeps its last verdict.
	index *extsort.Sorted
	err   error
	// aside are the tiles the union set aside after they were spooled,
	// in key order (asideRecord): a delivery whose every tile is
	// misplaced holds none in memory.
	aside *extsort.Sorted
	// cursor walks the index for has, whose callers ask in key order.
	cursor    *extsort.Iter
	cursorOK  bool
	cursorKey string
}

// entry is one spooled tile's place in the spool, packed in one word:
// where its record starts (offBits: a spool of up to 64 GiB), its length
// (lenBits) and its flags. An index record is the entry, then the key.
type entry uint64

// indexBudget is the index bytes sorted in memory before a run goes to
// disk: about 80,000 tiles.
const indexBudget = 4 << 20

const (
	flagBits = 4
	lenBits  = 24
	offBits  = 64 - lenBits - flagBits
	maxSpool = 1 << offBits
)

func packEntry(off int64, n int, flags uint8) entry {
	return entry(uint64(off)<<(lenBits+flagBits) | uint64(n)<<flagBits | uint64(flags))
}

func (e entry) off() int64            { return int64(e >> (lenBits + flagBits)) }
func (e entry) n() int                { return int(e >> flagBits & (1<<lenBits - 1)) }
func (e entry) flags() uint8          { return uint8(e & (1<<flagBits - 1)) }
func (e entry) without(f uint8) entry { return e &^ entry(f) }

// indexRecord is the index's record of key at e; indexKey and indexEntry
// read it back.
func indexRecord(buf []byte, key string, e entry) []byte {
	return append(binary.BigEndian.AppendUint64(buf[:0], uint64(e)), key...)
}

func indexKey(rec []byte) []byte  { return rec[8:] }
func indexEntry(rec []byte) entry { return entry(binary.BigEndian.Uint64(rec)) }

// indexOrder sorts the index by key, a key's last record kept; budget is
// the index bytes held before a run goes to disk.
func indexOrder(budget int) extsort.Options {
	return extsort.Options{
		Compare: func(a, b []byte) int { return bytes.Compare(indexKey(a), indexKey(b)) },
		Same:    func(a, b []byte) bool { return bytes.Equal(indexKey(a), indexKey(b)) },
		Budget:  budget,
	}
}

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
	f, err := scratch.File("spool")
	if err != nil {
		return nil, err
	}
	s := &spool{f: f, w: bufio.NewWriterSize(f, 1<<20), sorter: extsort.New(indexOrder(indexBudget))}
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
	if _, err := s.w.Write(b); err != nil {
		s.err = fmt.Errorf("writing the scan's spool: %w", err)
		return s.err
	}
	// b is free again: the index record reuses it.
	if err := s.sorter.Add(indexRecord(b, t.Object.Key, packEntry(s.end, len(b), flags))); err != nil {
		s.err = fmt.Errorf("spooling %s: %w", t.Object.Key, err)
		return s.err
	}
	s.end += int64(len(b))
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
	index, err := s.sorter.Sort()
	if err != nil {
		return fmt.Errorf("sorting the scan's spool: %w", err)
	}
	s.index, s.sorter = index, nil
	return nil
}

// len is how many tiles were spooled (after finish).
func (s *spool) len() int { return s.index.Len() }

// walk calls fn on every entry in key order, with the union's verdict:
// a tile it set aside is no longer readable, and aside is its problem
// (nil for the others). key is valid until fn returns.
func (s *spool) walk(fn func(key []byte, e entry, aside *ProblemEntry) error) error {
	var set *extsort.Iter
	more := false
	if s.aside != nil {
		set = s.aside.Iter()
		more = set.Next()
	}
	err := s.index.Each(func(rec []byte) error {
		key, e := indexKey(rec), indexEntry(rec)
		var p *ProblemEntry
		for more && bytes.Compare(asideKey(set.Record()), key) < 0 {
			more = set.Next()
		}
		if more && bytes.Equal(asideKey(set.Record()), key) {
			p = &ProblemEntry{Reason: ReasonMisplaced, Detail: asideDetail(set.Record())}
			e = e.without(flagReadable | flagReused)
		}
		return fn(key, e, p)
	})
	if err == nil && set != nil {
		err = set.Err()
	}
	return err
}

// tile reads key's record back. The union's verdict overrides the
// reader's.
func (s *spool) tile(key string, e entry, aside *ProblemEntry, buf *[]byte) (Tile, error) {
	if cap(*buf) < e.n() {
		*buf = make([]byte, e.n())
	}
	b := (*buf)[:e.n()]
	if _, err := s.f.ReadAt(b, e.off()); err != nil {
		return Tile{}, fmt.Errorf("reading back %s from the scan's spool: %w", key, err)
	}
	var r spooled
	if err := json.Unmarshal(b, &r); err != nil {
		return Tile{}, fmt.Errorf("reading back %s from the scan's spool: %w", key, err)
	}
	// The index's key, not the record's copy: JSON turned a name's
	// invalid UTF-8 into U+FFFD there.
	t := Tile{Object: storage.Object{Key: key, Size: r.Size, ETag: r.ETag, ModTime: r.ModTime},
		Header: r.Header, Problem: r.Problem, Reused: r.Reused, placed: r.Placed, permanent: r.Permanent}
	if r.Header != nil {
		t.Polygon = placement(r.Header)
	}
	if aside != nil {
		t.Header, t.Polygon, t.Reused = nil, footprint.Tile{}, false
		t.Problem = aside
	}
	return t, nil
}

// each calls fn on every tile in key order; only the entries flagged
// (any of want, or all when want is 0) are read back.
func (s *spool) each(want uint8, fn func(t *Tile) error) error {
	return s.eachWhere(func(flags uint8) bool { return want == 0 || flags&want != 0 }, fn)
}

// eachProblem calls fn on every problem tile in key order: readable ones
// are not even read back.
func (s *spool) eachProblem(fn func(t *Tile) error) error {
	return s.eachWhere(func(flags uint8) bool { return flags&flagReadable == 0 }, fn)
}

func (s *spool) eachWhere(keep func(flags uint8) bool, fn func(t *Tile) error) error {
	var buf []byte
	return s.walk(func(key []byte, e entry, aside *ProblemEntry) error {
		if !keep(e.flags()) {
			return nil
		}
		t, err := s.tile(string(key), e, aside, &buf)
		if err != nil {
			return err
		}
		return fn(&t)
	})
}

// count is how many entries carry any of the flags.
func (s *spool) count(flags uint8) (int, error) {
	n := 0
	err := s.walk(func(_ []byte, e entry, _ *ProblemEntry) error {
		if e.flags()&flags != 0 {
			n++
		}
		return nil
	})
	return n, err
}

// setAside records the union's verdict on the readable tiles it rejected,
// each Index counting only the readable entries, as the union's input
// was read (each(flagReadable)), and tells named of each. It says how
// many it named: a rejected tile left unnamed would be published as
// readable.
func (s *spool) setAside(rejected *extsort.Sorted, named func(key, detail []byte)) (int, error) {
	if s.aside != nil {
		// A second call would replace the first's set-asides, publishing
		// them as readable.
		return 0, errors.New("setting misplaced tiles aside twice")
	}
	out := extsort.New(asideOrder)
	defer out.Close()
	it := rejected.Iter()
	more := it.Next()
	rank, n := 0, 0
	var rec []byte
	err := s.walk(func(key []byte, e entry, _ *ProblemEntry) error {
		if !more || e.flags()&flagReadable == 0 {
			return nil
		}
		if more && rejectedIndex(it.Record()) == rank {
			rec = binary.AppendUvarint(rec[:0], uint64(len(key)))
			rec = append(append(rec, key...), rejectedDetail(it.Record())...)
			if err := out.Add(rec); err != nil {
				return err
			}
			named(key, rejectedDetail(it.Record()))
			n++
			more = it.Next()
		}
		rank++
		return nil
	})
	if err == nil {
		err = it.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("setting misplaced tiles aside: %w", err)
	}
	aside, err := out.Sort()
	if err != nil {
		return 0, fmt.Errorf("setting misplaced tiles aside: %w", err)
	}
	s.aside = aside
	return n, nil
}

// A rejected record is the tile's index among the readable ones, 8 bytes
// big-endian, then the reason; an aside record is the key, its length
// first, then the reason.
func rejectedRecord(buf []byte, index int, detail string) []byte {
	return append(binary.BigEndian.AppendUint64(buf[:0], uint64(index)), detail...)
}

func rejectedIndex(rec []byte) int     { return int(binary.BigEndian.Uint64(rec)) }
func rejectedDetail(rec []byte) []byte { return rec[8:] }

func asideKey(rec []byte) []byte {
	n, k := binary.Uvarint(rec)
	return rec[k : k+int(n)]
}

func asideDetail(rec []byte) string {
	n, k := binary.Uvarint(rec)
	return string(rec[k+int(n):])
}

// rejectedOrder sorts rejections by index, one per index (the union
// rejects a tile once; were it twice, the last would stand);
// asideOrder sorts set-asides by key.
var (
	rejectedOrder = extsort.Options{
		Compare: func(a, b []byte) int { return bytes.Compare(a[:8], b[:8]) },
		Same:    func(a, b []byte) bool { return bytes.Equal(a[:8], b[:8]) },
	}
	asideOrder = extsort.Options{Compare: func(a, b []byte) int { return bytes.Compare(asideKey(a), asideKey(b)) }}
)

// has says whether key was spooled (after finish). Its caller, the
// state's Prune, asks in key order: one forward walk of the index answers
// them all. A key asked out of order starts the walk again. When the index
// cannot be read, has says yes: a record kept too long costs one read,
// one forgotten costs the verdict.
func (s *spool) has(key string) bool {
	if s.cursor == nil || key < s.cursorKey {
		s.cursor = s.index.Iter()
		s.cursorOK = s.cursor.Next()
	}
	s.cursorKey = key
	for s.cursorOK && string(indexKey(s.cursor.Record())) < key {
		s.cursorOK = s.cursor.Next()
	}
	if s.cursor.Err() != nil {
		return true
	}
	return s.cursorOK && string(indexKey(s.cursor.Record())) == key
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
		err = nil
	}
	if s.sorter != nil {
		s.sorter.Close()
	}
	return errors.Join(err, s.index.Close(), s.aside.Close())
}
