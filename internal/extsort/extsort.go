// Package extsort sorts more records than a scan should hold in memory: a
// national storage lists millions of tiles, and what a scan keeps of each
// must live on disk. Records are gathered up to a byte budget, sorted and
// written as runs to one unlinked temporary file, then merged into
// another, read back as many times as needed. Memory is the budget plus a
// read buffer per run merged at once, whatever the number of records.
package extsort

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"

	"github.com/openpcrs/pcrs-indexer/internal/scratch"
)

// ErrTooLarge is a record over MaxRecord.
var ErrTooLarge = errors.New("record too large to sort")

// MaxRecord bounds one record: a key of a few kilobytes at most in use.
const MaxRecord = 1 << 20

// maxFanIn bounds the runs merged at once, and so the read buffers held:
// more runs are merged in rounds.
const maxFanIn = 64

const readBuffer = 32 << 10

// Options tune a sort.
type Options struct {
	// Compare orders records (nil: bytes.Compare).
	Compare func(a, b []byte) int
	// Same, when set, says two records compare as one: of records the
	// sort finds the same, only the last added is kept.
	Same func(a, b []byte) bool
	// Budget is the memory a run holds (its records and their
	// bookkeeping) before it goes to disk.
	Budget int
}

// Sorter takes records in any order. Not safe for concurrent use.
type Sorter struct {
	opts Options
	buf  []byte // records of the current run, back to back
	ends []int  // where each record of buf ends
	runs *os.File
	at   []span // the runs written to runs
	end  int64
	err  error
}

type span struct{ off, n int64 }

// New is an empty sorter.
func New(opts Options) *Sorter {
	if opts.Budget <= 0 {
		opts.Budget = 4 << 20
	}
	if opts.Compare == nil {
		opts.Compare = bytes.Compare
	}
	return &Sorter{opts: opts}
}

// Add takes one record; its bytes are copied.
func (s *Sorter) Add(rec []byte) error {
	if s.err != nil {
		return s.err
	}
	if len(rec) > MaxRecord {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(rec), MaxRecord)
	}
	if s.held()+len(rec)+perRecord > s.opts.Budget && len(s.ends) > 0 {
		if s.err = s.spill(); s.err != nil {
			return s.err
		}
	}
	s.buf = append(s.buf, rec...)
	s.ends = append(s.ends, len(s.buf))
	return nil
}

// perRecord is what a record held costs beyond its bytes: its end in
// ends and its slice in sorted. Counted in the budget, so that small
// records (a 12-byte size) hold no more than large ones.
const perRecord = 8 + 24

// held is the current run's memory as the budget counts it.
func (s *Sorter) held() int { return len(s.buf) + perRecord*len(s.ends) }

// sorted is the current run's records in order, stable: of equal ones the
// last added comes last, which is the one Same keeps.
func (s *Sorter) sorted() [][]byte {
	recs := make([][]byte, len(s.ends))
	start := 0
	for i, e := range s.ends {
		recs[i] = s.buf[start:e:e]
		start = e
	}
	slices.SortStableFunc(recs, s.opts.Compare)
	return recs
}

// spill writes the current run to disk.
func (s *Sorter) spill() error {
	if s.runs == nil {
		f, err := tempFile()
		if err != nil {
			return err
		}
		s.runs = f
	}
	w := &writer{w: bufio.NewWriterSize(io.NewOffsetWriter(s.runs, s.end), readBuffer)}
	for _, r := range s.sorted() {
		w.put(r)
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("writing a sorted run: %w", err)
	}
	s.at = append(s.at, span{s.end, w.n})
	s.end += w.n
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	return nil
}

// Sort merges every record added into a Sorted, and frees the sorter.
func (s *Sorter) Sort() (*Sorted, error) {
	if s.err != nil {
		return nil, s.err
	}
	defer s.Close()
	out, err := tempFile()
	if err != nil {
		return nil, err
	}
	res := &Sorted{f: out}
	runtime.AddCleanup(res, func(f *os.File) { f.Close() }, out)
	w := &writer{w: bufio.NewWriterSize(out, readBuffer), same: s.opts.Same}
	if len(s.at) == 0 {
		// Everything fits in one run: no run goes to disk.
		for _, r := range s.sorted() {
			w.put(r)
		}
	} else {
		if len(s.ends) > 0 {
			if err := s.spill(); err != nil {
				out.Close()
				return nil, err
			}
		}
		s.buf, s.ends = nil, nil // the merge's readers need the memory
		if err := s.merge(w); err != nil {
			out.Close()
			return nil, err
		}
	}
	if err := w.flush(); err != nil {
		out.Close()
		return nil, fmt.Errorf("writing the sorted records: %w", err)
	}
	res.size, res.n = w.n, w.count
	return res, nil
}

// merge merges the runs into w, in rounds of at most maxFanIn runs: the
// rounds before the last append their output to the runs file.
func (s *Sorter) merge(w *writer) error {
	for len(s.at) > maxFanIn {
		var next []span
		for i := 0; i < len(s.at); i += maxFanIn {
			group := s.at[i:min(i+maxFanIn, len(s.at))]
			rw := &writer{w: bufio.NewWriterSize(io.NewOffsetWriter(s.runs, s.end), readBuffer)}
			if err := s.mergeRuns(group, rw); err != nil {
				return err
			}
			if err := rw.flush(); err != nil {
				return fmt.Errorf("writing a merged run: %w", err)
			}
			next = append(next, span{s.end, rw.n})
			s.end += rw.n
		}
		s.at = next
	}
	return s.mergeRuns(s.at, w)
}

