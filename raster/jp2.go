package raster

import (
	"encoding/binary"
)

// fastJP2 reads a plain PCRS JPEG 2000 header without GDAL: the image
// header and colour boxes, the codestream's SIZ and COD markers, and the
// GMLJP2 georeferencing, all in the bytes already fetched. Opening through
// GDAL costs about half a millisecond of CPU per tile even without CRS
// building; this costs a few microseconds. Anything unusual — a palette,
// channel definitions, a colour space other than sRGB or greyscale, mixed
// or signed samples, no GML in a PCRS CRS — returns false and GDAL reads
// the tile. TestFastJP2AgreesWithGDAL holds both readers to the same
// answers.
func fastJP2(o *openObject, f *cachedFile) (*Header, bool) {
	var (
		width, height, nc uint32
		enumCS            uint32
		haveIHDR, haveCS  bool
		csStart           int64 = -1
	)
	for off := int64(0); off < f.size && csStart < 0; {
		b, ok := boxAt(o, f, off, f.size, false)
		if !ok || !b.fits(f.size) {
			return nil, false
		}
		switch b.typ {
		case "jp2h":
			for sub := b.body(); sub < b.end(); {
				sb, ok := boxAt(o, f, sub, b.end(), false)
				if !ok || !sb.fits(b.end()) {
					return nil, false
				}
				body, ok := f.peek(o, sb.body(), int(min(sb.size-sb.hdr, 64)))
				if !ok {
					return nil, false
				}
				switch sb.typ {
				case "ihdr":
					if len(body) < 14 {
						return nil, false
					}
					height, width = binary.BigEndian.Uint32(body[0:4]), binary.BigEndian.Uint32(body[4:8])
					nc = uint32(binary.BigEndian.Uint16(body[8:10]))
					haveIHDR = true
				case "colr":
					if len(body) < 7 || body[0] != 1 || haveCS {
						return nil, false // ICC profiles and several colr boxes: GDAL
					}
					enumCS, haveCS = binary.BigEndian.Uint32(body[3:7]), true
				case "res ":
				default: // cdef, pclr, cmap, bpcc…
					return nil, false
				}
				sub = sb.end()
			}
		case "jp2c":
			csStart = b.body()
		}
		off = b.end()
	}
	if !haveIHDR || !haveCS || csStart < 0 {
		return nil, false
	}
	var colors []string
	switch {
	case nc == 3 && enumCS == 16:
		colors = []string{"Red", "Green", "Blue"}
	case nc == 1 && enumCS == 17:
		colors = []string{"Gray"}
	default:
		return nil, false
	}

	// Codestream main header: SOC, SIZ, then markers up to COD.
	soc, ok := f.peek(o, csStart, 4)
	if !ok || soc[0] != 0xFF || soc[1] != 0x4F || soc[2] != 0xFF || soc[3] != 0x51 {
		return nil, false
	}
	lsiz, ok := f.peek(o, csStart+4, 2)
	if !ok {
		return nil, false
	}
	siz, ok := f.peek(o, csStart+4, int(binary.BigEndian.Uint16(lsiz)))
	if !ok || len(siz) < 38 {
		return nil, false
	}
	xsiz, ysiz := binary.BigEndian.Uint32(siz[4:8]), binary.BigEndian.Uint32(siz[8:12])
	xo, yo := binary.BigEndian.Uint32(siz[12:16]), binary.BigEndian.Uint32(siz[16:20])
	csiz := uint32(binary.BigEndian.Uint16(siz[36:38]))
	if csiz != nc || len(siz) < 38+3*int(csiz) || xsiz <= xo || ysiz <= yo || xsiz-xo != width || ysiz-yo != height {
		return nil, false
	}
	ssiz := siz[38]
	for c := range int(csiz) {
		s := siz[38+3*c : 41+3*c]
		if s[0] != ssiz || s[1] != 1 || s[2] != 1 {
			return nil, false // mixed depths or subsampled components
		}
	}
	var dataType string
	switch ssiz {
	case 7:
		dataType = "Byte"
	case 15:
		dataType = "UInt16"
	default:
		return nil, false // signed, or depths GDAL reports with NBITS
	}
	var transform byte = 0xFF
	for pos := csStart + 4 + int64(len(siz)); transform == 0xFF; {
		m, ok := f.peek(o, pos, 4)
		if !ok || m[0] != 0xFF {
			return nil, false
		}
		seg := int64(binary.BigEndian.Uint16(m[2:4]))
		switch m[1] {
		case 0x52: // COD
			cod, ok := f.peek(o, pos+4, 10)
			if !ok {
				return nil, false
			}
			transform = cod[9]
		case 0x90, 0x93, 0xD9: // SOT, SOD, EOC before any COD
			return nil, false
		}
		pos += 2 + seg
	}
	compression := "LOSSY"
	if transform == 1 {
		compression = "LOSSLESS"
	}

	doc, ok := jp2GML(o, f)
	if !ok {
		return nil, false
	}
	gt, code, ok := gmlGeoref(doc)
	if !ok {
		return nil, false
	}
	h := &Header{
		Driver:       "JP2OpenJPEG",
		MimeType:     "image/jp2",
		Width:        int(width),
		Height:       int(height),
		GeoTransform: gt,
		EPSG:         code,
		Compression:  compression,
		OpenDriver:   true,
	}
	for _, c := range colors {
		h.Bands = append(h.Bands, Band{Color: c, DataType: dataType})
	}
	return h, true
}
