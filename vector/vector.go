// Package vector writes the outputs in the encodings GDAL and QGIS open
// directly besides GeoJSON: FlatGeobuf (with its spatial index, written by
// vector/fgb and checked against GDAL's reader) and GeoPackage (through
// GDAL's own driver).
package vector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/airbusgeo/godal"
)

// Format is an output encoding.
type Format string

const (
	GeoJSON    Format = "geojson"
	FlatGeobuf Format = "fgb"
	GeoPackage Format = "gpkg"
)

// ErrFormat is an unknown --format value.
var ErrFormat = errors.New("unknown format (geojson, fgb, gpkg)")

// ParseFormats reads --format values, each once, in the order given.
func ParseFormats(values []string) ([]Format, error) {
	var out []Format
	seen := map[Format]bool{}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			f := Format(strings.ToLower(strings.TrimSpace(part)))
			switch f {
			case GeoJSON, FlatGeobuf, GeoPackage:
			default:
				return nil, fmt.Errorf("%w: %q", ErrFormat, part)
			}
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// Ext is the file extension of the format, with its dot.
func (f Format) Ext() string {
	if f == GeoJSON {
		return ".geojson"
	}
	return "." + string(f)
}

var drivers = map[Format]string{FlatGeobuf: "FlatGeobuf", GeoPackage: "GPKG"}

var registerOnce sync.Once

// Layer is one layer to write: a GeoJSON FeatureCollection file (ours,
// WGS84 lon/lat) and the layer's name.
type Layer struct {
	Source string
	Name   string
}

// Write encodes the layers into one dst file of format f, through a
// temporary file renamed over dst, so readers never see half a file. A
// FlatGeobuf file holds one layer, written by vector/fgb with its spatial
// index (sorted on disk: memory does not grow with the features); a
// GeoPackage holds them all, written by GDAL's driver feature by feature.
func Write(dst string, f Format, layers ...Layer) error {
	drv, ok := drivers[f]
	if !ok {
		return fmt.Errorf("%w: %q", ErrFormat, f)
	}
	if f == FlatGeobuf && len(layers) != 1 {
		return fmt.Errorf("a FlatGeobuf file holds one layer, not %d", len(layers))
	}
	if f == FlatGeobuf {
		// Written atomically by fgb itself, beside dst.
		if err := writeFlatGeobuf(context.Background(), dst, layers[0]); err != nil {
			return fmt.Errorf("writing %s layer %s: %w", dst, layers[0].Name, err)
		}
		return nil
	}
	registerOnce.Do(godal.RegisterAll)
	dir, name := filepath.Split(dst)
	tmp := filepath.Join(dir, "."+strings.TrimSuffix(name, f.Ext())+".tmp"+f.Ext())
	_ = os.Remove(tmp)
	for i, l := range layers {
		if err := translate(tmp, drv, l, i > 0); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s layer %s: %w", dst, l.Name, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func translate(dst, drv string, l Layer, appendLayer bool) error {
	src, err := godal.Open(l.Source, godal.VectorOnly(), godal.Drivers("GeoJSON"), quiet)
	if err != nil {
		return err
	}
	defer src.Close()
	switches := []string{"-f", drv, "-nln", l.Name, "-a_srs", "EPSG:4326", "-nlt", "PROMOTE_TO_MULTI"}
	if drv == "FlatGeobuf" {
		switches = append(switches, "-lco", "SPATIAL_INDEX=YES")
	}
	if drv == "GPKG" {
		// One transaction per 20,000 features: fast, and bounded.
		switches = append(switches, "-gt", "20000")
	}
	if appendLayer {
		switches = append(switches, "-update")
	}
	out, err := src.VectorTranslate(dst, switches, quiet)
	if err != nil {
		return err
	}
	return out.Close()
}

// quiet turns GDAL's failures into returned errors, never log lines.
var quiet = godal.ErrLogger(func(ec godal.ErrorCategory, _ int, msg string) error {
	if ec >= godal.CE_Failure {
		return errors.New(msg)
	}
	return nil
})
