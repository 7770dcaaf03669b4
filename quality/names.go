package quality

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Tile names usually encode the tile's place: `0651000_6226400.jp2` in
// metres, `PCRS_6510_62264_…` in hectometres, `…-0651-6228-…` in
// kilometres, from the lower-left or the upper-left corner. The pattern is
// learned from the delivery itself, never from a fixed list: which two
// digit groups of the name, which unit, which corner and whether the
// coordinate is floored or rounded most tiles agree with.
const (
	maxGroups = 10 // digit groups read per name
	maxDigits = 12 // a longer run is a timestamp, not a coordinate
	// nameSample tiles, spread over the delivery, choose the pattern:
	// plenty to tell patterns apart; all tiles then vote on the one
	// chosen, so the majority below is exact.
	nameSample = 4096
	// A pattern is the delivery's when at least minNameVotes tiles, and
	// at least nameMajorityNum/nameMajorityDenom (80 %) of the tiles whose
	// names have its digit groups, follow it: a clear majority, so that a
	// delivery named some other way (a running number, a date) gets no
	// name_mismatch at all, and a few misnamed tiles do not hide it.
	minNameVotes      = 3
	nameMajorityNum   = 4
	nameMajorityDenom = 5
	// maxNameCoordinates: a place past it has more digits than a name's
	// number holds (maxDigits).
	maxNameCoordinates = 1e12
)

// units are the name's units tried, in metres: metres, decametres,
// hectometres, kilometres.
var units = [...]float64{1, 10, 100, 1000}

// digits is one run of digits in a file name.
type digits struct {
	start, end int
	value      int64
}

