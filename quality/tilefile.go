package quality

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/openpcrs/pcrs-indexer/internal/scratch"
)

// tileFile keeps the tiles of a streamed check on disk, in the order they
// came, for the passes that read them again: an unlinked temporary file,
// gone with the process whatever happens to it.
type tileFile struct {
	f    *os.File
	w    *bufio.Writer
	size int64
	n    int
	rec  []byte
	head []byte // rec's length
}

func newTileFile() (*tileFile, error) {
	f, err := scratch.File("quality")
	if err != nil {
		return nil, err
	}
	return &tileFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (tf *tileFile) close() { tf.f.Close() }

// add writes t: its length, then path, box, size and attributes.
func (tf *tileFile) add(t *Tile) error {
	r := tf.rec[:0]
	r = appendString(r, t.Path)
	for _, v := range t.Box {
		r = binary.LittleEndian.AppendUint64(r, math.Float64bits(v))
	}
	r = binary.AppendVarint(r, t.Size)
	if a := t.Attrs; a == nil {
		r = append(r, 0)
	} else {
		r = append(r, 1)
		r = binary.LittleEndian.AppendUint64(r, math.Float64bits(a.Resolution))
		r = binary.AppendVarint(r, int64(a.EPSG))
		r = binary.AppendVarint(r, int64(a.Width))
		r = binary.AppendVarint(r, int64(a.Height))
		r = appendString(r, a.Format)
		r = appendString(r, a.Compression)
		r = appendString(r, a.Bands)
	}
	tf.rec = r
	tf.head = binary.AppendUvarint(tf.head[:0], uint64(len(r)))
	if _, err := tf.w.Write(tf.head); err != nil {
		return fmt.Errorf("tiles on disk: %w", err)
	}
	if _, err := tf.w.Write(r); err != nil {
		return fmt.Errorf("tiles on disk: %w", err)
	}
	tf.size += int64(len(tf.head) + len(r))
	tf.n++
	return nil
}

// finish flushes what add wrote, before the first pass.
func (tf *tileFile) finish() error {
	if err := tf.w.Flush(); err != nil {
		return fmt.Errorf("tiles on disk: %w", err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errShortTiles: the file holds fewer or damaged records than written.
var errShortTiles = errors.New("tiles on disk read back short or damaged")

// each reads the tiles back in order. Tiles with the same attributes as
// the previous one share its Attrs, as the caller's did (or better).
func (tf *tileFile) each(fn func(i int32, t *Tile) error) error {
	rd := bufio.NewReaderSize(io.NewSectionReader(tf.f, 0, tf.size), 64<<10)
	var rec, lastAttrs []byte
	var attrs *Attrs
	var t Tile // one for every record: fn keeps none
	for i := range tf.n {
		n, err := binary.ReadUvarint(rd)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", errShortTiles, i, err)
		}
		if n > uint64(tf.size) {
			return fmt.Errorf("%w: record %d of %d bytes", errShortTiles, i, n)
		}
		if uint64(cap(rec)) < n {
			rec = make([]byte, n)
		}
		rec = rec[:n]
		if _, err := io.ReadFull(rd, rec); err != nil {
			return fmt.Errorf("%w: record %d: %w", errShortTiles, i, err)
		}
		t = Tile{}
		d := decoder{b: rec}
		t.Path = d.string()
		for k := range t.Box {
			t.Box[k] = math.Float64frombits(d.uint64())
		}
		t.Size = d.varint()
		if d.byte() == 1 {
			if raw := d.b; attrs == nil || string(raw) != string(lastAttrs) {
				lastAttrs = append(lastAttrs[:0], raw...)
				attrs = &Attrs{Resolution: math.Float64frombits(d.uint64()), EPSG: int32(d.varint()), Width: int32(d.varint()),
					Height: int32(d.varint()), Format: d.string(), Compression: d.string(), Bands: d.string()}
			}
			t.Attrs = attrs
		}
		if d.bad {
			return fmt.Errorf("%w: record %d", errShortTiles, i)
		}
		if err := fn(int32(i), &t); err != nil {
			return err
		}
	}
	return nil
}

// decoder reads what add wrote; bad once anything is missing.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.bad = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.bad = true
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}
