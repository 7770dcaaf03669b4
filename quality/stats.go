package quality

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// mixed says, once per attribute, that the delivery mixes formats,
// compressions, band layouts or CRSs: the livrable's feature then has no
// single value to give.
func (c *checker) mixed() {
	attrs := []struct {
		name  string
		value func(*Tile) string
	}{
		{"format", func(t *Tile) string { return t.Format }},
		{"compression", func(t *Tile) string { return t.Compression }},
		{"bands", func(t *Tile) string { return t.Bands }},
		{"epsg", func(t *Tile) string { return "EPSG:" + strconv.Itoa(t.EPSG) }},
	}
	for _, a := range attrs {
		counts := map[string]int{}
		if a.name == "epsg" {
			// Counted by code: formatting a million codes costs.
			codes := map[int]int{}
			for _, i := range c.order {
				codes[c.tiles[i].EPSG]++
			}
			for code, n := range codes {
				counts["EPSG:"+strconv.Itoa(code)] = n
			}
		} else {
			for _, i := range c.order {
				counts[a.value(&c.tiles[i])]++
			}
		}
		if len(counts) < 2 {
			continue
		}
		values := make([]string, 0, len(counts))
		for v := range counts {
			values = append(values, v)
		}
		slices.SortFunc(values, func(x, y string) int { return cmp.Or(cmp.Compare(counts[y], counts[x]), cmp.Compare(x, y)) })
		parts := make([]string, 0, min(len(values), 5))
		for _, v := range values[:min(len(values), 5)] {
			parts = append(parts, fmt.Sprintf("%s (%d)", v, counts[v]))
		}
		if len(values) > 5 {
			parts = append(parts, fmt.Sprintf("and %d other values", len(values)-5))
			// A hostile delivery may carry a value per tile: the counts
			// keep the five most common.
			kept := map[string]int{}
			for _, v := range values[:5] {
				kept[v] = counts[v]
			}
			counts = kept
		}
		c.add(Warning{Kind: Mixed, Detail: fmt.Sprintf("the delivery mixes %d %s values: %s", len(values), a.name, strings.Join(parts, ", ")), Counts: counts})
	}
}

// resKey is a resolution to 0.01 % (on a log scale, so that degrees and
// metres alike): equal resolutions written by different software differ
// in the last bits.
func resKey(r float64) int64 { return int64(math.Round(math.Log10(r) * 1e4)) }

// resolutions names the tiles whose resolution differs from the
// delivery's most common one by more than 1 %, and a delivery whose
// resolution is not the one its livrable announces.
func (c *checker) resolutions() {
	counts := map[int64]int{}
	for _, i := range c.order {
		t := &c.tiles[i]
		if t.Resolution > 0 && !math.IsInf(t.Resolution, 0) {
			counts[resKey(t.Resolution)]++
		}
	}
	mode, ok := modeOf(counts)
	if !ok {
		return
	}
	m := math.Pow(10, float64(mode)/1e4)
	for _, i := range c.order {
		t := &c.tiles[i]
		if !(t.Resolution > 0) || math.Abs(t.Resolution-m) <= 0.01*m {
			continue
		}
		c.add(Warning{Path: t.Path, Kind: Resolution, EPSG: t.EPSG, Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("resolution %s, the delivery's is %s", cm(t.Resolution), cm(m))})
	}
	if a := c.opts.Announced; a > 0 && math.Abs(m-a) > 0.01*a {
		c.add(Warning{Kind: Resolution, Detail: fmt.Sprintf("the delivery's resolution is %s, the livrable announces %s", cm(m), cm(a))})
	}
}

func cm(m float64) string { return strconv.FormatFloat(m*100, 'g', 4, 64) + " cm" }

// modeOf is the most common key, the smallest on a tie.
func modeOf(counts map[int64]int) (int64, bool) {
	var best int64
	n := 0
	for k, c := range counts {
		if c > n || c == n && k < best {
			best, n = k, c
		}
	}
	return best, n > 0
}

// outlierRatio: a tile under a tenth of its peers' median is mostly empty
// (sea, a black fill, a failed export): JPEG of real imagery varies by a
// factor of two or three between town and field, rarely ten.
const (
	outlierRatio = 0.1
	minPeers     = 5
)

// sizes names the tiles far smaller than their peers: same dimensions,
// format and compression, at least minPeers of them with a known size.
func (c *checker) sizes() {
	type peerKey struct {
		w, h        int
		format, cmp string
	}
	groups := map[peerKey][]int32{}
	for _, i := range c.order {
		if t := &c.tiles[i]; t.Size > 0 {
			k := peerKey{t.Width, t.Height, t.Format, t.Compression}
			groups[k] = append(groups[k], i)
		}
	}
	for _, g := range groups {
		if len(g) < minPeers {
			continue
		}
		sizes := make([]int64, len(g))
		for j, i := range g {
			sizes[j] = c.tiles[i].Size
		}
		slices.Sort(sizes)
		median := float64(sizes[len(sizes)/2])
		if len(sizes)%2 == 0 {
			median = (float64(sizes[len(sizes)/2-1]) + median) / 2
		}
		for _, i := range g {
			t := c.tiles[i]
			if r := float64(t.Size) / median; r < outlierRatio {
				c.add(Warning{Path: t.Path, Kind: SizeOutlier, EPSG: t.EPSG, Box: boxPtr(t.Box), Ratio: math.Round(r*1e4) / 1e4,
					Detail: fmt.Sprintf("%d bytes, %.1f%% of the median of its %d peers (%.0f bytes): mostly empty?", t.Size, 100*r, len(g), median)})
			}
		}
	}
}
