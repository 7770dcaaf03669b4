package footprint

import (
	"fmt"
	"math"
	"sync"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/footprint/internal/crs"
	"github.com/openpcrs/pcrs-indexer/footprint/internal/geos"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/planar"
)

// DefaultMaxSegment is the longest edge reprojected as a straight line: a
// 50 m chord of a Lambert-93 line stays well under 5 cm of the true curve.
const DefaultMaxSegment = 50.0

// Decimals of published coordinates: 1e-7° is about 1 cm.
const Decimals = 7

var registerOnce sync.Once

// Projector reprojects geometries from one EPSG CRS to WGS84 lon/lat.
type Projector struct {
	mu       sync.Mutex // OGR transformations are not thread-safe
	src, dst *godal.SpatialRef
	tr       *godal.Transform
	code     int
	area     areaOfUse
	hasArea  bool
	degrees  bool // geographic CRS: coordinates in degrees, not metres
}

// metresPerDegree converts Options, given in metres, for geographic CRSs.
const metresPerDegree = 111_320.0

// inUnits is o with its lengths in the CRS's units.
func (p *Projector) inUnits(o Options) Options {
	if p.degrees {
		o.Tolerance /= metresPerDegree
		o.MaxSegment /= metresPerDegree
	}
	return o
}

// areaM2 is the area of mp, given in the CRS's units, in square metres:
// for a geographic CRS, on a local equirectangular approximation per
// polygon, which is exact enough at the size of a delivery.
func (p *Projector) areaM2(mp orb.MultiPolygon) float64 {
	if !p.degrees {
		return planar.Area(mp)
	}
	var a float64
	for _, poly := range mp {
		lat := poly.Bound().Center()[1] * math.Pi / 180
		a += planar.Area(poly) * metresPerDegree * metresPerDegree * math.Cos(lat)
	}
	return a
}

// NewProjector prepares the transformation from EPSG:code to WGS84.
func NewProjector(code int) (*Projector, error) {
	registerOnce.Do(godal.RegisterAll)
	src, err := godal.NewSpatialRefFromEPSG(code)
	if err != nil {
		return nil, fmt.Errorf("EPSG:%d: %w", code, err)
	}
	// A PROJ string keeps lon/lat order whatever the EPSG axis order says.
	dst, err := godal.NewSpatialRefFromProj4("+proj=longlat +datum=WGS84 +no_defs")
	if err != nil {
		src.Close()
		return nil, err
	}
	tr, err := godal.NewTransform(src, dst)
	if err != nil {
		src.Close()
		dst.Close()
		return nil, fmt.Errorf("EPSG:%d to WGS84: %w", code, err)
	}
	a, ok := crs.AreaOfUse(code)
	return &Projector{src: src, dst: dst, tr: tr, code: code, area: areaOfUse(a), hasArea: ok, degrees: src.Geographic()}, nil
}

// Close releases the transformation.
func (p *Projector) Close() {
	p.tr.Close()
	p.src.Close()
	p.dst.Close()
}

// BoxPolygon is a box as a closed counter-clockwise ring.
func BoxPolygon(b Box) orb.Polygon {
	return orb.Polygon{{{b.MinX, b.MinY}, {b.MaxX, b.MinY}, {b.MaxX, b.MaxY}, {b.MinX, b.MaxY}, {b.MinX, b.MinY}}}
}

// MultiPolygon densifies mp's edges to maxSeg, reprojects it to WGS84,
// rounds it to Decimals and orients it per RFC 7946.
func (p *Projector) MultiPolygon(mp orb.MultiPolygon, maxSeg float64) (orb.MultiPolygon, error) {
	out := make(orb.MultiPolygon, 0, len(mp))
	for _, poly := range mp {
		q, err := p.Polygon(poly, maxSeg)
		if err != nil {
			return nil, err
		}
		if q != nil {
			out = append(out, q)
		}
	}
	return out, nil
}

