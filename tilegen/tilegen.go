// Package tilegen writes PCRS-like tiles with GDAL, healthy and broken, so
// that tests and the demo build their fixtures instead of committing binary
// tiles.
package tilegen

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/airbusgeo/godal"
)

var registerOnce sync.Once

func register() { registerOnce.Do(godal.RegisterAll) }

// Tile describes one tile to write.
type Tile struct {
	// Driver is "GTiff" or "JP2OpenJPEG".
	Driver        string
	Width, Height int
	Bands         int
	DataType      godal.DataType
	// EPSG is the CRS code; 0 writes no CRS.
	EPSG int
	// NoGeoTransform writes no georeferencing at all.
	NoGeoTransform bool
	// X, Y is the upper-left corner, Pixel the pixel size, in CRS units.
	X, Y, Pixel float64
	// Rotation, in CRS units per pixel, makes a rotated geotransform.
	Rotation float64
	// Creation holds GDAL creation options (COMPRESS=LZW, TILED=YES…).
	Creation []string
	// Texture is "" (smooth waves), "noise" (detail like real imagery,
	// which JPEG cannot shrink much) or "uniform" (a blank tile, which
	// compresses to almost nothing). Byte data only.
	Texture string
}

// Defaults fills what t leaves empty: a 400 x 400 px, 3-band Byte GeoTIFF at
// 50 cm in Lambert-93, 200 m wide.
func (t Tile) withDefaults() Tile {
	if t.Driver == "" {
		t.Driver = "GTiff"
	}
	if t.Width == 0 {
		t.Width = 400
	}
	if t.Height == 0 {
		t.Height = t.Width
	}
	if t.Bands == 0 {
		t.Bands = 3
	}
	if t.DataType == godal.Unknown {
		t.DataType = godal.Byte
	}
	if t.Pixel == 0 {
		t.Pixel = 200.0 / float64(t.Width)
	}
	if t.X == 0 && t.Y == 0 {
		t.X, t.Y = 700000, 6600200
	}
	return t
}

// Write writes the tile at path, creating its folder.
func (t Tile) Write(path string) error {
	register()
	t = t.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	mem, err := godal.Create(godal.Memory, "", t.Bands, t.DataType, t.Width, t.Height)
	if err != nil {
		return err
	}
	defer mem.Close()
	colors := colorInterps[t.Bands]
	for i, b := range mem.Bands() {
		if err := b.Write(0, 0, pattern(t, i), t.Width, t.Height); err != nil {
			return err
		}
		if i < len(colors) {
			if err := b.SetColorInterp(colors[i]); err != nil {
				return err
			}
		}
	}
	if !t.NoGeoTransform {
		gt := [6]float64{t.X, t.Pixel, t.Rotation, t.Y, t.Rotation, -t.Pixel}
		if err := mem.SetGeoTransform(gt); err != nil {
			return err
		}
	}
	if t.EPSG != 0 {
		sr, err := godal.NewSpatialRefFromEPSG(t.EPSG)
		if err != nil {
			return err
		}
		defer sr.Close()
		if err := mem.SetSpatialRef(sr); err != nil {
			return err
		}
	}
	opts := []godal.DatasetTranslateOption{godal.DriverName(t.Driver), godal.ConfigOption("GDAL_PAM_ENABLED=NO")}
	if len(t.Creation) > 0 {
		opts = append(opts, godal.CreationOption(t.Creation...))
	}
	out, err := mem.Translate(path, nil, opts...)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return out.Close()
}

// colorInterps are what aerial imagery carries: grey, RGB, RGB + infrared.
var colorInterps = map[int][]godal.ColorInterp{
	1: {godal.CIGray},
	3: {godal.CIRed, godal.CIGreen, godal.CIBlue},
	4: {godal.CIRed, godal.CIGreen, godal.CIBlue, godal.CIUndefined},
}

// pattern is smooth enough for JPEG and JPEG 2000 to compress, and varies
// per band so that colour handling shows.
func pattern(t Tile, band int) any {
	n := t.Width * t.Height
	switch t.DataType {
	case godal.UInt16:
		buf := make([]uint16, n)
		for i := range buf {
			x, y := i%t.Width, i/t.Width
			buf[i] = uint16((x*7 + y*3 + band*1000) % 4096)
		}
		return buf
	default:
		buf := make([]byte, n)
		for i := range buf {
			x, y := i%t.Width, i/t.Width
			switch t.Texture {
			case "uniform":
				buf[i] = 200
			case "noise":
				// A fixed hash of the pixel: the same tile every run.
				h := uint32(i)*2654435761 ^ uint32(band)*40503
				buf[i] = byte(h >> 24)
			default:
				buf[i] = byte(128 + 100*math.Sin(float64(x+band*40)/37)*math.Cos(float64(y)/53))
			}
		}
		return buf
	}
}

// Truncate cuts the file at path to keep bytes, as an interrupted upload
// leaves it.
func Truncate(path string, keep int64) error {
	return os.Truncate(path, keep)
}

// WriteFile writes raw content, creating the folder: for garbage, HTML error
// pages and zero-byte tiles.
func WriteFile(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, content, 0o644)
}

// HTMLErrorPage is what a web server answers instead of the tile when a
// download script does not check the status code.
const HTMLErrorPage = `<!DOCTYPE html>
<html><head><title>404 Not Found</title></head>
<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>
`
