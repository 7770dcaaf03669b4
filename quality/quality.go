// Package quality says what is wrong with a delivery's readable tiles as a
// whole, from their headers and names alone: tiles off the delivery's grid,
// overlapping or delivered twice, misnamed, of another resolution, a
// delivery mixing formats, tiles far smaller than their peers, and the
// holes of the footprint as the missing grid cells.
//
// The rules, each explained where it is applied:
//
//   - Tiles are compared per CRS, on a lattice of the tolerance (corner /
//     tolerance, rounded): boxes equal on it are the same ground.
//   - Grid (grid.go): the most common width, height and corner phase,
//     each shared by more than half the CRS's tiles, or no grid: then no
//     off_grid and no missing for that CRS. off_grid: corner or size off
//     by more than the tolerance; the offset from the nearest cell, each
//     in (-size/2, size/2].
//   - duplicate (overlap.go): the same box; each later copy (by path)
//     against the first. overlap: a common part wider and higher than the
//     tolerance, between first copies; blamed on the tile off the grid,
//     else the later path.
//   - name_mismatch (names.go): the pattern (two digit groups, unit 1, 10,
//     100 or 1000 m, lower or upper corner, floored or rounded) is the one
//     at least 3 tiles and 80 % of the tiles with its digit groups follow.
//   - resolution, mixed, size_outlier (attributes.go): over 1 % from the
//     most common resolution; more than one known value of format,
//     compression, bands or CRS; under a tenth of the median size of at
//     least 5 peers of the same dimensions, format and compression.
//   - missing (holes.go): empty cells enclosed by the tiles, 4-connected.
//
// Check lists at most MaxPerKind warnings per kind, the first in the final
// order (list.go; missing cells: the first in cell order), and counts them
// all.
//
// It costs no storage request, and its work and memory are O(n log n) in
// the tiles: nothing is ever allocated over the delivery's extent (two
// tiles 1,000 km apart cost what two neighbours do), every loop driven by
// the input is bounded, and the verdict does not depend on the order the
// tiles come in (every choice follows one total order; see order.go).
//
// CheckStream (stream.go) gives Check's verdict with the tiles on disk
// between its passes, sorted there as Check sorts them in memory, so that
// what it holds does not grow with the delivery; a delivery outside its
// bounds goes to Check. The tests hold the two to one verdict.
package quality

import (
	"math"
	"slices"
)

// Tile is what the check needs from one readable tile. A scan holds a
// million of them at once: what a delivery repeats on every tile (its
// CRS, dimensions, resolution and encoding) is shared (Attrs), and the
// rest is kept to 64 bytes.
type Tile struct {
	Path  string     // relative to the storage root, e.g. "dalles/0651000_6226400.jp2"
	Box   [4]float64 // minX, minY, maxX, maxY in the CRS's units (metres)
	Size  int64      // bytes; 0 = unknown
	Attrs *Attrs     // nil: none known
}

// Attrs are what a tile shares with most tiles of its delivery. The caller
// may give tiles with the same attributes one Attrs, and should: a
// million copies cost 80 MB.
type Attrs struct {
	Resolution    float64 // pixel size in CRS units (metres), > 0
	EPSG          int32   // the CRS of Box
	Width, Height int32   // pixels
	Format        string  // "image/jp2" or "image/tiff"
	Compression   string  // "LOSSY", "LOSSLESS", "JPEG", "LZW", "NONE"…
	Bands         string  // "Red(Byte)/Green(Byte)/Blue(Byte)"
}

// noAttrs are a tile's attributes when none are known.
var noAttrs Attrs

// attrs are t's attributes, zero when unknown; never nil.
func (t *Tile) attrs() *Attrs {
	if t.Attrs == nil {
		return &noAttrs
	}
	return t.Attrs
}

// Options tune the check; zero values take the defaults.
type Options struct {
	// Tolerance is how far, in metres, a corner may stray before it
	// counts (DefaultTolerance, the footprint's snapping). For a CRS whose
	// tiles are small in its units (degrees) it is lowered to a thousandth
	// of their median side, or every tile would sit "on the same spot".
	Tolerance float64
	// Announced is the resolution the livrable's attributes announce, in
	// metres; 0 when none.
	Announced float64
	// MaxPerKind caps the warnings listed per kind (DefaultMaxPerKind);
	// ByKind still counts them all.
	MaxPerKind int

	// pairBudget bounds the tile pairs the overlap search compares per
	// CRS (0: pairsPerTile per tile plus basePairs). Tests lower it to
	// reach the exact count a hostile delivery falls back on.
	pairBudget int
}

// Defaults.
const (
	DefaultTolerance  = 0.01
	DefaultMaxPerKind = 10_000
)

// Kind names what is wrong.
type Kind string

// The kinds, in the order they are listed.
const (
	OffGrid      Kind = "off_grid"
	Overlap      Kind = "overlap"
	Duplicate    Kind = "duplicate"
	NameMismatch Kind = "name_mismatch"
	Resolution   Kind = "resolution"
	Mixed        Kind = "mixed"
	SizeOutlier  Kind = "size_outlier"
	Missing      Kind = "missing"
)

// Kinds are every kind, in the order warnings are listed.
var Kinds = []Kind{OffGrid, Overlap, Duplicate, NameMismatch, Resolution, Mixed, SizeOutlier, Missing}

