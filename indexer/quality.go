package indexer

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

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
// and names are all it looks at. The check keeps the tiles on disk
// between its passes: memory does not grow with their number.
func checkQuality(sp *spool, announced *livrable.Attributes, opts footprint.Options, log *slog.Logger) ([]WarningEntry, map[string]int, error) {
	qo := quality.Options{Tolerance: opts.Tolerance}
	if announced != nil && announced.Resolution != nil {
		qo.Announced = *announced.Resolution / 100
	}
	res, declined, err := quality.CheckStream(qualityTiles(sp), qo)
	if err != nil {
		return nil, nil, fmt.Errorf("checking the delivery: %w", err)
	}
	if declined != nil {
		// Memory then grows with the tiles: an operator sizing pods
		// wants to know.
		log.Info("warnings checked in memory", "reason", declined)
	}
	byKind := make(map[string]int, len(res.ByKind))
	for k, n := range res.ByKind {
		byKind[string(k)] = n
	}
	return warningEntries(res.Warnings, opts, log), byKind, nil
}

// qualityTiles are the readable tiles as the check takes them, by path
// (the spool's order). One Tile and one Attrs carry them all: the check
// copies what it keeps.
func qualityTiles(sp *spool) quality.Source {
	return func(yield func(*quality.Tile) bool) error {
		var attrs quality.Attrs
		stop := errors.New("stop")
		err := sp.each(flagReadable, func(t *Tile) error {
			h := t.Header
			if h == nil {
				return nil
			}
			attrs = quality.Attrs{
				EPSG: clampInt32(h.EPSG), Width: clampInt32(h.Width), Height: clampInt32(h.Height), Resolution: h.PixelSize(),
				Format: h.MimeType, Compression: h.Compression, Bands: bandes(t),
			}
			qt := quality.Tile{Path: t.Object.Key, Box: h.Box(), Size: t.Object.Size, Attrs: &attrs}
			if !yield(&qt) {
				return stop
			}
			return nil
		})
		if errors.Is(err, stop) {
			return nil
		}
		return err
	}
}

// warningEntries places the warnings in WGS84.
func warningEntries(warnings []quality.Warning, opts footprint.Options, log *slog.Logger) []WarningEntry {
	var ps footprint.Projectors
	defer ps.Close()
	out := make([]WarningEntry, len(warnings))
	for i, w := range warnings {
		w.Path, w.Other = DisplayName(w.Path), DisplayName(w.Other)
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
