package fgb

import (
	"bufio"
	"container/heap"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// item is a feature's entry in the index: its box, where its size-prefixed
// buffer lies in the features file, and the Hilbert value of the box's
// centre (computed at Close, once the extent is known).
type item struct {
	minX, minY, maxX, maxY float64
	off                    uint64
	size                   uint32
	h                      uint32
}

// itemSize is an item's size on disk.
const itemSize = 48

func (it *item) put(b []byte) {
	le.PutUint64(b[0:], math.Float64bits(it.minX))
	le.PutUint64(b[8:], math.Float64bits(it.minY))
	le.PutUint64(b[16:], math.Float64bits(it.maxX))
	le.PutUint64(b[24:], math.Float64bits(it.maxY))
	le.PutUint64(b[32:], it.off)
	le.PutUint32(b[40:], it.size)
	le.PutUint32(b[44:], it.h)
}

func (it *item) get(b []byte) {
	it.minX = math.Float64frombits(le.Uint64(b[0:]))
	it.minY = math.Float64frombits(le.Uint64(b[8:]))
	it.maxX = math.Float64frombits(le.Uint64(b[16:]))
	it.maxY = math.Float64frombits(le.Uint64(b[24:]))
	it.off = le.Uint64(b[32:])
	it.size = le.Uint32(b[40:])
	it.h = le.Uint32(b[44:])
}

// cmpItems orders by Hilbert value, then by write order: a total order,
// so the output does not depend on how the sort was split into runs.
func cmpItems(a, b *item) int {
	switch {
	case a.h < b.h:
		return -1
	case a.h > b.h:
		return 1
	case a.off < b.off:
		return -1
	case a.off > b.off:
		return 1
	}
	return 0
}

// fanIn is the most runs merged at once: fanIn buffered readers of
// mergeBuf bytes each.
const (
	fanIn    = 64
	mergeBuf = 32 << 10
)

// span is a sorted run in a runs file, counted in items.
type span struct{ start, count uint64 }

// sortItems calls emit with every item in Hilbert order (emit must not
// keep the pointer). It sorts runs of at most RunSize items in memory,
// writes them to a runs file, merges them fanIn at a time into another
// until at most fanIn remain, and merges those into emit.
func (w *Writer) sortItems(emit func(*item) error) error {
	n := w.count
	runCap := uint64(w.opt.runSize)
	src := bufio.NewReaderSize(io.NewSectionReader(w.items, 0, int64(n)*itemSize), 1<<16)
	curve := newHilbertCurve(w.env)
	run := make([]item, min(n, runCap))
	var rec [itemSize]byte
	var spans []span
	var runs *os.File
	var out *bufio.Writer
	for done := uint64(0); done < n; {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		r := run[:min(runCap, n-done)]
		for i := range r {
			if _, err := io.ReadFull(src, rec[:]); err != nil {
				return fmt.Errorf("fgb: reading items: %w", err)
			}
			r[i].get(rec[:])
			r[i].h = curve.value(&r[i])
		}
		slices.SortFunc(r, func(a, b item) int { return cmpItems(&a, &b) })
		if uint64(len(r)) == n { // a single run: straight from memory
			for i := range r {
				if i%4096 == 0 {
					if err := w.ctx.Err(); err != nil {
						return err
					}
				}
				if err := emit(&r[i]); err != nil {
					return err
				}
			}
			return nil
		}
		if runs == nil {
			var err error
			if runs, err = w.temp(w.tempDir(), ".runs"); err != nil {
				return err
			}
			out = bufio.NewWriterSize(runs, 1<<16)
		}
		for i := range r {
			r[i].put(rec[:])
			if _, err := out.Write(rec[:]); err != nil {
				return fmt.Errorf("fgb: writing runs: %w", err)
			}
		}
		spans = append(spans, span{done, uint64(len(r))})
		done += uint64(len(r))
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("fgb: writing runs: %w", err)
	}

	var spare *os.File
	for len(spans) > fanIn {
		if spare == nil {
			var err error
			if spare, err = w.temp(w.tempDir(), ".runs"); err != nil {
				return err
			}
		} else if err := spare.Truncate(0); err != nil {
			return fmt.Errorf("fgb: %w", err)
		}
		out := bufio.NewWriterSize(io.NewOffsetWriter(spare, 0), 1<<16)
		var next []span
		var pos uint64
		for i := 0; i < len(spans); i += fanIn {
			group := spans[i:min(i+fanIn, len(spans))]
			var count uint64
			for _, s := range group {
				count += s.count
			}
			err := merge(w.ctx, runs, group, func(it *item) error {
				it.put(rec[:])
				_, err := out.Write(rec[:])
				return err
			})
			if err != nil {
				return fmt.Errorf("fgb: merging runs: %w", err)
			}
			next = append(next, span{pos, count})
			pos += count
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("fgb: writing runs: %w", err)
		}
		runs, spare = spare, runs
		spans = next
	}
	return merge(w.ctx, runs, spans, emit)
}

func (w *Writer) tempDir() string {
	if w.opt.tempDir != "" {
		return w.opt.tempDir
	}
	return filepath.Dir(w.path)
}

// cursor reads one sorted run.
type cursor struct {
	r    *bufio.Reader
	left uint64
	it   item
	rec  [itemSize]byte
}

func (c *cursor) next() (bool, error) {
	if c.left == 0 {
		return false, nil
	}
	if _, err := io.ReadFull(c.r, c.rec[:]); err != nil {
		return false, fmt.Errorf("fgb: reading runs: %w", err)
	}
	c.it.get(c.rec[:])
	c.left--
	return true, nil
}

type cursorHeap []*cursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return cmpItems(&h[i].it, &h[j].it) < 0 }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// merge calls emit with the items of the sorted runs of f, in order.
func merge(ctx context.Context, f *os.File, spans []span, emit func(*item) error) error {
	h := make(cursorHeap, 0, len(spans))
	for _, s := range spans {
		c := &cursor{
			r:    bufio.NewReaderSize(io.NewSectionReader(f, int64(s.start)*itemSize, int64(s.count)*itemSize), mergeBuf),
			left: s.count,
		}
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for k := 0; len(h) > 0; k++ {
		if k%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c := h[0]
		if err := emit(&c.it); err != nil {
			return err
		}
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// hilbertMax is the largest cell coordinate: the curve covers a 2^16 by
// 2^16 grid over the layer's extent.
const hilbertMax = 1<<16 - 1

// hilbertCurve maps a box's centre to its cell in the grid over the
// extent, then to the cell's rank along the Hilbert curve.
type hilbertCurve struct{ minX, minY, sx, sy float64 }

func newHilbertCurve(env [4]float64) hilbertCurve {
	c := hilbertCurve{minX: env[0], minY: env[1]}
	if w := env[2] - env[0]; w > 0 {
		c.sx = hilbertMax / w
	}
	if h := env[3] - env[1]; h > 0 {
		c.sy = hilbertMax / h
	}
	return c
}

func (c *hilbertCurve) value(it *item) uint32 {
	x := cell(((it.minX+it.maxX)/2 - c.minX) * c.sx)
	y := cell(((it.minY+it.maxY)/2 - c.minY) * c.sy)
	return hilbert(x, y)
}

// cell floors v into [0, hilbertMax]; NaN (an infinite extent) is 0.
func cell(v float64) uint32 {
	if !(v > 0) {
		return 0
	}
	if v >= hilbertMax {
		return hilbertMax
	}
	return uint32(v)
}

// hilbert is the rank of cell (x, y) along the Hilbert curve filling the
// 2^16 by 2^16 grid. Walking from the largest quadrant size down, each
// step adds the rank of the quadrant holding the cell (lower left 0, upper
// left 1, upper right 2, lower right 3, times the cells per quadrant),
// then maps the cell into that quadrant's frame: the curve in the lower
// left quadrant is the whole curve reflected across the main diagonal, in
// the lower right one across the other diagonal.
func hilbert(x, y uint32) uint32 {
	const n = 1 << 16
	var d uint32
	for s := uint32(n / 2); s > 0; s /= 2 {
		var rx, ry uint32
		if x&s != 0 {
			rx = 1
		}
		if y&s != 0 {
			ry = 1
		}
		d += s * s * ((3 * rx) ^ ry)
		if ry == 0 {
			if rx == 1 {
				x = n - 1 - x
				y = n - 1 - y
			}
			x, y = y, x
		}
	}
	return d
}
