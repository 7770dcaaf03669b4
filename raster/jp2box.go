package raster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// Caps on what a JPEG 2000 file may make us (and then GDAL and OpenJPEG)
// walk, read or allocate. Real PCRS tiles hold about ten top-level boxes,
// a few kilobytes of GML, sides of at most a few tens of thousands of
// pixels, 1 to 4 components and 1 to a few hundred codestream tiles.
const (
	// maxJP2TopBoxes bounds the top-level boxes: GDAL reads every one of
	// their headers, each possibly in a block of its own (a request).
	maxJP2TopBoxes = 32
	// maxJP2Boxes bounds the boxes walked at every level together. Nesting
	// needs no cap of its own: like GDAL, the walk goes at most three
	// levels down (asoc "gml.data" → asoc → lbl/xml).
	maxJP2Boxes = 1000
	// maxJP2Side bounds each side declared by ihdr or SIZ, in pixels:
	// the bound every header is judged by.
	maxJP2Side = headerMaxSide
	// maxJP2Components bounds the components (the standard allows 16384;
	// OpenJPEG allocates per component and per tile).
	maxJP2Components = 64
	// maxJP2Samples bounds width × height × components.
	maxJP2Samples = headerMaxSamples
	// maxJP2Tiles and maxJP2TileComponents bound the codestream tiles, for
	// which OpenJPEG allocates at open about 10 KB plus 1 KB per component
	// each (measured with GDAL 3.6.2: 4,096 tiles of 3 components add 48 MB
	// to an open, 16,384 add 177 MB): together they keep an open under
	// about 55 MB.
	maxJP2Tiles          = 4096
	maxJP2TileComponents = 16384
	// maxJP2MetaBytes bounds the boxes GDAL reads whole when it opens the
	// file (GeoJP2, MSIG, XMP, xml, IPR, and the labelled boxes of the GML
	// data): a real tile holds a few kilobytes of them.
	maxJP2MetaBytes = 1 << 20
)

// errJP2Header marks a box header that could not be read whole inside the
// object: the transfer was cut.
var errJP2Header = errors.New("JPEG 2000 box header cut short")

// jp2Box is a JPEG 2000 box: its type, where it starts, its header's
// length and its whole length as declared (a length of 0, "to the end",
// is resolved against the parent's end).
type jp2Box struct {
	typ            string
	off, hdr, size int64
}

func (b jp2Box) body() int64 { return b.off + b.hdr }

// end is where the box ends; only for a box that fits its parent, where
// it cannot overflow.
func (b jp2Box) end() int64 { return b.off + b.size }

// fits says whether the box's declared length is possible in a parent
// ending at end, without overflowing.
func (b jp2Box) fits(end int64) bool {
	return b.size >= b.hdr && b.off <= end && b.size <= end-b.off
}

// declaredEnd is where the box says it ends, for messages: it may lie
// beyond any int64 sum.
func (b jp2Box) declaredEnd() uint64 { return uint64(b.off) + uint64(b.size) }

// jp2Reader reads boxes through the block cache, fetching as GDAL would,
// counting what it walks against the caps.
type jp2Reader struct {
	o     *openObject
	f     *cachedFile
	boxes int
	meta  int64 // bytes of the boxes GDAL reads whole
}

// read returns n bytes at off, fetched if need be. ok is false when they
// lie (partly) past the object; err is a storage error.
func (r *jp2Reader) read(off int64, n int) ([]byte, bool, error) {
	if off < 0 || n < 0 || off > r.f.size || int64(n) > r.f.size-off {
		return nil, false, nil
	}
	b := make([]byte, n)
	if n == 0 {
		return b, true, nil
	}
	if _, err := r.f.readAt(r.o, b, off); err != nil {
		if serr := r.o.storageErr(); serr != nil {
			return nil, false, serr
		}
		return nil, false, err
	}
	return b, true, nil
}

// box reads the box header at off, in a parent ending at end, and counts
// it. The declared length is not judged: callers do, with fits.
func (r *jp2Reader) box(off, end int64) (jp2Box, error) {
	r.boxes++
	if r.boxes > maxJP2Boxes {
		return jp2Box{}, problem(ErrCorrupt, "JPEG 2000 file holds more than %d boxes", maxJP2Boxes)
	}
	h, ok, err := r.read(off, 8)
	if err != nil {
		return jp2Box{}, err
	}
	if !ok {
		return jp2Box{}, errJP2Header
	}
	b := jp2Box{typ: string(h[4:8]), off: off, hdr: 8, size: int64(binary.BigEndian.Uint32(h[:4]))}
	switch b.size {
	case 0:
		b.size = end - off
	case 1:
		xl, ok, err := r.read(off+8, 8)
		if err != nil {
			return b, err
		}
		if !ok {
			return b, errJP2Header
		}
		b.hdr = 16
		if v := binary.BigEndian.Uint64(xl); v <= math.MaxInt64 {
			b.size = int64(v)
		} else {
			b.size = -1 // impossible: judged by fits
		}
	}
	return b, nil
}

// children walks the boxes inside parent, calling visit on each one that
// fits; it stops at the first that does not (GDAL's box reader stops
// there too) and reports it as false.
func (r *jp2Reader) children(parent jp2Box, visit func(jp2Box) error) (bool, error) {
	for off := parent.body(); off < parent.end(); {
		if parent.end()-off < 8 {
			return false, nil
		}
		b, err := r.box(off, parent.end())
		if errors.Is(err, errJP2Header) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !b.fits(parent.end()) {
			return false, nil
		}
		if err := visit(b); err != nil {
			return false, err
		}
		off = b.end()
	}
	return true, nil
}

// data reads a box's whole body, up to limit bytes; ok is false when the
// body is longer.
func (r *jp2Reader) data(b jp2Box, limit int64) ([]byte, bool, error) {
	if b.size-b.hdr > limit {
		return nil, false, nil
	}
	return r.read(b.body(), int(b.size-b.hdr))
}

// countMeta adds a box GDAL reads whole to the metadata budget.
func (r *jp2Reader) countMeta(b jp2Box) error {
	r.meta += b.size - b.hdr
	if r.meta > maxJP2MetaBytes {
		return problem(ErrCorrupt, "JPEG 2000 metadata boxes (uuid, xml, labels) hold more than %d bytes, which GDAL would read whole", maxJP2MetaBytes)
	}
	return nil
}

// cString is a box body read as GDAL reads it: a C string, ending at the
// first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
