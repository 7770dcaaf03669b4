package quality

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxMixedValues bounds a mixed warning's Counts: a hostile delivery may
// carry a value per tile; the most common ones say what is mixed.
const maxMixedValues = 10

// mixed says, once per attribute, that the delivery mixes formats,
// compressions, band layouts or CRSs, with each value's tile count: the
// livrable's feature then has no single value to give. An unknown value
// (empty, or no EPSG code) is no value: a header that could not tell its
// compression does not make a mix.
func (c *checker) mixed() {
	attrs := mixedAttrs()
	var counts [len(attrs)]valueCounter
	for i := range c.tiles {
		for k := range attrs {
			counts[k].add(attrs[k].value(&c.tiles[i]))
		}
	}
	c.reportMixed(&counts)
}

// mixedAttr is an attribute mixed looks at.
type mixedAttr struct {
	name  string
	value func(*Tile) string
}

// mixedAttrs are the attributes mixed looks at, in the order it reports
// them (epsgName keeps state: a new list per check).
func mixedAttrs() [4]mixedAttr {
	return [4]mixedAttr{
		{"formats", func(t *Tile) string { return t.attrs().Format }},
		{"compressions", func(t *Tile) string { return t.attrs().Compression }},
		{"band layouts", func(t *Tile) string { return t.attrs().Bands }},
		{"CRSs", epsgName()},
	}
}

// reportMixed says what each attribute counted mixes.
func (c *checker) reportMixed(counted *[4]valueCounter) {
	attrs := mixedAttrs()
	for k, a := range attrs {
		counts := counted[k].result()
		if len(counts) < 2 {
			continue
		}
		values := sortedKeys(counts)
		slices.SortStableFunc(values, func(x, y string) int { return cmp.Compare(counts[y], counts[x]) })
		parts := make([]string, 0, maxMixedValues+1)
		kept := make(map[string]int, min(len(values), maxMixedValues))
		for _, v := range values[:min(len(values), maxMixedValues)] {
			parts = append(parts, fmt.Sprintf("%s (%s)", v, tilesCount(counts[v])))
			kept[v] = counts[v]
		}
		if rest := values[len(kept):]; len(rest) > 0 {
			n := 0
			for _, v := range rest {
				n += counts[v]
			}
			parts = append(parts, fmt.Sprintf("and %d other values (%s)", len(rest), tilesCount(n)))
		}
		detail := fmt.Sprintf("The delivery mixes %d %s: %s.", len(values), a.name, strings.Join(parts, ", "))
		c.report(Mixed, "", "", func() Warning { return Warning{Counts: kept, Detail: detail} })
	}
}

func tilesCount(n int) string {
	if n == 1 {
		return "1 tile"
	}
	return strconv.Itoa(n) + " tiles"
}

// epsgName writes a tile's CRS as "EPSG:2154", once per run of one code:
// formatting a million codes would cost more than the rest of mixed.
func epsgName() func(*Tile) string {
	last, name := int32(0), ""
	return func(t *Tile) string {
		code := t.attrs().EPSG
		if code <= 0 {
			return ""
		}
		if code != last {
			last, name = code, "EPSG:"+strconv.Itoa(int(code))
		}
		return name
	}
}

// valueCounter counts each known value over every tile, a map access per
// run of equal values (a delivery's values come in long runs), not per
// tile. With limit set, it stops counting past limit distinct values and
// says so (over): the streamed check holds nothing that grows unbounded.
type valueCounter struct {
	counts map[string]int
	last   string
	run    int
	limit  int
	over   bool
}

func (v *valueCounter) add(s string) {
	if v.run > 0 && s == v.last {
		v.run++
		return
	}
	v.flush()
	v.last, v.run = s, 1
}

func (v *valueCounter) flush() {
	if v.run == 0 || v.over {
		return
	}
	if v.counts == nil {
		v.counts = map[string]int{}
	}
	v.counts[v.last] += v.run
	v.run = 0
	if v.limit > 0 && len(v.counts) > v.limit {
		v.over, v.counts = true, nil
	}
}

