package service

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/openpcrs/pcrs-indexer/internal/jsonstream"
)

// The problems report (CSV, and its JSON twin for the delivery page) is
// one row per problem and per warning of report.json, read as a stream:
// a report lists up to a problem per tile, and memory must not follow it.

// reportEntry is one of report.json's problems or warnings, with the
// fields either may have.
type reportEntry struct {
	Path     string          `json:"path"`
	Reason   string          `json:"reason"`
	Kind     string          `json:"kind"`
	Detail   string          `json:"detail"`
	Other    string          `json:"other"`
	Expected string          `json:"expected"`
	Offset   json.RawMessage `json:"offset"`
	AreaM2   *float64        `json:"areaM2"`
	Ratio    *float64        `json:"ratio"`
	Counts   json.RawMessage `json:"counts"`
	Geometry *struct {
		Coordinates any `json:"coordinates"`
	} `json:"geometry"`
	// EPSG and Box place the entry in its tiles' CRS when the report says
	// so; otherwise the row reprojects its WGS84 geometry.
	EPSG int         `json:"epsg"`
	Box  *[4]float64 `json:"box"`
}

// offset is an off_grid warning's offset when it is two numbers.
func (e *reportEntry) offset() ([2]float64, bool) {
	var o []float64
	if json.Unmarshal(e.Offset, &o) != nil || len(o) != 2 {
		return [2]float64{}, false
	}
	return [2]float64{o[0], o[1]}, true
}

// missingName is a missing cell's expected name: the quality check puts
// it in path (with the folder); expected is accepted too.
func (e *reportEntry) missingName() string {
	if e.Expected != "" {
		return e.Expected
	}
	return e.Path
}

// reportVisitor decodes one entry of one of report.json's lists from dec
// (section is "problems" or "warnings"): it decodes what it needs, or
// skips the entry, and must consume exactly one value.
type reportVisitor func(section string, dec *json.Decoder) error

// walkReport reads report.json as a stream: each problem and warning to
// visit, one at a time, and the epsg counts to epsg when not nil.
func walkReport(r io.Reader, visit reportVisitor, epsg *map[string]int) error {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("report.json: not an object: %w", errOr(err, errors.New("unexpected value")))
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("report.json: %w", err)
		}
		switch key, _ := t.(string); {
		case (key == "problems" || key == "warnings") && visit != nil:
			err = walkList(dec, key, visit)
		case key == "epsg" && epsg != nil:
			if err = dec.Decode(epsg); err != nil {
				*epsg = nil
				err = skipTypeError(err)
			}
		default:
			err = jsonstream.Skip(dec)
		}
		if err != nil {
			return fmt.Errorf("report.json, %v: %w", t, err)
		}
	}
	return nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// skipTypeError lets a value of an unexpected type pass: the decoder has
