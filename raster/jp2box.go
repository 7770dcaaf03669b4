package raster

import "encoding/binary"

// peek returns n bytes at off when they are already fetched: the header
// parsers use it to look without ever costing a storage request.
func (f *cachedFile) peek(o *openObject, off int64, n int) ([]byte, bool) {
	if off < 0 || n <= 0 || off+int64(n) > f.size || !f.cached(off, n) {
		return nil, false
	}
	b := make([]byte, n)
	_, err := f.readAt(o, b, off)
	return b, err == nil
}

// jp2Box is a JPEG 2000 box: its type, where it starts, its header's
// length and its whole length as declared (a length of 0, "to the end",
// is resolved against the parent's end).
type jp2Box struct {
	typ            string
	off, hdr, size int64
}

func (b jp2Box) body() int64 { return b.off + b.hdr }
func (b jp2Box) end() int64  { return b.off + b.size }

// boxAt reads the box header at off, in a parent ending at end. With fetch
// it may read from the storage (the integrity check must reach the
// codestream); without, only bytes already fetched are used. The declared
// length is not checked: callers judge it.
func boxAt(o *openObject, f *cachedFile, off, end int64, fetch bool) (jp2Box, bool) {
	read := func(at int64, n int) ([]byte, bool) {
		if !fetch {
			return f.peek(o, at, n)
		}
		b := make([]byte, n)
		_, err := f.readAt(o, b, at)
		return b, err == nil && at+int64(n) <= f.size
	}
	h, ok := read(off, 8)
	if !ok {
		return jp2Box{}, false
	}
	b := jp2Box{typ: string(h[4:8]), off: off, hdr: 8, size: int64(binary.BigEndian.Uint32(h[:4]))}
	switch b.size {
	case 0:
		b.size = end - off
	case 1:
		xl, ok := read(off+8, 8)
		if !ok {
			return b, false
		}
		b.hdr, b.size = 16, int64(binary.BigEndian.Uint64(xl))
	}
	return b, true
}

// fits says whether the box's declared length is possible in its parent.
func (b jp2Box) fits(end int64) bool { return b.size >= b.hdr && b.end() <= end }
