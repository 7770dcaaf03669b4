// Package quality says what is wrong with a delivery's readable tiles as a
// whole, from their headers and names alone: tiles off the delivery's grid,
// overlapping or delivered twice, misnamed, of another resolution, a
// delivery mixing formats, tiles far smaller than their peers, and the
// holes of the footprint as the missing grid cells. It costs no storage
// request, and its work is O(n log n) in the tiles: it never allocates over
// the delivery's extent, so two tiles 1,000 km apart cost what two
// neighbours do.
package quality

import (
	"cmp"
	"math"
	"slices"
)

// Tile is what the check needs from one readable tile.
type Tile struct {
	Path          string     // relative to the storage root
	EPSG          int        // the CRS of Box
	Box           [4]float64 // minX, minY, maxX, maxY in CRS units (metres)
	Width, Height int        // pixels
	Resolution    float64    // pixel size in CRS units, > 0
	Format        string     // image/jp2, image/tiff
	Compression   string
	Bands         string
	Size          int64 // bytes; 0 when unknown
}

// Options tune the check; zero values take the defaults.
type Options struct {
	// Tolerance is how far, in metres, a corner may stray from the grid
	// before it counts (DefaultTolerance: the footprint's snapping).
	Tolerance float64
	// Announced is the resolution the livrable announces, in metres.
	Announced float64
	// MaxPerKind caps the warnings listed per kind (DefaultMaxPerKind);
	// ByKind still counts them all.
	MaxPerKind int
}

// Defaults.
const (
	DefaultTolerance  = 0.01
	DefaultMaxPerKind = 10_000
)

// Kind names what is wrong.
type Kind string

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

// Warning is one entry of report.json's warnings. The structured fields
// let a page phrase it in French; Detail says it in English.
type Warning struct {
	Path   string `json:"path"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
	Other  string `json:"other,omitempty"`
	// Offset is off_grid's distance from the grid, dx and dy in metres.
	Offset *[2]float64 `json:"offset,omitempty"`
	// AreaM2 is an overlap's area.
	AreaM2 float64 `json:"areaM2,omitempty"`
	// Ratio is a size_outlier's size over its peers' median.
	Ratio float64 `json:"ratio,omitempty"`
	// Expected is the name the delivery's pattern gives the tile's place.
	Expected string `json:"expected,omitempty"`
	// Counts are a mixed attribute's values with their tile counts.
	Counts map[string]int `json:"counts,omitempty"`
	// EPSG and Box place the warning (the tile, the overlap, the missing
	// cell) for the caller to draw; nil Box for delivery-wide warnings.
	EPSG int         `json:"-"`
	Box  *[4]float64 `json:"-"`
}

// Result is the check's verdict.
type Result struct {
	Warnings  []Warning // by kind (Kinds' order), then path, then other
	ByKind    map[Kind]int
	Truncated bool // some kind had more than MaxPerKind warnings
}

// Check looks at the delivery's readable tiles. It never fails and never
// panics on any header: a tile whose box is not finite is left out.
func Check(tiles []Tile, opts Options) Result {
	if opts.Tolerance <= 0 || math.IsNaN(opts.Tolerance) {
		opts.Tolerance = DefaultTolerance
	}
	if opts.MaxPerKind <= 0 {
		opts.MaxPerKind = DefaultMaxPerKind
	}
	c := &checker{opts: opts, byKind: map[Kind]int{}}
	for _, k := range Kinds {
		c.byKind[k] = 0
	}
	c.tiles = tiles
	c.order = sane(tiles)
	c.mixed()
	c.resolutions()
	c.sizes()
	names := learnNames(c.tiles, c.order, opts.Tolerance)
	grids := map[int]grid{}
	for _, g := range byCRS(c.tiles, c.order) {
		c.tol = groupTolerance(c.tiles, g, opts.Tolerance)
		gr, ok := learnGrid(c.tiles, g)
		if !ok {
			gr = looseGrid(c.tiles, g)
		}
		grids[gr.epsg] = gr
		c.overlaps(g, gr)
		if ok {
			c.offGrid(g, gr)
			c.holes(g, gr, names)
		}
	}
	c.tol = opts.Tolerance
	c.names(names, grids)
	return c.result()
}

// checker gathers the warnings of one check.
type checker struct {
	opts      Options
	tiles     []Tile
	order     []int32 // the sane tiles, by path
	tol       float64 // the tolerance for the CRS being checked
	warnings  []Warning
	byKind    map[Kind]int
	listed    map[Kind]int
	truncated bool
}

// add lists w unless its kind is over the cap; it is counted anyway.
func (c *checker) add(w Warning) {
	c.byKind[w.Kind]++
	if c.listed == nil {
		c.listed = map[Kind]int{}
	}
	if c.listed[w.Kind] >= c.opts.MaxPerKind {
		c.truncated = true
		return
	}
	c.listed[w.Kind]++
	c.warnings = append(c.warnings, w)
}

func (c *checker) result() Result {
	order := map[Kind]int{}
	for i, k := range Kinds {
		order[k] = i
	}
	slices.SortFunc(c.warnings, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(order[a.Kind], order[b.Kind]), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Other, b.Other), cmp.Compare(a.Detail, b.Detail))
	})
	return Result{Warnings: c.warnings, ByKind: c.byKind, Truncated: c.truncated}
}

// sane is the indexes of the tiles whose box is finite and not inverted,
// sorted by path so that every choice below is the same whatever the input
// order. The tiles themselves are never copied: a million of them are
// large.
func sane(tiles []Tile) []int32 {
	out := make([]int32, 0, len(tiles))
	for i, t := range tiles {
		b := t.Box
		ok := b[2] > b[0] && b[3] > b[1]
		for _, v := range b {
			ok = ok && !math.IsNaN(v) && !math.IsInf(v, 0) && math.Abs(v) < 1e12
		}
		if ok && i < math.MaxInt32 {
			out = append(out, int32(i))
		}
	}
	slices.SortStableFunc(out, func(a, b int32) int { return cmp.Compare(tiles[a].Path, tiles[b].Path) })
	return out
}

// byCRS is the indexes of the tiles of each CRS, CRSs in increasing order.
func byCRS(tiles []Tile, order []int32) [][]int32 {
	idx := slices.Clone(order)
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(tiles[a].EPSG, tiles[b].EPSG) })
	var groups [][]int32
	for start := 0; start < len(idx); {
		end := start
		for end < len(idx) && tiles[idx[end]].EPSG == tiles[idx[start]].EPSG {
			end++
		}
		groups = append(groups, idx[start:end])
		start = end
	}
	return groups
}

func boxPtr(b [4]float64) *[4]float64 { return &b }