// Warning is one entry of report.json's warnings. Detail says it in
// English; the structured fields let a page phrase it in French.
type Warning struct {
	// Path is the tile; for missing the name the delivery's pattern
	// predicts for the cell ("" without a pattern); "" for a
	// delivery-wide mixed or resolution warning.
	Path   string `json:"path"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
	// Other is the other tile involved in an overlap or a duplicate.
	Other string `json:"other,omitempty"`
	// Offset is off_grid's distance from the grid, dx and dy in metres,
	// each in (-size/2, size/2].
	Offset *[2]float64 `json:"offset,omitempty"`
	// AreaM2 is an overlap's area.
	AreaM2 float64 `json:"areaM2,omitempty"`
	// Ratio is a size_outlier's size over its peers' median.
	Ratio float64 `json:"ratio,omitempty"`
	// Expected is the file name (no folder) the delivery's pattern gives
	// the place the header puts the tile at.
	Expected string `json:"expected,omitempty"`
	// Counts are a mixed attribute's values with their tile counts.
	Counts map[string]int `json:"counts,omitempty"`
	// EPSG and Box place the warning (the tile, the overlap, the missing
	// cell) in EPSG's CRS for the caller to draw; Box is nil for
	// delivery-wide warnings and tiles whose box is not finite.
	EPSG int         `json:"epsg,omitempty"`
	Box  *[4]float64 `json:"box,omitempty"`
}

// Result is the check's verdict.
type Result struct {
	// Warnings are sorted by kind (Kinds' order), then path, then other.
	Warnings []Warning
	// ByKind counts every warning of every kind in Kinds (0 when none),
	// listed or not.
	ByKind map[Kind]int
	// Truncated is true when some kind has more warnings than listed.
	Truncated bool
}

// Check looks at the delivery's readable tiles. It never fails and never
// panics on any header: a tile whose box is not finite is left out of the
// geometric checks, and one without a resolution, a size or a format out
// of those checks.
func Check(tiles []Tile, opts Options) Result {
	opts = withDefaults(opts)
	c := newChecker(tiles, opts)
	c.mixed()
	c.resolutions()
	c.sizes()
	for _, g := range c.groups {
		c.duplicates(g)
		c.offGrid(g)
		c.overlaps(g)
	}
	names := c.names()
	for _, g := range c.groups {
		c.holes(g, names)
	}
	return c.result()
}

func withDefaults(opts Options) Options {
	if !(opts.Tolerance > 0) || math.IsInf(opts.Tolerance, 0) {
		opts.Tolerance = DefaultTolerance
	}
	if opts.MaxPerKind <= 0 {
		opts.MaxPerKind = DefaultMaxPerKind
	}
	if !(opts.Announced > 0) || math.IsInf(opts.Announced, 0) {
		opts.Announced = 0
	}
	return opts
}

// checker gathers the warnings of one check.
type checker struct {
	opts   Options
	tiles  []Tile
	groups []*group // the tiles with a finite box, one group per CRS
	group  []int32  // each tile's group, -1 when its box is not finite
	// offsets are the tiles off the grid's offsets from their cell, in
	// CRS units: names judges them at the cell.
	offsets map[int32][2]float64
	counts  [len(kindOrder)]int
	lists   [len(kindOrder)]*list
}

// kindOrder is Kinds as an array, so that per-kind state is arrays.
var kindOrder = [...]Kind{OffGrid, Overlap, Duplicate, NameMismatch, Resolution, Mixed, SizeOutlier, Missing}

func kindIndex(k Kind) int {
	for i, o := range kindOrder {
		if o == k {
			return i
		}
	}
	panic("quality: unknown kind " + string(k)) // a programming error, never the input's
}

func newChecker(tiles []Tile, opts Options) *checker {
	c := &checker{opts: opts, tiles: tiles, offsets: map[int32][2]float64{}}
	for i, k := range kindOrder {
		// Missing cells come in cell order and are listed as they come:
		// a hole's cells are counted with arithmetic past the cap, never
		// named one by one (see holes).
		c.lists[i] = &list{max: opts.MaxPerKind, firstCome: k == Missing}
	}
	c.order()
	return c
}

// found counts n warnings of kind k, listed or not. Counts saturate rather
// than wrap: a hostile delivery can enclose a hole of more cells than an
// int counts only in theory, but "never panics" includes never lies.
func (c *checker) found(k Kind, n int) {
	i := kindIndex(k)
	if n > math.MaxInt-c.counts[i] {
		c.counts[i] = math.MaxInt
		return
	}
	c.counts[i] += n
}

// offer lists the warning build makes if it is among the first
// MaxPerKind of its kind in the final order; build is called only then,
// so that a million warnings past the cap cost no sentence each.
func (c *checker) offer(k Kind, path, other string, build func() Warning) {
	l := c.lists[kindIndex(k)]
	if l.admits(path, other) {
		w := build()
		w.Kind, w.Path, w.Other = k, path, other
		l.push(w)
	}
}

// report counts one warning and offers it for listing.
func (c *checker) report(k Kind, path, other string, build func() Warning) {
	c.found(k, 1)
	c.offer(k, path, other, build)
}

func (c *checker) result() Result {
	res := Result{Warnings: []Warning{}, ByKind: make(map[Kind]int, len(kindOrder))}
	for i, k := range kindOrder {
		listed := c.lists[i].sorted()
		res.Warnings = append(res.Warnings, listed...)
		res.ByKind[k] = c.counts[i]
		if c.counts[i] > len(listed) {
			res.Truncated = true
		}
	}
	return res
}

// boxPtr is a copy of b for a warning, nil when b is not finite (the
// caller reprojects it).
func boxPtr(b [4]float64) *[4]float64 {
	if !finite(b) {
		return nil
	}
	return &b
}

// roundSig rounds v to digits significant digits, so that report.json says
// 10000 m², not 10000.000000000002, in metres and in degrees alike.
func roundSig(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(v))))
	if math.IsInf(p, 0) || p == 0 {
		return v
	}
	return math.Round(v*p) / p
}

// sortedKeys is m's keys in increasing order, for map-driven loops that
// must not depend on Go's map order.
func sortedKeys[K int | int32 | int64 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
