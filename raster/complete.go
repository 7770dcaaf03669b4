package raster

import (
	"encoding/binary"
	"strconv"

	"github.com/airbusgeo/godal"
)

// checkComplete finds, from the header alone, a tile whose transfer was cut
// short: it declares more data than the object holds. It also finds a
// GeoTIFF whose every block is sparse (no pixels written).
func checkComplete(o *openObject, obj File, ds *godal.Dataset, h *Header) error {
	f := o.file(obj.Key)
	switch h.Driver {
	case "JP2OpenJPEG", "JPEG2000":
		return checkJP2(o, f)
	case "GTiff":
		return checkTIFF(ds, f.size)
	}
	return nil
}

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

// cached says whether n bytes at off are already in the cache.
func (f *cachedFile) cached(off int64, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for b := off / BlockSize; b <= (off+int64(n)-1)/BlockSize; b++ {
		if _, ok := f.blocks[b]; !ok {
			return false
		}
	}
	return true
}

// checkTIFF compares every strip or tile's declared offset and byte count,
// as GDAL read them from the IFD, with the object's size.
func checkTIFF(ds *godal.Dataset, size int64) error {
	bands := ds.Bands()
	if len(bands) == 0 {
		return nil
	}
	interleave := ds.Metadata("INTERLEAVE", godal.Domain("IMAGE_STRUCTURE"))
	if interleave != "BAND" {
		bands = bands[:1] // pixel-interleaved: one set of blocks for all bands
	}
	st := bands[0].Structure()
	nx := (st.SizeX + st.BlockSizeX - 1) / st.BlockSizeX
	ny := (st.SizeY + st.BlockSizeY - 1) / st.BlockSizeY
	var written int
	for bi, b := range bands {
		for y := range ny {
			for x := range nx {
				suffix := strconv.Itoa(x) + "_" + strconv.Itoa(y)
				offStr := b.Metadata("BLOCK_OFFSET_"+suffix, godal.Domain("TIFF"))
				if offStr == "" {
					continue // sparse block: never written
				}
				off, err1 := strconv.ParseInt(offStr, 10, 64)
				n, err2 := strconv.ParseInt(b.Metadata("BLOCK_SIZE_"+suffix, godal.Domain("TIFF")), 10, 64)
				if err1 != nil || err2 != nil {
					continue
				}
				if off == 0 && n == 0 {
					continue
				}
				written++
				if off+n > size {
					return problem(ErrCorrupt, "TIFF block %d,%d of band %d declares %d bytes at byte %d, ending at byte %d, but the object holds %d bytes: transfer cut short", x, y, bi+1, n, off, off+n, size)
				}
			}
		}
	}
	if written == 0 {
		return problem(ErrEmpty, "no pixels: every one of the %d blocks is sparse (never written)", nx*ny*len(bands))
	}
	return nil
}