// result is the counts of the known values.
func (v *valueCounter) result() map[string]int {
	v.flush()
	delete(v.counts, "")
	return v.counts
}

// resolutionTolerance: resolutions within 1 % are one; GeoTIFF and JPEG
// 2000 writers round pixel sizes differently in the last digits, and the
// PCRS's resolutions (5, 10, 20 cm) are a factor 2 apart.
const resolutionTolerance = 0.01

// resKey is a resolution to 0.01 %, on a log scale so that degrees and
// metres alike, to find the most common one.
func resKey(r float64) int64 { return int64(math.Round(math.Log10(r) * 1e4)) }

func knownResolution(r float64) bool { return r > 0 && r < math.MaxFloat64 }

// resolutions names the tiles whose resolution differs from the
// delivery's most common one (the finer on a tie) by more than 1 %, and
// the delivery whose resolution is not the one its livrable announces.
func (c *checker) resolutions() {
	// Each 0.01 % step's count and smallest value, a map access per run
	// of one resolution.
	var rt resTally
	for i := range c.tiles {
		rt.add(c.tiles[i].attrs().Resolution)
	}
	mode, ok := rt.mode()
	if !ok {
		return
	}
	var odd []int32
	for i := range c.tiles {
		if oddResolution(&c.tiles[i], mode) {
			odd = append(odd, int32(i))
		}
	}
	for _, i := range c.inOrder(odd) {
		c.reportResolution(&c.tiles[i], mode)
	}
	c.announced(mode)
}

// resTally counts resolutions by 0.01 % step, a map access per run of
// equal values. With limit set it stops past limit steps (over).
type resTally struct {
	steps map[int64]resStep
	run   resStep
	limit int
	over  bool
}

func (rt *resTally) add(r float64) {
	if !knownResolution(r) {
		return
	}
	if rt.run.n > 0 && r == rt.run.least {
		rt.run.n++
		return
	}
	rt.flush()
	rt.run = resStep{1, r}
}

func (rt *resTally) flush() {
	if rt.steps == nil {
		rt.steps = map[int64]resStep{}
	}
	addStep(rt.steps, rt.run.least, rt.run.n)
	rt.run = resStep{}
	if rt.limit > 0 && len(rt.steps) > rt.limit {
		rt.over = true
		clear(rt.steps)
	}
}

// mode is the most common step's value as tiles have it (0.05, not
// 10^(-13010/1e4)); false without any known resolution.
func (rt *resTally) mode() (float64, bool) {
	rt.flush()
	var key int64
	best := 0
	for k, s := range rt.steps {
		if s.n > best || s.n == best && k < key {
			key, best = k, s.n
		}
	}
	return rt.steps[key].least, best > 0
}

// oddResolution says whether t's resolution is off the delivery's mode.
func oddResolution(t *Tile, mode float64) bool {
	r := t.attrs().Resolution
	return knownResolution(r) && math.Abs(r-mode) > resolutionTolerance*mode
}

func (c *checker) reportResolution(t *Tile, mode float64) {
	c.report(Resolution, t.Path, "", func() Warning {
		return Warning{EPSG: int(t.attrs().EPSG), Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("Its resolution is %s where the delivery's is %s.", cm(t.attrs().Resolution), cm(mode))}
	})
}

// announced compares the delivery's resolution with the livrable's.
func (c *checker) announced(mode float64) {
	if a := c.opts.Announced; a > 0 && math.Abs(mode-a) > resolutionTolerance*a {
		c.report(Resolution, "", "", func() Warning {
			return Warning{Detail: fmt.Sprintf("The delivery's resolution is %s where its livrable announces %s.", cm(mode), cm(a))}
		})
	}
}

// resStep is the tiles of one 0.01 % step of resolution: how many, and
// the smallest value.
type resStep struct {
	n     int
	least float64
}

// addStep counts n tiles of resolution r in its step.
func addStep(steps map[int64]resStep, r float64, n int) {
	if n == 0 {
		return
	}
	k := resKey(r)
	s, ok := steps[k]
	if !ok || r < s.least {
		s.least = r
	}
	s.n += n
	steps[k] = s
}

