package indexer

import (
	"fmt"
	"log/slog"
	"math"
	"time"
	"unicode/utf8"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/internal/extsort"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/paulmach/orb"
)

// ProblemEntry is one tile set aside.
type ProblemEntry struct {
	Path string `json:"path"`
	// RawPath is given when the object's key is not UTF-8 and Path shows
	// it readably: the key with its stray bytes, and '%', escaped as %XX
	// (dalles/r%E9seau.tif). It is what a download asks the storage for.
	RawPath string `json:"rawPath,omitempty"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
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
	Source          string    `json:"source"`
	StartedAt       time.Time `json:"startedAt"`
	FinishedAt      time.Time `json:"finishedAt"`
	DurationSeconds float64   `json:"durationSeconds"`
	Counts          Counts    `json:"counts"`
	IO              IO        `json:"io"`
	// Problems are the problem tiles, sorted by path. A scan's Result
	// leaves them on disk (Result.EachProblem), where report.json is
	// written from: a delivery of a million broken tiles would otherwise
	// hold them all. Reports read back or merged hold them here.
	Problems []ProblemEntry `json:"problems"`
	// ProblemsByReason counts problems per reason, every reason present.
	ProblemsByReason map[string]int `json:"problemsByReason"`
	// AreaKm2 is the footprint's area, measured in the tiles' own CRS.
	AreaKm2 float64 `json:"areaKm2"`
	// EPSG lists the CRSs met, with their tile counts.
	EPSG map[string]int `json:"epsg"`
	// Warnings say what is wrong with readable tiles as a delivery (off
	// the grid, overlapping, misnamed…); a warned tile stays in the dalles.
	Warnings []WarningEntry `json:"warnings"`
	// WarningsByKind counts every warning by kind, even past the listed
	// cap (Check lists at most quality.DefaultMaxPerKind per kind).
	WarningsByKind map[string]int `json:"warningsByKind"`
	// Skipped lists what the walk listed but could not use and is not a
	// tile (a looping folder, an unsizeable sidecar): said, never silent.
	Skipped []SkippedEntry `json:"skipped,omitempty"`
	// SkippedTotal counts them all: Skipped lists at most 10,000, the
	// first by path (a hostile listing can name millions).
	SkippedTotal int `json:"skippedTotal,omitempty"`
}

// Outline is the livrable's footprint.
type Outline struct {
	WGS84   orb.MultiPolygon
	AreaKm2 float64
}

// buildOutline unions the readable tiles' footprint, read back from the
// spool into a file of their placements that the union reads a few
// times: memory does not grow with their number. A tile that cannot
// be placed (non-finite, degenerate, far outside its CRS's area of use)
// leaves the footprint and the dalles for the problems: one such tile must
// never stop the delivery.
func buildOutline(sp *spool, opts footprint.Options, log *slog.Logger) (*Outline, error) {
	placed, err := writePlaced(sp)
	if err != nil {
		return nil, err
	}
	defer placed.close()
	if placed.n == 0 {
		return &Outline{}, nil
	}
	var ps footprint.Projectors
	defer ps.Close()
	rejected := extsort.New(rejectedOrder)
	defer rejected.Close()
	var rec []byte
	var asideErr error
	count := 0
	res, err := ps.PlaceStream(placed.source(), opts, func(r footprint.Rejected) {
		detail := r.Err.Error()
		if asideErr == nil {
			rec = rejectedRecord(rec, r.Index, detail)
			asideErr = rejected.Add(rec)
		}
		count++
	})
	if err != nil {
		return nil, fmt.Errorf("drawing the footprint: %w", err)
	}
	if err := asideErr; err != nil {
		return nil, fmt.Errorf("setting misplaced tiles aside: %w", err)
	}
	if count == 0 {
		return &Outline{WGS84: res.WGS84, AreaKm2: math.Round(res.Area/1e6*1e4) / 1e4}, nil
	}
	sorted, err := rejected.Sort()
	if err != nil {
		return nil, fmt.Errorf("setting misplaced tiles aside: %w", err)
	}
	defer sorted.Close()
	named, err := sp.setAside(sorted, func(key, detail []byte) {
		log.Warn("tile set aside", "path", string(key), "reason", ReasonMisplaced, "detail", string(detail))
	})
	if err != nil {
		return nil, err
	}
	if named != sorted.Len() {
		// A rejected tile left unnamed would be published as readable.
		return nil, fmt.Errorf("the union rejected %d tiles, %d of which the spool names", sorted.Len(), named)
	}
	return &Outline{WGS84: res.WGS84, AreaKm2: math.Round(res.Area/1e6*1e4) / 1e4}, nil
}

// tileSummary is what the livrable's feature says of its readable tiles.
type tileSummary struct {
	format, compression, epsg sharedValue
	taille                    int64
	nbDalles                  int
	// notUTF8 counts the names the outputs write as Windows-1252.
	notUTF8 int
}

// sharedValue is the value every tile has, or none.
type sharedValue struct {
	v     string
	mixed bool
}

func (s *sharedValue) add(v string) {
	if s.v == "" {
		s.v = v
	} else if s.v != v {
		s.mixed = true
	}
}

func (s sharedValue) value() *string {
	if s.mixed {
		return nil
	}
	return strOrNil(s.v)
}

// buildReport reads every verdict back once, for the report and the
// livrable's summary.
func buildReport(source string, started, finished time.Time, lst listing, sp *spool, counter *storage.Counter, outline *Outline) (Report, tileSummary, error) {
	r := Report{
		Source:           source,
		StartedAt:        started.UTC(),
		FinishedAt:       finished.UTC(),
		DurationSeconds:  math.Round(finished.Sub(started).Seconds()*1000) / 1000,
		Counts:           Counts{Objects: lst.listed},
		IO:               IO{Requests: counter.Requests(), Bytes: counter.Bytes(), Retries: counter.Retries()},
		ProblemsByReason: map[string]int{ReasonEmpty: 0, ReasonCorrupt: 0, ReasonNotGeoreferenced: 0, ReasonNoCRS: 0, ReasonUnreachable: 0, ReasonMisplaced: 0},
		EPSG:             map[string]int{},
		AreaKm2:          outline.AreaKm2,
		Skipped:          lst.skipped.kept,
		SkippedTotal:     lst.skipped.total,
	}
	var sum tileSummary
	if sp == nil {
		return r, sum, nil
	}
	r.Counts.Tiles = sp.len()
	err := sp.each(0, func(t *Tile) error {
		if !utf8.ValidString(t.Object.Key) {
			sum.notUTF8++
		}
		if t.Problem != nil {
			r.Counts.Problems++
			r.ProblemsByReason[t.Problem.Reason]++
			return nil
		}
		r.Counts.Readable++
		if t.Reused {
			r.Counts.Reused++
		}
		r.EPSG[epsgName(t.Header.EPSG)]++
		sum.format.add(t.Header.MimeType)
		sum.compression.add(t.Header.Compression)
		sum.epsg.add(epsgName(t.Header.EPSG))
		sum.taille += t.Object.Size
		sum.nbDalles++
		return nil
	})
	if n := r.Counts.Tiles; n > 0 {
		r.IO.RequestsPerTile = math.Round(float64(r.IO.Requests)/float64(n)*1000) / 1000
		r.IO.BytesPerTile = math.Round(float64(r.IO.Bytes) / float64(n))
	}
	return r, sum, err
}
