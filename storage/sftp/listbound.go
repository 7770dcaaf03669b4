package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/pkg/sftp"
)

// A folder's listing is bounded: pkg/sftp's ReadDirContext keeps every
// entry until the server says EOF, so a server answering READDIR without
// end would take all memory. The bounds are on what the server sends
// while the listing is in flight: the bytes of its SSH_FXP_NAME packets,
// the entries they declare, and the extended attributes of those entries
// (8 bytes sent, 32 held: without their own bound, 32 MiB of them would
// hold 128 MiB). A listing at the bounds holds about 60 MiB
// (TestListingWithinBounds); a stopped one at most that and the packet
// crossing a bound (256 KiB sent). Variables, lowered by tests.
var maxListBytes, maxListEntries, maxListExtended uint64 = 32 << 20, 250_000, 250_000

// SFTP packet types the bound looks for (draft-ietf-secsh-filexfer-02).
const (
	fxpReaddir = 12
	fxpName    = 104
)

// errListingStopped refuses the READDIR requests of a listing past its
// bound, before any byte of them is written: the stream stays whole.
var errListingStopped = errors.New("listing stopped at its bound")

// frames follows the SFTP packet framing of a byte stream as it passes,
// copying only the first bytes of each packet (length, type, id, count):
// it counts the SSH_FXP_NAME packets, their bytes (length field included)
// and the entries their count fields declare; it follows those entries
// too, copying only their uint32 fields, to count the extended
// attributes they declare.
type frames struct {
	hdr       [13]byte // uint32 length, byte type, uint32 id, uint32 count
	pos, size uint64   // bytes of the current packet passed, and its whole size once known
	names     uint64   // NAME packets seen
	nameBytes uint64   // bytes of NAME packets passed
	entries   uint64   // entries declared by NAME packets
	extended  uint64   // extended attributes declared by their entries
	ent       entries  // where the current NAME packet's entries are
}

// entries follows the entries of a NAME packet (draft-ietf-secsh-filexfer-02
// section 7): string filename, string longname, ATTRS (uint32 flags, then
// as the flags say: uint64 size, uint32 uid and gid, uint32 permissions,
// uint32 atime and mtime, uint32 count and count pairs of strings).
type entries struct {
	left  uint32  // entries still to come in the packet
	st    uint8   // what the next bytes are
	u     [4]byte // a uint32 being read
	un    int     // bytes of u read
	skip  uint64  // bytes to pass over (skip states)
	flags uint32  // the entry's ATTRS flags
	strs  uint64  // strings of extended attributes still to come
}

const (
	stNameLen = iota
	stName    // skip
	stLongLen
	stLong // skip
	stFlags
	stFixed // skip
	stExtCount
	stExtLen
	stExtStr // skip
)

// feed passes b, bytes of the entries, and returns how many extended
// attributes were declared in it.
func (e *entries) feed(b []byte) (extended uint64) {
	for e.left > 0 {
		var v uint32
		switch e.st {
		case stName, stLong, stFixed, stExtStr:
			k := min(uint64(len(b)), e.skip)
			e.skip -= k
			b = b[k:]
			if e.skip > 0 {
				return extended
			}
		default:
			if len(b) == 0 {
				return extended
			}
			k := copy(e.u[e.un:], b)
			e.un += k
			b = b[k:]
			if e.un < 4 {
				return extended
			}
			e.un = 0
			v = binary.BigEndian.Uint32(e.u[:])
		}
		switch e.st {
		case stNameLen, stLongLen, stExtLen:
			e.skip = uint64(v)
			e.st++
		case stName:
			e.st = stLongLen
		case stLong:
			e.st = stFlags
		case stFlags:
			e.flags, e.skip, e.st = v, fixedAttrs(v), stFixed
		case stFixed:
			if e.flags&0x80000000 == 0 {
				e.next()
				break
			}
			e.st = stExtCount
		case stExtCount:
			extended += uint64(v)
			e.strs = 2 * uint64(v)
			if e.strs == 0 {
				e.next()
				break
			}
			e.st = stExtLen
		case stExtStr:
			e.strs--
			if e.strs == 0 {
				e.next()
				break
			}
			e.st = stExtLen
		}
	}
	return extended
}

// fixedAttrs is the size of the fields of fixed size that flags announce.
func fixedAttrs(flags uint32) (n uint64) {
	if flags&0x1 != 0 { // SSH_FILEXFER_ATTR_SIZE
		n += 8
	}
	if flags&0x2 != 0 { // SSH_FILEXFER_ATTR_UIDGID
		n += 8
	}
	if flags&0x4 != 0 { // SSH_FILEXFER_ATTR_PERMISSIONS
		n += 4
	}
	if flags&0x8 != 0 { // SSH_FILEXFER_ATTR_ACMODTIME
		n += 8
	}
	return n
}

func (e *entries) next() {
	e.left--
	e.st = stNameLen
}