// read past it.
func skipTypeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// walkList visits the entries of one list; null is an empty list.
func walkList(dec *json.Decoder, section string, visit reportVisitor) error {
	t, err := dec.Token()
	if err != nil || t == nil {
		return err
	}
	if t != json.Delim('[') {
		return fmt.Errorf("%s: not a list", section)
	}
	for dec.More() {
		if err := visit(section, dec); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// decodeEntry decodes the next entry: nil for one that is not an object
// (the page shows none either); fields of unexpected types stay empty.
func decodeEntry(dec *json.Decoder) (*reportEntry, error) {
	var e *reportEntry
	if err := dec.Decode(&e); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Field == "" {
			return nil, skipTypeError(err)
		}
	}
	return e, nil
}

// skipEntry reads past the next entry.
func skipEntry(dec *json.Decoder) error {
	var none struct{}
	return skipTypeError(dec.Decode(&none))
}

// eachEntry is a visitor calling visit with each entry that is an
// object.
func eachEntry(visit func(section string, e *reportEntry) error) reportVisitor {
	return func(section string, dec *json.Decoder) error {
		e, err := decodeEntry(dec)
		if err != nil || e == nil {
			return err
		}
		return visit(section, e)
	}
}

// points are a GeoJSON geometry's positions, flattened (x, y pairs), from
// any geometry type: its coordinates, decoded as they come.
func points(coordinates any) []float64 {
	var out []float64
	var walk func(v any)
	walk = func(v any) {
		arr, ok := v.([]any)
		if !ok {
			return
		}
		if len(arr) >= 2 {
			x, okx := arr[0].(float64)
			y, oky := arr[1].(float64)
			if okx && oky {
				out = append(out, x, y)
				return
			}
		}
		for _, c := range arr {
			walk(c)
		}
	}
	walk(coordinates)
	return out
}

// bounds is the box of flattened points.
func bounds(pts []float64) [4]float64 {
	b := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for i := 0; i+1 < len(pts); i += 2 {
		b[0], b[1] = min(b[0], pts[i]), min(b[1], pts[i+1])
		b[2], b[3] = max(b[2], pts[i]), max(b[3], pts[i+1])
	}
	return b
}

// epsgCode reads "EPSG:2154"; 0 for anything else.
func epsgCode(name string) int {
	v, err := strconv.Atoi(strings.TrimPrefix(name, "EPSG:"))
	if err != nil || !strings.HasPrefix(name, "EPSG:") || v <= 0 {
		return 0
	}
	return v
}

// row is one line of the problems report: a problem (a tile set aside)
// or a warning (a tile kept, or the delivery as a whole), placed where
// the report places it. Field names are the API's (English); Explanation
// is what the owner reads, in French.
type row struct {
	Type        string      `json:"type"` // "problem" or "warning"
	Code        string      `json:"code"` // the reason or the kind
	Path        string      `json:"path"` // the tile; for a missing one, its expected name
	Explanation string      `json:"explanation"`
	Detail      string      `json:"detail,omitempty"`
	Lon         *float64    `json:"lon,omitempty"` // the centre, WGS84
	Lat         *float64    `json:"lat,omitempty"`
	BBox        *[4]float64 `json:"bbox,omitempty"` // WGS84
	EPSG        int         `json:"epsg,omitempty"` // the tiles' CRS, when known
	X           *float64    `json:"x,omitempty"`    // the centre in EPSG
	Y           *float64    `json:"y,omitempty"`
	Box         *[4]float64 `json:"box,omitempty"` // in EPSG
	Neighbours  []neighbour `json:"neighbours,omitempty"`
	Degrees     bool        `json:"degrees,omitempty"` // EPSG is geographic: X, Y and Box are degrees
}

// maxMissingNames bounds the names of holes remembered to mark a
// neighbour as missing too (quality lists at most 10,000 a kind).
const maxMissingNames = 10_000

// rowMaker turns report entries into rows: it knows the report's CRS
// (when the tiles share one) and its holes' names.
type rowMaker struct {
	epsg    int // the tiles' only CRS; 0 when several or none
	missing map[string]bool
	proj    projections
}

// newRowMaker reads what rows need from the whole report first: its CRS
// (listed after the problems) and its holes.
func newRowMaker(r io.Reader) (*rowMaker, error) {
	m := &rowMaker{missing: map[string]bool{}, proj: projections{}}
	var crs map[string]int
	err := walkReport(r, func(section string, dec *json.Decoder) error {
		if section != "warnings" {
			return skipEntry(dec)
		}
		var w *struct{ Kind, Path, Expected string }
		if err := dec.Decode(&w); err != nil || w == nil {
			return skipTypeError(err)
		}
		if w.Kind == "missing" && len(m.missing) < maxMissingNames {
			m.missing[(&reportEntry{Path: w.Path, Expected: w.Expected}).missingName()] = true
		}
		return nil
	}, &crs)
	if len(crs) == 1 {
		for name := range crs {
			m.epsg = epsgCode(name)
		}
	}
	return m, err
}

func (m *rowMaker) Close() { m.proj.Close() }

func (m *rowMaker) row(section string, e *reportEntry) row {
	r := row{Type: "problem", Code: e.Reason, Path: e.Path, Detail: e.Detail}
	if section == "warnings" {
		r.Type, r.Code, r.Explanation = "warning", e.Kind, warningText(e)
		if e.Kind == "missing" {
			r.Path = e.missingName()
		}
	} else {
		r.Explanation = reasonText(e.Reason)
	}
	var pts []float64
	if e.Geometry != nil {
		pts = points(e.Geometry.Coordinates)
	}
	if len(pts) >= 2 {
		b := bounds(pts)
		lon, lat := roundTo((b[0]+b[2])/2, 7), roundTo((b[1]+b[3])/2, 7)
		r.Lon, r.Lat, r.BBox = &lon, &lat, &b
	}
	if projected := m.place(&r, e, pts); projected && r.Code == "missing" && r.Type == "warning" && r.Path != "" {
		r.Neighbours = neighbours(r.Path, *r.Box, m.missing)
	}
	return r
}

// place gives r its position in the tiles' CRS: the report's own box
// when it has one, else its WGS84 outline reprojected to the entry's CRS
// or, when the tiles share one, theirs; to the decimetre (the outline's
// coordinates are rounded to about a centimetre: a box comes back a
// centimetre off). It says whether r was placed in a projected CRS
// (metres: what tile names count in).
func (m *rowMaker) place(r *row, e *reportEntry, pts []float64) bool {
	code := cmp.Or(e.EPSG, m.epsg)
	if code == 0 {
		return false
	}
	t := m.proj.get(code)
	if t == nil {
		return false
	}
	var b [4]float64
	switch {
	case e.Box != nil:
		b = *e.Box
	case len(pts) >= 2:
		var ok bool
		if b, ok = t.box(pts); !ok {
			return false
		}
	default:
		return false
	}
	decimals := 1 // a decimetre: what the outline's rounding leaves sure
	if t.geographic {
		decimals = 7
	}
	x, y := roundTo((b[0]+b[2])/2, decimals), roundTo((b[1]+b[3])/2, decimals)
	for i := range b {
		b[i] = roundTo(b[i], decimals)
	}
	r.EPSG, r.X, r.Y, r.Box, r.Degrees = code, &x, &y, &b, t.geographic
	return !t.geographic
}

// eachRow reads a storage's report.json twice from one open file (a scan
// replacing it meanwhile changes nothing): once for what rows need, then
// each problem and warning as a row to visit.
func eachRow(f io.ReadSeeker, visit func(row) error) error {
	m, err := newRowMaker(f)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return walkReport(f, eachEntry(func(section string, e *reportEntry) error { return visit(m.row(section, e)) }), nil)
}