func (s *Sorter) mergeRuns(runs []span, w *writer) error {
	h := &mergeHeap{compare: s.opts.Compare}
	for i, r := range runs {
		rd := &reader{r: bufio.NewReaderSize(io.NewSectionReader(s.runs, r.off, r.n), readBuffer)}
		if rd.next() {
			h.items = append(h.items, mergeItem{rd: rd, run: i})
		} else if rd.err != nil {
			return rd.err
		}
	}
	heap.Init(h)
	for len(h.items) > 0 {
		top := &h.items[0]
		w.put(top.rd.rec)
		if w.err != nil {
			return fmt.Errorf("writing merged records: %w", w.err)
		}
		if top.rd.next() {
			heap.Fix(h, 0)
			continue
		}
		if top.rd.err != nil {
			return top.rd.err
		}
		heap.Pop(h)
	}
	return nil
}

// Close frees what a sorter never sorted holds (Sort frees it too).
func (s *Sorter) Close() {
	if s.runs != nil {
		s.runs.Close()
		s.runs = nil
	}
	s.buf, s.ends, s.at = nil, nil, nil
}

// Sorted is the records in order, on disk.
type Sorted struct {
	f    *os.File
	size int64
	n    int
}

// Len is how many records there are (after Same).
func (s *Sorted) Len() int { return s.n }

// Each calls fn on every record in order; rec is valid until fn returns.
func (s *Sorted) Each(fn func(rec []byte) error) error {
	it := s.Iter()
	for it.Next() {
		if err := fn(it.Record()); err != nil {
			return err
		}
	}
	return it.Err()
}

// Iter reads the records in order, one at a time. It holds its Sorted,
// whose cleanup would otherwise close the file under it.
type Iter struct {
	s    *Sorted
	rd   *reader
	read int
}

// Iter starts a new reading from the first record.
func (s *Sorted) Iter() *Iter {
	return &Iter{s: s, rd: &reader{r: bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.size), readBuffer)}}
}

// Next moves to the next record; false at the end or on an error. Fewer
// records than were written is an error: a file cut at a record's end
// must not read as a shorter truth.
func (it *Iter) Next() bool {
	if it.rd.next() {
		it.read++
		return true
	}
	if it.rd.err == nil && it.read != it.s.n {
		it.rd.err = fmt.Errorf("reading sorted records back: %d of %d", it.read, it.s.n)
	}
	return false
}

// Record is the current record, valid until Next.
func (it *Iter) Record() []byte { return it.rd.rec }

// Err is the error that stopped Next, if any.
func (it *Iter) Err() error { return it.rd.err }

// Close frees the disk space the records take.
func (s *Sorted) Close() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func tempFile() (*os.File, error) { return scratch.File("sort") }

// writer writes length-prefixed records, dropping a record Same finds the
// same as the next one.
type writer struct {
	w     *bufio.Writer
	same  func(a, b []byte) bool
	held  []byte
	hold  bool
	n     int64
	count int
	err   error
}

func (w *writer) put(rec []byte) {
	if w.same == nil {
		w.write(rec)
		return
	}
	if w.hold && !w.same(w.held, rec) {
		w.write(w.held)
	}
	w.held, w.hold = append(w.held[:0], rec...), true
}

func (w *writer) write(rec []byte) {
	if w.err != nil {
		return
	}
	// The buffer's own free space: a prefix array would escape, one
	// allocation a record.
	pre := binary.AppendUvarint(w.w.AvailableBuffer(), uint64(len(rec)))
	if _, w.err = w.w.Write(pre); w.err == nil {
		_, w.err = w.w.Write(rec)
	}
	w.n += int64(len(pre) + len(rec))
	w.count++
}

func (w *writer) flush() error {
	if w.hold {
		w.write(w.held)
		w.hold = false
	}
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

// reader reads what writer wrote. The files are ours, but a short or
// damaged one (a full disk) must fail, never allocate what a length says.
type reader struct {
	r   *bufio.Reader
	rec []byte
	err error
}

func (r *reader) next() bool {
	if r.err != nil {
		return false
	}
	n, err := binary.ReadUvarint(r.r)
	if err == io.EOF {
		return false
	}
	if err == nil && n > MaxRecord {
		err = fmt.Errorf("%w: a %d-byte record read back", ErrTooLarge, n)
	}
	if err == nil {
		r.rec = slices.Grow(r.rec[:0], int(n))[:n]
		_, err = io.ReadFull(r.r, r.rec)
	}
	if err != nil {
		r.err = fmt.Errorf("reading sorted records back: %w", err)
		return false
	}
	return true
}

type mergeItem struct {
	rd  *reader
	run int
}

// mergeHeap orders the runs by their current record; between equal ones
// the earlier run comes first, so the last added stays last.
type mergeHeap struct {
	items   []mergeItem
	compare func(a, b []byte) int
}

func (h *mergeHeap) Len() int { return len(h.items) }
func (h *mergeHeap) Less(i, j int) bool {
	if c := h.compare(h.items[i].rd.rec, h.items[j].rd.rec); c != 0 {
		return c < 0
	}
	return h.items[i].run < h.items[j].run
}
func (h *mergeHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap) Push(x any)    { h.items = append(h.items, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
