package indexer

import (
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/paulmach/orb"
)

// ProblemEntry is one tile set aside.
type ProblemEntry struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// Geometry is the tile's outline in WGS84 when its header placed it
	// (a transfer cut short), for maps.
	Geometry *geometry `json:"geometry,omitempty"`
}

// Counts are report.json's counts.
type Counts struct {
	Objects  int `json:"objects"`
	Tiles    int `json:"tiles"`
	Readable int `json:"readable"`
	Reused   int `json:"reused"`
	Problems int `json:"problems"`
}

// IO is what reading headers cost.
type IO struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	// Retries are the requests that failed and were tried again: a storage
	// that absorbs many of them is unhealthy even when the scan succeeds.
	Retries int64 `json:"retries"`
	// RequestsPerTile includes listing requests.
	RequestsPerTile float64 `json:"requestsPerTile"`
	BytesPerTile    float64 `json:"bytesPerTile"`
}

// Report is report.json.
type Report struct {
	Source          string         `json:"source"`
	StartedAt       time.Time      `json:"startedAt"`
	FinishedAt      time.Time      `json:"finishedAt"`
	DurationSeconds float64        `json:"durationSeconds"`
	Counts          Counts         `json:"counts"`
	IO              IO             `json:"io"`
	Problems        []ProblemEntry `json:"problems"`
	// ProblemsByReason counts problems per reason, every reason present.
	ProblemsByReason map[string]int `json:"problemsByReason"`
	// AreaKm2 is the footprint's area, measured in the tiles' own CRS.
	AreaKm2 float64 `json:"areaKm2"`
	// EPSG lists the CRSs met, with their tile counts.
	EPSG map[string]int `json:"epsg"`
	// Skipped lists what the walk listed but could not use and is not a
	// tile (a looping folder, an unsizeable sidecar): said, never silent.
	Skipped []SkippedEntry `json:"skipped,omitempty"`
}

// Outline is the livrable's footprint.
type Outline struct {
	WGS84   orb.MultiPolygon
	AreaKm2 float64
}

// buildOutline unions the readable tiles' footprint. A tile that cannot
// be placed (non-finite, degenerate, far outside its CRS's area of use)
// leaves the footprint and the dalles for the problems: one such tile must
// never stop the delivery.
func buildOutline(tiles []Tile, opts footprint.Options, log *slog.Logger) *Outline {
	var placed []footprint.Tile
	var index []int
	for i, t := range tiles {
		if t.Header != nil {
			placed = append(placed, t.Polygon)
			index = append(index, i)
		}
	}
	if len(placed) == 0 {
		return &Outline{}
	}
	var ps footprint.Projectors
	defer ps.Close()
	res := ps.Place(placed, opts)
	for _, r := range res.Rejected {
		t := &tiles[index[r.Index]]
		log.Warn("tile set aside", "path", t.Object.Key, "reason", ReasonMisplaced, "detail", r.Err.Error())
		t.Header, t.Polygon, t.Reused = nil, footprint.Tile{}, false
		t.Problem = &ProblemEntry{Reason: ReasonMisplaced, Detail: r.Err.Error()}
	}
	return &Outline{WGS84: res.WGS84, AreaKm2: math.Round(res.Area/1e6*1e4) / 1e4}
}

func buildReport(source string, started, finished time.Time, lst listing, tiles []Tile, counter *storage.Counter, outline *Outline) Report {
	r := Report{
		Source:           source,
		StartedAt:        started.UTC(),
		FinishedAt:       finished.UTC(),
		DurationSeconds:  math.Round(finished.Sub(started).Seconds()*1000) / 1000,
		Counts:           Counts{Objects: lst.listed, Tiles: len(tiles)},
		IO:               IO{Requests: counter.Requests(), Bytes: counter.Bytes(), Retries: counter.Retries()},
		Problems:         []ProblemEntry{},
		ProblemsByReason: map[string]int{ReasonEmpty: 0, ReasonCorrupt: 0, ReasonNotGeoreferenced: 0, ReasonNoCRS: 0, ReasonUnreachable: 0, ReasonMisplaced: 0},
		EPSG:             map[string]int{},
		AreaKm2:          outline.AreaKm2,
		Skipped:          lst.skipped,
	}
	for _, t := range tiles {
		if t.Problem != nil {
			p := *t.Problem
			p.Path = t.Object.Key
			r.Problems = append(r.Problems, p)
			r.ProblemsByReason[p.Reason]++
			continue
		}
		r.Counts.Readable++
		if t.Reused {
			r.Counts.Reused++
		}
		r.EPSG[epsgName(t.Header.EPSG)]++
	}
	r.Counts.Problems = len(r.Problems)
	sort.Slice(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	if len(tiles) > 0 {
		r.IO.RequestsPerTile = math.Round(float64(r.IO.Requests)/float64(len(tiles))*1000) / 1000
		r.IO.BytesPerTile = math.Round(float64(r.IO.Bytes) / float64(len(tiles)))
	}
	return r
}
