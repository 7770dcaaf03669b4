package vector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/openpcrs/pcrs-indexer/vector/fgb"
)

// writeFlatGeobuf streams one of our GeoJSON FeatureCollections into a
// FlatGeobuf file with its spatial index through vector/fgb, whose memory
// does not grow with the features (GDAL's driver keeps every feature's
// index entry and more: 257 MiB at 1,000,000 tiles). Two passes over the
// GeoJSON: one to learn each property's type, as GDAL's reader does, one
// to write. Features without a geometry are left out: FlatGeobuf as GDAL
// reads it cannot hold them.
func writeFlatGeobuf(ctx context.Context, dst string, l Layer) error {
	cols, err := learnColumns(l.Source)
	if err != nil {
		return err
	}
	schema := fgb.Schema{Name: l.Name, GeometryType: fgb.MultiPolygon, EPSG: 4326}
	for _, c := range cols.order {
		schema.Columns = append(schema.Columns, fgb.Column{Name: c, Type: cols.types[c].columnType(), Nullable: true})
	}
	w, err := fgb.Create(ctx, dst, schema)
	if err != nil {
		return err
	}
	err = eachFeature(l.Source, func(f feature) error {
		if f.geometry == nil {
			return nil
		}
		values := make([]fgb.Value, len(cols.order))
		for i, c := range cols.order {
			values[i] = cols.types[c].value(f.props[c])
		}
		return w.Write(fgb.Feature{Geometry: *f.geometry, Values: values})
	})
	if err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// feature is one GeoJSON feature, its properties raw.
type feature struct {
	geometry *fgb.Geometry
	props    map[string]json.RawMessage
	keys     []string // in the order the feature gives them
}

// maxFeatureBytes bounds one feature of our own outputs.
const maxFeatureBytes = 64 << 20

// eachFeature reads a FeatureCollection one feature at a time.
func eachFeature(path string, fn func(feature) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	if err := seekFeatures(dec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for dec.More() {
		var raw struct {
			Geometry   json.RawMessage `json:"geometry"`
			Properties json.RawMessage `json:"properties"`
		}
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(raw.Geometry)+len(raw.Properties) > maxFeatureBytes {
			return fmt.Errorf("%s: a feature of more than %d bytes", path, maxFeatureBytes)
		}
		feat, err := parseFeature(raw.Geometry, raw.Properties)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(feat); err != nil {
			return err
		}
	}
	return nil
}

// seekFeatures moves dec to the first element of "features".
func seekFeatures(dec *json.Decoder) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not a GeoJSON object (%v)", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t == "features" {
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return fmt.Errorf("features is not an array (%v)", err)
			}
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return io.ErrUnexpectedEOF
}

func parseFeature(geom, props json.RawMessage) (feature, error) {
	f := feature{props: map[string]json.RawMessage{}}
	if len(props) > 0 && !bytes.Equal(props, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(props))
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return f, fmt.Errorf("properties are not an object (%v)", err)
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return f, err
			}
			key, _ := t.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return f, err
			}
			f.props[key] = v
			f.keys = append(f.keys, key)
		}
	}
	if len(geom) == 0 || bytes.Equal(geom, []byte("null")) {
		return f, nil
	}
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(geom, &g); err != nil {
		return f, err
	}
	var polygons [][]fgb.Ring
	switch g.Type {
	case "Polygon":
		var p []fgb.Ring
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			return f, err
		}
		polygons = [][]fgb.Ring{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Coordinates, &polygons); err != nil {
			return f, err
		}
	default:
		return f, fmt.Errorf("a %s geometry where polygons are expected", g.Type)
	}
	mg := fgb.MultiPolygonGeometry(polygons...)
	f.geometry = &mg
	return f, nil
}

// kinds seen for one property across the features.
type kinds struct{ str, num, real, boolean bool }

// columns are the properties, in the order first met, with their kinds.
type columns struct {
	order []string
	types map[string]*kinds
}

// maxColumns bounds the properties learned from one file.
const maxColumns = 1024

func learnColumns(path string) (columns, error) {
	c := columns{types: map[string]*kinds{}}
	err := eachFeature(path, func(f feature) error {
		for _, k := range f.keys {
			kd := c.types[k]
			if kd == nil {
				if len(c.order) >= maxColumns {
					return fmt.Errorf("%s: more than %d properties", path, maxColumns)
				}
				kd = &kinds{}
				c.types[k] = kd
				c.order = append(c.order, k)
			}
			kd.see(f.props[k])
		}
		return nil
	})
	return c, err
}

func (k *kinds) see(v json.RawMessage) {
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
	case bytes.Equal(v, []byte("true")) || bytes.Equal(v, []byte("false")):
		k.boolean = true
	case v[0] == '"' || v[0] == '[' || v[0] == '{':
		k.str = true
	default:
		k.num = true
		if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
			k.real = true
			k.str = k.str || !isFloat(v)
		}
	}
}

func isFloat(v json.RawMessage) bool {
	_, err := strconv.ParseFloat(string(v), 64)
	return err == nil
}

// columnType: text wins over everything, then reals over integers; a
// property only ever null is text, as GDAL makes it.
func (k *kinds) columnType() fgb.ColumnType {
	switch {
	case k.str || (k.boolean && k.num):
		return fgb.ColString
	case k.num && !k.real:
		return fgb.ColLong
	case k.num:
		return fgb.ColDouble
	case k.boolean:
		return fgb.ColBool
	}
	return fgb.ColString
}

func (k *kinds) value(v json.RawMessage) fgb.Value {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return fgb.Null()
	}
	switch k.columnType() {
	case fgb.ColLong:
		n, _ := strconv.ParseInt(string(v), 10, 64)
		return fgb.Long(n)
	case fgb.ColDouble:
		x, _ := strconv.ParseFloat(string(v), 64)
		return fgb.Double(x)
	case fgb.ColBool:
		return fgb.Bool(bytes.Equal(v, []byte("true")))
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return fgb.String(s)
		}
	}
	return fgb.String(string(v)) // arrays, objects, numbers among text: as JSON
}
