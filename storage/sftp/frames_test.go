package sftp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// packet frames body (type byte first) with its length.
func packet(body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// namePacket is an SSH_FXP_NAME declaring count entries, with extra
// bytes of payload.
func namePacket(id, count uint32, extra int) []byte {
	b := []byte{fxpName}
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, count)
	return packet(append(b, bytes.Repeat([]byte{'n'}, extra)...)...)
}

// entry is a NAME entry: the attributes flags say, and ext extended
// attributes.
func entry(name, long string, flags uint32, ext int) []byte {
	str := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...) }
	b := str(str(nil, name), long)
	b = binary.BigEndian.AppendUint32(b, flags)
	b = append(b, bytes.Repeat([]byte{7}, int(fixedAttrs(flags)))...)
	if flags&(1<<31) != 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(ext))
		for i := range ext {
			b = str(str(b, fmt.Sprint("type", i)), "")
		}
	}
	return b
}

// nameEntries is a NAME packet declaring count entries, with those given.
func nameEntries(id, count uint32, entries ...[]byte) []byte {
	b := []byte{fxpName}
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, count)
	return packet(append(b, bytes.Join(entries, nil)...)...)
}

// wholeParse is the straightforward reading of a whole buffer: packet
// after packet, the last one possibly cut short.
func wholeParse(b []byte) (names, nameBytes, entries, extended uint64) {
	for len(b) >= 4 {
		size := 4 + uint64(binary.BigEndian.Uint32(b))
		have := min(size, uint64(len(b)))
		if size > 4 && have > 4 && b[4] == fxpName {
			names++
			nameBytes += have
			if have >= 13 {
				count := binary.BigEndian.Uint32(b[9:13])
				entries += uint64(count)
				extended += wholeEntries(b[13:have], count)
			}
		}
		b = b[have:]
	}
	return
}

// wholeEntries counts the extended attributes declared by the count
// entries in b, as far as b goes.
func wholeEntries(b []byte, count uint32) (extended uint64) {
	u32 := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	str := func() bool {
		n, ok := u32()
		if !ok || uint64(n) > uint64(len(b)) {
			return false
		}
		b = b[n:]
		return true
	}
	for range count {
		if !str() { // the name
			return
		}
		if !str() { // the long name
			return
		}
		flags, ok := u32()
		if !ok {
			return
		}
		var fixed uint64
		for bit, size := range map[uint32]uint64{1: 8, 2: 8, 4: 4, 8: 8} {
			if flags&bit != 0 {
				fixed += size
			}
		}
		if fixed > uint64(len(b)) {
			return
		}
		b = b[fixed:]
		if flags&(1<<31) == 0 {
			continue
		}
		n, ok := u32()
		if !ok {
			return
		}
		extended += uint64(n)
		for range 2 * uint64(n) {
			if !str() {
				return
			}
		}
	}
	return
}

// feedSplit feeds b to a fresh frames in the pieces cut at cuts.
func feedSplit(b []byte, cuts ...int) *frames {
	var f frames
	prev := 0
	for _, c := range cuts {
		f.feed(b[prev:c])
		prev = c
	}
	f.feed(b[prev:])
	return &f
}

func checkCounts(t *testing.T, what string, f *frames, b []byte) {
	t.Helper()
	names, nameBytes, entries, extended := wholeParse(b)
	if f.names != names || f.nameBytes != nameBytes || f.entries != entries || f.extended != extended {
		t.Fatalf("%s: fed in pieces %d names, %d bytes, %d entries, %d extended; whole %d, %d, %d, %d",
			what, f.names, f.nameBytes, f.entries, f.extended, names, nameBytes, entries, extended)
	}
}

