package raster

import "encoding/binary"

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

// checkJP2 walks the top-level boxes up to the codestream. A box that ends
// past the object, or a codestream tile-part that does, means the file was
// cut. Only bytes already fetched for GDAL are looked at past the codestream
// start, so the check costs no request.
func checkJP2(o *openObject, f *cachedFile) error {
	for off := int64(0); off < f.size; {
		b, ok := boxAt(o, f, off, f.size, true)
		switch {
		case !ok:
			return problem(ErrCorrupt, "JPEG 2000 box header at byte %d cut short (object holds %d bytes)", off, f.size)
		case b.size < b.hdr:
			return problem(ErrCorrupt, "JPEG 2000 box %q at byte %d declares an impossible length %d", b.typ, off, b.size)
		case b.end() > f.size:
			return problem(ErrCorrupt, "JPEG 2000 box %q at byte %d declares %d bytes, ending at byte %d, but the object holds %d bytes: transfer cut short", b.typ, off, b.size, b.end(), f.size)
		case b.typ == "jp2c":
			return checkCodestream(o, f, b.body(), b.end())
		}
		off = b.end()
	}
	return nil
}

// checkCodestream follows the chain of tile-parts (SOT markers' Psot) as far
// as the cached bytes go.
func checkCodestream(o *openObject, f *cachedFile, start, end int64) error {
	if soc, ok := f.peek(o, start, 2); !ok || soc[0] != 0xFF || soc[1] != 0x4F {
		return problem(ErrCorrupt, "JPEG 2000 codestream at byte %d does not start with SOC", start)
	}
	pos := start + 2
	for pos+4 <= end {
		buf, ok := f.peek(o, pos, 12)
		if !ok {
			return nil
		}
		if buf[0] != 0xFF {
			return nil // not a marker: leave the judgement to the decoder
		}
		marker := buf[1]
		segLen := int64(binary.BigEndian.Uint16(buf[2:4]))
		switch marker {
		case 0xD9: // EOC
			return nil
		case 0x90: // SOT: Psot is the tile-part length from this marker on
			psot := int64(binary.BigEndian.Uint32(buf[6:10]))
			if psot == 0 {
				return nil // last tile-part, runs to EOC
			}
			if pos+psot > end {
				return problem(ErrCorrupt, "JPEG 2000 tile-part at byte %d declares %d bytes, ending at byte %d, but the codestream ends at byte %d: transfer cut short", pos, psot, pos+psot, end)
			}
			pos += psot
		default:
			pos += 2 + segLen
		}
	}
	return nil
}
