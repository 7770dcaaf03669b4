package raster

import "encoding/binary"

// tiffEPSG reads ProjectedCSTypeGeoKey from the first IFD's
// GeoKeyDirectory, in the bytes already cached.
func tiffEPSG(o *openObject, f *cachedFile) (int, bool) {
	read := func(off int64, n int) ([]byte, bool) {
		if n > BlockSize {
			return nil, false
		}
		return f.peek(o, off, n)
	}
	head, ok := read(0, 16)
	if !ok {
		return 0, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if head[0] == 'M' {
		bo = binary.BigEndian
	}
	big := bo.Uint16(head[2:4]) == 43
	var ifd int64
	if big {
		ifd = int64(bo.Uint64(head[8:16]))
	} else {
		ifd = int64(bo.Uint32(head[4:8]))
	}
	countSize, entrySize := int64(2), int64(12)
	if big {
		countSize, entrySize = 8, 20
	}
	cb, ok := read(ifd, int(countSize))
	if !ok {
		return 0, false
	}
	var count int64
	if big {
		count = int64(bo.Uint64(cb))
	} else {
		count = int64(bo.Uint16(cb))
	}
	if count <= 0 || count > 4096 {
		return 0, false
	}
	entries, ok := read(ifd+countSize, int(count*entrySize))
	if !ok {
		return 0, false
	}
	for i := int64(0); i < count; i++ {
		e := entries[i*entrySize : (i+1)*entrySize]
		if bo.Uint16(e[0:2]) != 34735 || bo.Uint16(e[2:4]) != 3 { // GeoKeyDirectoryTag, SHORT
			continue
		}
		var n, valOff int64
		var inline []byte
		if big {
			n = int64(bo.Uint64(e[4:12]))
			inline, valOff = e[12:20], int64(bo.Uint64(e[12:20]))
		} else {
			n = int64(bo.Uint32(e[4:8]))
			inline, valOff = e[8:12], int64(bo.Uint32(e[8:12]))
		}
		var keys []byte
		if n*2 <= int64(len(inline)) {
			keys = inline[:n*2]
		} else if keys, ok = read(valOff, int(n*2)); !ok {
			return 0, false
		}
		short := func(i int) int { return int(bo.Uint16(keys[2*i : 2*i+2])) }
		if n < 4 || int64(4+4*short(3)) > n {
			return 0, false
		}
		for k := range short(3) {
			id, loc, val := short(4+4*k), short(5+4*k), short(7+4*k)
			if id == 3072 && loc == 0 && pcrsCRS(val) { // ProjectedCSTypeGeoKey
				return val, true
			}
		}
		return 0, false
	}
	return 0, false
}