// Polygon is MultiPolygon for one polygon; nil if rounding left nothing.
func (p *Projector) Polygon(poly orb.Polygon, maxSeg float64) (orb.Polygon, error) {
	out := make(orb.Polygon, 0, len(poly))
	for i, r := range poly {
		if len(r) < 4 {
			if i == 0 {
				return nil, nil
			}
			continue
		}
		d := densify(r, maxSeg)
		xs := make([]float64, len(d))
		ys := make([]float64, len(d))
		for j, pt := range d {
			xs[j], ys[j] = pt[0], pt[1]
		}
		ok := make([]bool, len(d))
		p.mu.Lock()
		err := p.tr.TransformEx(xs, ys, nil, ok)
		p.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("reprojecting: %w", err)
		}
		ring := make(orb.Ring, len(d))
		for j := range d {
			if !ok[j] || !finite(xs[j]) || !finite(ys[j]) {
				return nil, fmt.Errorf("reprojecting point %v failed", d[j])
			}
			ring[j] = orb.Point{xs[j], ys[j]}
		}
		ring = roundRing(ring)
		if len(ring) < 4 {
			if i == 0 {
				return nil, nil
			}
			continue
		}
		out = append(out, ring)
	}
	orient(out)
	return out, nil
}

// MaxDensified bounds the points densify adds to a ring, beyond a few per
// input vertex: a tile's size comes from its header, so a hostile one may
// claim sides of billions of metres.
const MaxDensified = 10_000

// densify inserts points so that no edge is longer than maxSeg, or, when
// that would take more than MaxDensified points plus 16 per vertex, spreads
// that many evenly along the ring. A ring with a non-finite length is
// returned as is: reprojecting it fails anyway.
func densify(r orb.Ring, maxSeg float64) orb.Ring {
	if len(r) < 2 || !(maxSeg > 0) {
		return r
	}
	total := 0.0
	for i := 0; i+1 < len(r); i++ {
		total += math.Hypot(r[i+1][0]-r[i][0], r[i+1][1]-r[i][1])
	}
	if math.IsNaN(total) || math.IsInf(total, 0) {
		return r
	}
	budget := MaxDensified + 16*len(r)
	if total/maxSeg > float64(budget) {
		maxSeg = total / float64(budget)
	}
	out := make(orb.Ring, 0, len(r)+min(budget, int(total/maxSeg))+len(r))
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		out = append(out, a)
		n := int(math.Ceil(math.Hypot(b[0]-a[0], b[1]-a[1]) / maxSeg))
		for k := 1; k < n; k++ {
			f := float64(k) / float64(n)
			out = append(out, orb.Point{a[0] + f*(b[0]-a[0]), a[1] + f*(b[1]-a[1])})
		}
	}
	return append(out, r[len(r)-1])
}

var scale = math.Pow(10, Decimals)

func round(v float64) float64 { return math.Round(v*scale) / scale }

// roundRing rounds to Decimals and drops the consecutive duplicates that
// rounding may create.
func roundRing(r orb.Ring) orb.Ring {
	out := r[:0]
	for _, pt := range r {
		q := orb.Point{round(pt[0]), round(pt[1])}
		if len(out) > 0 && out[len(out)-1] == q {
			continue
		}
		out = append(out, q)
	}
	if len(out) > 1 && out[0] != out[len(out)-1] {
		out = append(out, out[0])
	}
	return out
}

// orient makes the shell counter-clockwise and the holes clockwise.
func orient(p orb.Polygon) {
	for i, r := range p {
		want := orb.CCW
		if i > 0 {
			want = orb.CW
		}
		if r.Orientation() != want {
			r.Reverse()
		}
	}
}

// Orient applies RFC 7946 ring orientation to every polygon of mp.
func Orient(mp orb.MultiPolygon) {
	for _, p := range mp {
		orient(p)
	}
}

// Valid asks GEOS whether mp is a valid geometry by OGC rules.
func Valid(mp orb.MultiPolygon) (bool, error) {
	raw, err := wkb.Marshal(mp)
	if err != nil {
		return false, err
	}
	return geos.Valid(raw)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