// boundary tells whether the next byte starts a packet.
func (f *frames) boundary() bool { return f.pos == 0 }

func (f *frames) feed(b []byte) {
	for len(b) > 0 {
		if f.pos < 4 {
			k := copy(f.hdr[f.pos:4], b)
			f.pos += uint64(k)
			b = b[k:]
			if f.pos == 4 {
				f.size = 4 + uint64(binary.BigEndian.Uint32(f.hdr[:4]))
				if f.size == 4 {
					f.pos, f.size = 0, 0 // an empty packet: not even a type
				}
			}
			continue
		}
		k := uint64(len(b))
		if rest := f.size - f.pos; k > rest {
			k = rest
		}
		if f.pos < uint64(len(f.hdr)) {
			copy(f.hdr[f.pos:], b[:k])
		}
		chunk, start := b[:k], f.pos
		f.pos += k
		b = b[k:]
		if f.hdr[4] == fxpName {
			if start == 4 {
				f.names++
				f.nameBytes += 4
			}
			f.nameBytes += k
			if start < 13 && f.pos >= 13 {
				count := binary.BigEndian.Uint32(f.hdr[9:13])
				f.entries += uint64(count)
				f.ent = entries{left: count}
			}
			if f.pos > 13 {
				f.extended += f.ent.feed(chunk[max(13, start)-start:])
			}
		}
		if f.pos == f.size {
			f.pos, f.size = 0, 0
		}
	}
}

// listBound watches one SFTP client's streams: the reader its packets
// come from and the writer its requests go to. Listings take turns, so
// that the NAME packets arriving while one is in flight are its own (the
// other requests of this package, reads and stats, are not answered with
// NAME packets).
type listBound struct {
	turn chan struct{}

	mu      sync.Mutex
	in, out frames
	active  bool   // a listing is in flight
	dir     string // its folder
	base    frames // the input's counts when it started
	tripped error  // why it was stopped, if it was
	cancel  context.CancelFunc
}

func newListBound() *listBound { return &listBound{turn: make(chan struct{}, 1)} }

// readDir lists dir on c, failing with storage.ErrTooLarge (not
// transient) when the server sends more than the bounds allow. The
// client stays usable: the listing's context is cancelled, and its
// further READDIR requests are refused before they are sent.
func (lb *listBound) readDir(ctx context.Context, c *sftp.Client, dir string) ([]os.FileInfo, error) {
	select {
	case lb.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-lb.turn }()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lb.mu.Lock()
	lb.active, lb.dir, lb.base, lb.tripped, lb.cancel = true, dir, lb.in, nil, cancel
	lb.mu.Unlock()
	entries, err := c.ReadDirContext(lctx, dir)
	lb.mu.Lock()
	tripped := lb.tripped
	lb.active, lb.tripped, lb.cancel = false, nil, nil
	lb.mu.Unlock()
	if tripped != nil {
		return nil, tripped
	}
	return entries, err
}

// check stops the listing in flight once past a bound. Called with mu.
func (lb *listBound) check() {
	if !lb.active || lb.tripped != nil {
		return
	}
	switch {
	case lb.in.nameBytes-lb.base.nameBytes > maxListBytes:
		lb.tripped = fmt.Errorf("%w: the listing of %q is longer than %d bytes", storage.ErrTooLarge, lb.dir, maxListBytes)
	case lb.in.entries-lb.base.entries > maxListEntries:
		lb.tripped = fmt.Errorf("%w: the listing of %q has more than %d entries", storage.ErrTooLarge, lb.dir, maxListEntries)
	case lb.in.extended-lb.base.extended > maxListExtended:
		lb.tripped = fmt.Errorf("%w: the listing of %q has more than %d extended attributes", storage.ErrTooLarge, lb.dir, maxListExtended)
	default:
		return
	}
	lb.cancel()
}

type boundReader struct {
	r  io.Reader
	lb *listBound
}

func (r boundReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.lb.mu.Lock()
	r.lb.in.feed(p[:n])
	r.lb.check()
	r.lb.mu.Unlock()
	return n, err
}

type boundWriter struct {
	w  io.WriteCloser
	lb *listBound
}

// Write passes p on, unless it starts a READDIR of a stopped listing.
// pkg/sftp writes each packet's header (the whole of a READDIR) in one
// call, under its own lock.
func (w boundWriter) Write(p []byte) (int, error) {
	w.lb.mu.Lock()
	stop := w.lb.active && w.lb.tripped != nil && w.lb.out.boundary() && len(p) > 4 && p[4] == fxpReaddir
	w.lb.mu.Unlock()
	if stop {
		return 0, errListingStopped
	}
	n, err := w.w.Write(p)
	w.lb.mu.Lock()
	w.lb.out.feed(p[:n])
	w.lb.mu.Unlock()
	return n, err
}

func (w boundWriter) Close() error { return w.w.Close() }