func cm(m float64) string { return strconv.FormatFloat(roundSig(m*100, 4), 'f', -1, 64) + " cm" }

// A tile under a tenth of its peers' median size is mostly empty (sea, a
// black or white fill, a failed export): JPEG and JPEG 2000 of real
// imagery vary by a factor of two to four between town, field and forest,
// rarely ten, while a uniform tile compresses a hundred times better. The
// median, not the mean, so that the outliers do not move the bar; peers
// are tiles of the same dimensions, format and compression (a 10 cm tile
// is a quarter of a 5 cm one, a lossless one several times a lossy one),
// at least minPeers of them, or the median means little. A hint, not an
// error: a tile of sea is legitimately small.
const (
	outlierRatio = 0.1
	minPeers     = 5
)

// peerKey is what makes two tiles' sizes comparable.
type peerKey struct {
	w, h                int32
	format, compression string
}

// sizes names the tiles far smaller than their peers, with size / median.
func (c *checker) sizes() {
	groupOf, peers := c.peerGroups()
	medians := make([]float64, len(peers))
	for k, sizes := range peers {
		if len(sizes) >= minPeers {
			medians[k] = median(sizes)
		}
	}
	var small []int32
	for i, g := range groupOf {
		if g >= 0 && medians[g] > 0 && float64(c.tiles[i].Size) < outlierRatio*medians[g] {
			small = append(small, int32(i))
		}
	}
	for _, i := range c.inOrder(small) {
		c.reportSize(&c.tiles[i], medians[groupOf[i]], len(peers[groupOf[i]]))
	}
}

// reportSize names t, m its n peers' median size.
func (c *checker) reportSize(t *Tile, m float64, n int) {
	r := float64(t.Size) / m
	c.report(SizeOutlier, t.Path, "", func() Warning {
		return Warning{Ratio: roundSig(r, 4), EPSG: int(t.attrs().EPSG), Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("It is %d bytes, %s%% of the median size of its %d peers of the same dimensions, format and compression (%.0f bytes): mostly empty?",
				t.Size, num(roundSig(100*r, 3)), n, m)}
	})
}

// peerGroups files each tile of known size under its peers' group (-1
// when the size is unknown), with the groups' sizes: one pass to file
// (a map access per run of one kind of tile), one to gather the sizes
// into slices sized once.
func (c *checker) peerGroups() ([]int32, [][]int64) {
	index := map[peerKey]int32{}
	groupOf := make([]int32, len(c.tiles))
	var counts []int
	var last peerKey
	var lastAttrs *Attrs
	lastGroup := int32(-1)
	for i := range c.tiles {
		t := &c.tiles[i]
		groupOf[i] = -1
		if t.Size <= 0 {
			continue
		}
		// Tiles sharing one Attrs share a group: a map access per run of
		// them, not per tile.
		if a := t.attrs(); lastGroup < 0 || a != lastAttrs {
			lastAttrs = a
			if key := (peerKey{a.Width, a.Height, a.Format, a.Compression}); lastGroup < 0 || key != last {
				g, ok := index[key]
				if !ok {
					g = int32(len(counts))
					index[key] = g
					counts = append(counts, 0)
				}
				last, lastGroup = key, g
			}
		}
		groupOf[i] = lastGroup
		counts[lastGroup]++
	}
	peers := make([][]int64, len(counts))
	for g, n := range counts {
		peers[g] = make([]int64, 0, n)
	}
	for i, g := range groupOf {
		if g >= 0 {
			peers[g] = append(peers[g], c.tiles[i].Size)
		}
	}
	return groupOf, peers
}

// median is the middle of s (the mean of the two middles for an even
// count), reordering s; O(n).
func median(s []int64) float64 {
	n := len(s)
	upper := nth(s, n/2)
	if n%2 == 1 {
		return float64(upper)
	}
	// nth leaves s[:n/2] no greater than the middle.
	return (float64(slices.Max(s[:n/2])) + float64(upper)) / 2
}