// groupsOf reads the digit runs of a file name's stem (no extension) into
// buf, resliced: no allocation per tile.
func groupsOf(stem string, buf *[maxGroups]digits) []digits {
	out := buf[:0]
	for i := 0; i < len(stem) && len(out) < maxGroups; {
		if !isDigit(stem[i]) {
			i++
			continue
		}
		j := i
		for j < len(stem) && isDigit(stem[j]) {
			j++
		}
		if j-i <= maxDigits {
			v, _ := strconv.ParseInt(stem[i:j], 10, 64) // 12 digits always fit
			out = append(out, digits{i, j, v})
		}
		i = j
	}
	return out
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// baseName is a path's file name; stem is it without the extension.
func baseName(p string) (dir, base, stem string) {
	i := strings.LastIndexByte(p, '/') + 1
	dir, base = p[:i], p[i:]
	stem = base
	if j := strings.LastIndexByte(base, '.'); j > 0 {
		stem = base[:j]
	}
	return dir, base, stem
}

// candidate is one way names may encode a place.
type candidate struct {
	gx, gy int  // the digit groups holding X and Y
	unit   int  // index in units
	upper  bool // Y from the upper edge (upper-left corner names)
	round  bool // rounded rather than floored
}

// coords are the numbers a name following c gives box b; false when a
// number would be negative or huge (no name holds it).
func (c candidate) coords(b [4]float64, tol float64) (int64, int64, bool) {
	y := b[1]
	if c.upper {
		y = b[3]
	}
	u := units[c.unit]
	x, yy := math.Floor((b[0]+tol)/u), math.Floor((y+tol)/u)
	if c.round {
		x, yy = math.Round(b[0]/u), math.Round(y/u)
	}
	if !(x >= 0 && yy >= 0 && x < maxNameCoordinates && yy < maxNameCoordinates) {
		return 0, 0, false
	}
	return int64(x), int64(yy), true
}

// candidateCmp orders candidates on a tie of votes: the finer unit, the
// lower corner, floored, the earlier groups. Ties happen when several
// readings are true of every sampled tile (rounding and flooring agree on
// corners on whole units); any of them then reads the delivery alike.
func candidateCmp(a, b candidate) int {
	return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(boolInt(a.upper), boolInt(b.upper)),
		cmp.Compare(boolInt(a.round), boolInt(b.round)), cmp.Compare(a.gx, b.gx), cmp.Compare(a.gy, b.gy))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pattern is how a delivery names its tiles; nil when it follows none.
type pattern struct {
	candidate
	// template is an agreeing tile's path, of the most common folder and
	// extension: missing cells are named after it.
	template string
}

// names learns the delivery's naming pattern and names the tiles whose
// header places them elsewhere than their name says, with the name they
// should have. A tile off the grid is judged at the grid cell it stands
// nearest (see placed): if its name is that cell's, off_grid says all
// there is to say.
func (c *checker) names() *pattern {
	best, ok := c.voteNames()
	if !ok {
		return nil
	}
	v := c.verify(best)
	if !v.holds() {
		return nil
	}
	p := &pattern{candidate: best, template: v.template()}
	for _, i := range c.inOrder(v.disagree) {
		c.reportName(&c.tiles[i], p, c.placed(i), c.groups[c.group[i]].tol)
	}
	return p
}

// reportName names t, placed at placed, if p renames it.
func (c *checker) reportName(t *Tile, p *pattern, placed [4]float64, tol float64) {
	_, base, _ := baseName(t.Path)
	exp, ok := p.rename(base, placed, tol)
	if !ok || exp == base {
		return
	}
	c.report(NameMismatch, t.Path, "", func() Warning {
		return Warning{Expected: exp, EPSG: int(t.attrs().EPSG), Box: boxPtr(t.Box),
			Detail: fmt.Sprintf("Its header places it where the delivery's names say %s.", exp)}
	})
}

// placed is tile i's box moved onto its nearest grid cell when it is off
// the grid (its size kept): where the header would put it without its
// offset, the place its name was meant for.
func (c *checker) placed(i int32) [4]float64 {
	b := c.tiles[i].Box
	if len(c.offsets) == 0 {
		return b
	}
	if off, ok := c.offsets[i]; ok {
		b = [4]float64{b[0] - off[0], b[1] - off[1], b[2] - off[0], b[3] - off[1]}
	}
	return b
}

// voteNames picks the candidate most sampled tiles agree with.
func (c *checker) voteNames() (candidate, bool) {
	total := 0
	for _, g := range c.groups {
		total += len(g.members)
	}
	step := max(1, total/nameSample)
	votes := map[candidate]int{}
	var buf [maxGroups]digits
	k := 0
	for _, g := range c.groups {
		for _, m := range g.members {
			if k++; (k-1)%step != 0 {
				continue
			}
			t := &c.tiles[m.tile]
			_, _, stem := baseName(t.Path)
			if gs := groupsOf(stem, &buf); len(gs) >= 2 {
				vote(votes, gs, t.Box, g.tol)
			}
		}
	}
	return bestCandidate(votes)
}

// bestCandidate is the candidate with the most votes (the first in
// candidateCmp's order on a tie); false without any vote.
func bestCandidate(votes map[candidate]int) (candidate, bool) {
	var best candidate
	n := 0
	for cand, v := range votes {
		if v > n || v == n && candidateCmp(cand, best) < 0 {
			best, n = cand, v
		}
	}
	return best, n > 0
}

// vote adds one to every candidate reading the name's groups as the box.
func vote(votes map[candidate]int, gs []digits, b [4]float64, tol float64) {
	for unit := range units {
		for _, upper := range [2]bool{false, true} {
			for _, round := range [2]bool{false, true} {
				c := candidate{unit: unit, upper: upper, round: round}
				x, y, ok := c.coords(b, tol)
				if !ok {
					continue
				}
				for a := range gs {
					if gs[a].value != x {
						continue
					}
					for b := range gs {
						if a != b && gs[b].value == y {
							c.gx, c.gy = a, b
							votes[c]++
						}
					}
				}
			}
		}
	}
}

// folderExt is a tile's folder and extension, to pick the template.
type folderExt struct{ dir, ext string }

// folder is an agreeing folder and extension's tile count and smallest
// path.
type folder struct {
	n     int
	first string
}

// verdict is every tile's vote on one candidate.
type verdict struct {
	named, agree int // tiles with the candidate's groups; those agreeing
	disagree     []int32
	folders      map[folderExt]folder
	// run counts consecutive agreeing tiles of one folder and extension,
	// so that a million tiles of one folder cost no map access each.
	run    folderExt
	runDir folder
}

// verify reads every tile's name with cand, in the caller's order (the
// tiles' memory order: a million names cost no cache miss each); nothing
// it keeps depends on that order.
func (c *checker) verify(cand candidate) *verdict {
	v := &verdict{folders: map[folderExt]folder{}}
	var buf [maxGroups]digits
	for i := range c.tiles {
		if c.group[i] < 0 {
			continue
		}
		if v.judge(cand, &c.tiles[i], c.placed(int32(i)), c.groups[c.group[i]].tol, &buf) {
			v.disagree = append(v.disagree, int32(i))
		}
	}
	v.flush()
	return v
}

// tally counts an agreeing tile's folder and extension.
// holds says whether the names agreeing make the candidate the
// delivery's pattern.
func (v *verdict) holds() bool {
	return v.agree >= minNameVotes && nameMajorityDenom*v.agree >= nameMajorityNum*v.named
}

// judge counts t, placed at placed, for or against cand; true when its
// name disagrees.
func (v *verdict) judge(cand candidate, t *Tile, placed [4]float64, tol float64, buf *[maxGroups]digits) bool {
	named, agrees := judgeName(cand, t, placed, tol, buf)
	switch {
	case !named:
		return false
	case !agrees:
		v.named++
		return true
	}
	v.named++
	v.agree++
	dir, base, stem := baseName(t.Path)
	v.tally(folderExt{dir, base[len(stem):]}, t.Path)
	return false
}

// judgeName says whether t's name can be judged by cand (its digit
// groups are there and its place is one a name can say), and if so
// whether it agrees with where t is placed.
func judgeName(cand candidate, t *Tile, placed [4]float64, tol float64, buf *[maxGroups]digits) (named, agrees bool) {
	_, _, stem := baseName(t.Path)
	gs := groupsOf(stem, buf)
	if len(gs) <= max(cand.gx, cand.gy) {
		return false, false
	}
	x, y, ok := cand.coords(placed, tol)
	if !ok {
		return false, false // a place no name can say: nothing to judge
	}
	return true, gs[cand.gx].value == x && gs[cand.gy].value == y
}

func (v *verdict) tally(key folderExt, path string) {
	if v.runDir.n == 0 || key != v.run {
		v.flush()
		v.run, v.runDir = key, folder{first: path}
	}
	v.runDir.n++
	v.runDir.first = min(v.runDir.first, path)
}

func (v *verdict) flush() {
	if v.runDir.n == 0 {
		return
	}
	f, seen := v.folders[v.run]
	if !seen || v.runDir.first < f.first {
		f.first = v.runDir.first
	}
	f.n += v.runDir.n
	v.folders[v.run] = f
	v.runDir = folder{}
}

// template is the smallest agreeing path of the most common folder and
// extension (the smallest on a tie), so that a hole among GeoTIFFs is not
// named after the one JPEG 2000.
func (v *verdict) template() string {
	var best folderExt
	n := 0
	for key, f := range v.folders {
		if f.n > n || f.n == n && (key.dir < best.dir || key.dir == best.dir && key.ext < best.ext) {
			best, n = key, f.n
		}
	}
	return v.folders[best].first
}

// rename is the file name with the numbers the pattern gives box b, in
// the same digit counts (zero-padded), or false when the name has not the
// pattern's digit groups or b no nameable place.
func (p *pattern) rename(base string, b [4]float64, tol float64) (string, bool) {
	var buf [maxGroups]digits
	_, _, stem := baseName(base)
	gs := groupsOf(stem, &buf)
	if len(gs) <= max(p.gx, p.gy) {
		return "", false
	}
	x, y, ok := p.coords(b, tol)
	if !ok {
		return "", false
	}
	first, second := gs[p.gx], gs[p.gy]
	fv, sv := x, y
	if first.start > second.start {
		first, second, fv, sv = second, first, y, x
	}
	return base[:first.start] + pad(fv, first.end-first.start) + base[first.end:second.start] +
		pad(sv, second.end-second.start) + base[second.end:], true
}

// pad writes v with at least width digits: `0651000` stays seven digits.
func pad(v int64, width int) string {
	s := strconv.FormatInt(v, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// predict is the path the pattern gives a cell, in the template's folder;
// "" without a pattern.
func (p *pattern) predict(cell [4]float64, tol float64) string {
	if p == nil || p.template == "" {
		return ""
	}
	dir, base, _ := baseName(p.template)
	name, ok := p.rename(base, cell, tol)
	if !ok {
		return ""
	}
	return dir + name
}
