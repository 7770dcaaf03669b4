package indexer

import (
	"log/slog"
	"math"
	"strings"
	"unsafe"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/quality"
)

// WarningEntry is one of report.json's warnings, drawn in WGS84 where it
// has a place (the tile, the overlap, the missing cell).
type WarningEntry struct {
	quality.Warning
	Geometry *geometry `json:"geometry,omitempty"`
}

// checkQuality reads the readable tiles back from the spool and says what
// is wrong with them as a delivery. It costs no storage request: headers
// and names are all it looks at.
func checkQuality(sp *spool, announced *livrable.Attributes, opts footprint.Options, log *slog.Logger) ([]WarningEntry, map[string]int, error) {
	tiles, err := qualityTiles(sp)
	if err != nil {
		return nil, nil, err
	}
	qo := quality.Options{Tolerance: opts.Tolerance}
	if announced != nil && announced.Resolution != nil {
		qo.Announced = *announced.Resolution / 100
	}
	res := quality.Check(tiles, qo)
	tiles = nil
	byKind := make(map[string]int, len(res.ByKind))
	for k, n := range res.ByKind {
		byKind[string(k)] = n
	}
	return warningEntries(res.Warnings, opts, log), byKind, nil
}

// qualityTiles are the readable tiles as the check takes them, their
// paths in an arena and their attributes shared.
func qualityTiles(sp *spool) ([]quality.Tile, error) {
	n, err := sp.count(flagReadable)
	if err != nil {
		return nil, err
	}
	tiles := make([]quality.Tile, 0, n)
	var attrs attrsTable
	var paths keyArena
	err = sp.each(flagReadable, func(t *Tile) error {
		h := t.Header
		if h == nil {
			return nil
		}
		tiles = append(tiles, quality.Tile{Path: paths.add(t.Object.Key), Box: h.Box(), Size: t.Object.Size, Attrs: attrs.intern(quality.Attrs{
			EPSG: clampInt32(h.EPSG), Width: clampInt32(h.Width), Height: clampInt32(h.Height), Resolution: h.PixelSize(),
			Format: h.MimeType, Compression: h.Compression, Bands: bandes(t),
		})})
		return nil
	})
	return tiles, err
}

// warningEntries places the warnings in WGS84. Their paths are copies:
// the tiles' view the arena, which a report kept after the scan would
// otherwise keep whole.
func warningEntries(warnings []quality.Warning, opts footprint.Options, log *slog.Logger) []WarningEntry {
	var ps footprint.Projectors
	defer ps.Close()
	out := make([]WarningEntry, len(warnings))
	for i, w := range warnings {
		w.Path, w.Other = strings.Clone(DisplayName(w.Path)), strings.Clone(DisplayName(w.Other))
		w.Detail = DisplayName(w.Detail) // sentences quote the paths
		out[i] = WarningEntry{Warning: w}
		if w.Box == nil {
			continue
		}
		b := footprint.Box{MinX: w.Box[0], MinY: w.Box[1], MaxX: w.Box[2], MaxY: w.Box[3]}
		poly, err := ps.TilePolygon(footprint.Tile{EPSG: w.EPSG, Box: b}, opts)
		if err != nil {
			log.Warn("placing a warning", "path", w.Path, "kind", w.Kind, "error", err)
			continue
		}
		out[i].Geometry = polygonGeometry(poly)
	}
	return out
}

// attrsTable gives the tiles of a delivery one copy of each set of
// attributes they share: a delivery has a handful, and a million copies
// would cost 80 MB. A hostile one making every tile different cannot make
// the table grow with it: full, it starts again empty, so that the tiles
// after a run of odd ones still share.
type attrsTable map[quality.Attrs]*quality.Attrs

const maxSharedAttrs = 4096

func (m *attrsTable) intern(a quality.Attrs) *quality.Attrs {
	if p, ok := (*m)[a]; ok {
		return p
	}
	if *m == nil {
		*m = attrsTable{}
	}
	if len(*m) >= maxSharedAttrs {
		clear(*m)
	}
	(*m)[a] = &a
	return &a
}

// keyArena holds paths back to back in large chunks: a million paths cost
// one allocation per chunk instead of one each, and no size class rounds
// a 33-byte path up to 48. A chunk's bytes are never written again once a
// path is in them, which is what makes the strings that view them
// immutable.
type keyArena struct{ chunk []byte }

const (
	keyChunk = 256 << 10
	// longKey: a path this long gets its own allocation rather than a
	// chunk mostly left empty.
	longKey = keyChunk / 16
)

func (a *keyArena) add(key string) string {
	if key == "" || len(key) >= longKey {
		return strings.Clone(key)
	}
	if len(key) > cap(a.chunk)-len(a.chunk) {
		a.chunk = make([]byte, 0, keyChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, key...)
	return unsafe.String(&a.chunk[start], len(key))
}

// noWarnings is every kind counted zero: report.json names them all.
func noWarnings() map[string]int {
	m := make(map[string]int, len(quality.Kinds))
	for _, k := range quality.Kinds {
		m[string(k)] = 0
	}
	return m
}

// clampInt32 is v as the check holds it: headers give sizes and codes far
// below 2³¹, and a hostile one is clamped rather than wrapped.
func clampInt32(v int) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}
