package indexer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/paulmach/orb"

	"github.com/openpcrs/pcrs-indexer/internal/scratch"
)

// placedFile holds the readable tiles' placements, in the spool's order,
// for the union, which reads them a few times: decoding the spool's
// records again for each of its passes would cost seconds a million
// tiles, and holding them 64 bytes a tile. An unlinked temporary file.
type placedFile struct {
	f    *os.File
	size int64
	n    int
}

// errPlacedShort: the file reads back fewer or damaged records.
var errPlacedShort = errors.New("the union's tile file reads back short or damaged")

// maxRings bounds a rotated tile's rings read back: placement gives one.
const maxRings = 4

// writePlaced writes the readable tiles' placements in one pass.
func writePlaced(sp *spool) (*placedFile, error) {
	f, err := scratch.File("union")
	if err != nil {
		return nil, err
	}
	pf := &placedFile{f: f}
	w := bufio.NewWriterSize(f, 64<<10)
	var rec []byte
	err = sp.each(flagReadable, func(t *Tile) error {
		rec = appendPlaced(rec[:0], &t.Polygon)
		pf.size += int64(len(rec))
		pf.n++
		_, err := w.Write(rec)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		pf.close()
		return nil, fmt.Errorf("the union's tile file: %w", err)
	}
	return pf, nil
}

func (pf *placedFile) close() { pf.f.Close() }

// appendPlaced is t as little-endian EPSG, box, then the rotated
// outline's rings (0 for a box), each its point count and points.
func appendPlaced(b []byte, t *footprint.Tile) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(int64(t.EPSG)))
	for _, v := range [4]float64{t.Box.MinX, t.Box.MinY, t.Box.MaxX, t.Box.MaxY} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.AppendUvarint(b, uint64(len(t.Quad)))
	for _, r := range t.Quad {
		b = binary.AppendUvarint(b, uint64(len(r)))
		for _, p := range r {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p[0]))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p[1]))
		}
	}
	return b
}

// source reads the placements back, as often as the union asks.
func (pf *placedFile) source() footprint.TileSource {
	return func(yield func(footprint.Tile) bool) error {
		rd := bufio.NewReaderSize(io.NewSectionReader(pf.f, 0, pf.size), 64<<10)
		var fixed [40]byte
		for i := range pf.n {
			if _, err := io.ReadFull(rd, fixed[:]); err != nil {
				return fmt.Errorf("%w: tile %d: %w", errPlacedShort, i, err)
			}
			v := func(k int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(fixed[8+8*k:])) }
			t := footprint.Tile{EPSG: int(int64(binary.LittleEndian.Uint64(fixed[:]))),
				Box: footprint.Box{MinX: v(0), MinY: v(1), MaxX: v(2), MaxY: v(3)}}
			quad, err := readRings(rd)
			if err != nil {
				return fmt.Errorf("%w: tile %d: %w", errPlacedShort, i, err)
			}
			t.Quad = quad
			if !yield(t) {
				return nil
			}
		}
		return nil
	}
}

// readRings reads what appendPlaced wrote of a rotated outline.
func readRings(rd *bufio.Reader) (orb.Polygon, error) {
	rings, err := binary.ReadUvarint(rd)
	if err != nil || rings == 0 {
		return nil, err
	}
	if rings > maxRings {
		return nil, fmt.Errorf("%d rings", rings)
	}
	poly := make(orb.Polygon, rings)
	var pt [16]byte
	for k := range poly {
		n, err := binary.ReadUvarint(rd)
		if err != nil {
			return nil, err
		}
		if n > 64 {
			return nil, fmt.Errorf("a ring of %d points", n)
		}
		poly[k] = make(orb.Ring, n)
		for j := range poly[k] {
			if _, err := io.ReadFull(rd, pt[:]); err != nil {
				return nil, err
			}
			poly[k][j] = orb.Point{math.Float64frombits(binary.LittleEndian.Uint64(pt[:])), math.Float64frombits(binary.LittleEndian.Uint64(pt[8:]))}
		}
	}
	return poly, nil
}