func TestFramesCounts(t *testing.T) {
	var stream []byte
	stream = append(stream, packet(2, 0, 0, 0, 3)...)         // VERSION
	stream = append(stream, packet()...)                      // empty: no type
	stream = append(stream, namePacket(7, 3, 40)...)          // 53 bytes
	stream = append(stream, packet(101, 0, 0, 0, 7, 0, 0)...) // a STATUS
	stream = append(stream, packet(fxpName, 0, 0, 0, 1)...)   // NAME without its count
	stream = append(stream, namePacket(8, 1<<32-1, 0)...)     // the largest count
	stream = append(stream, packet(fxpName)...)               // type alone
	stream = append(stream, packet(103, fxpName, fxpName, fxpName, fxpName, fxpName)...)
	listing := nameEntries(9, 4, entry("a.tif", "-rw-r--r-- a.tif", 0x8000000f, 2), entry("b", "", 0, 0),
		entry("", "", 1<<31, 0), entry("c", "c", 0x80000005, 1))
	stream = append(stream, listing...)
	// More entries declared than sent, the last string cut.
	short := nameEntries(10, 5, entry("d", "", 1<<31, 3), entry("e", "", 1<<31, 4))
	short = packet(short[4 : len(short)-3]...)
	stream = append(stream, short...)
	stream = append(stream, packet(105, 0, 0, 0, 11, 0, 0, 0, 0)...)
	f := feedSplit(stream)
	if f.names != 6 || f.nameBytes != 53+9+13+5+uint64(len(listing))+uint64(len(short)) ||
		f.entries != 3+1<<32-1+4+5 || f.extended != 2+1+3+4 || !f.boundary() {
		t.Fatalf("counts %+v", *f)
	}
	checkCounts(t, "whole", f, stream)
	// Every split in two and in three pieces.
	for i := range len(stream) + 1 {
		checkCounts(t, "split in two", feedSplit(stream, i), stream)
		for j := i; j <= len(stream); j++ {
			checkCounts(t, "split in three", feedSplit(stream, i, j), stream)
		}
	}
	// Byte by byte.
	var byByte frames
	for i := range stream {
		byByte.feed(stream[i : i+1])
	}
	checkCounts(t, "byte by byte", &byByte, stream)
}

// TestFramesLargestPacket: a packet declaring 4 GiB - 1 bytes is followed
// to its end, however it comes.
func TestFramesLargestPacket(t *testing.T) {
	var f frames
	f.feed([]byte{0xff, 0xff, 0xff, 0xff, fxpName, 0, 0, 0, 1, 0, 0})
	f.feed([]byte{0, 5})
	chunk := make([]byte, 1<<20)
	left := uint64(1<<32-1) - 9
	for left > 0 {
		n := min(left, uint64(len(chunk)))
		if f.boundary() {
			t.Fatalf("boundary with %d bytes of the packet left", left)
		}
		f.feed(chunk[:n])
		left -= n
	}
	if !f.boundary() || f.names != 1 || f.entries != 5 || f.nameBytes != 1<<32+3 {
		t.Fatalf("after the largest packet: %+v", f)
	}
	next := namePacket(2, 1, 0)
	f.feed(next)
	if f.names != 2 || f.entries != 6 || f.nameBytes != 1<<32+3+13 {
		t.Fatalf("the packet after the largest: %+v", f)
	}
}

func FuzzFrames(f *testing.F) {
	f.Add(append(namePacket(1, 2, 3), packet(2, 0, 0, 0, 3)...), uint16(3), uint16(11))
	f.Add(packet(), uint16(0), uint16(0))
	f.Add(append(packet(fxpName, 1), namePacket(9, 9, 0)...), uint16(5), uint16(6))
	f.Add(nameEntries(1, 2, entry("a", "b", 0x8000000f, 2), entry("c", "", 1<<31, 1)), uint16(20), uint16(40))
	f.Fuzz(func(t *testing.T, b []byte, i, j uint16) {
		a, c := min(int(i), len(b)), min(int(j), len(b))
		if a > c {
			a, c = c, a
		}
		checkCounts(t, "fuzz", feedSplit(b, a, c), b)
	})
}
