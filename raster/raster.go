// Package raster reads PCRS tile headers (JPEG 2000 and GeoTIFF) through
// GDAL, with every byte coming from the storage's ranged reads through a
// virtual file system handler: the same code path for every backend, a few
// kilobytes per tile, never the whole file.
package raster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/airbusgeo/godal"
)

// Source is what tiles are read from: the storage's ranged reads.
type Source interface {
	ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error)
}

// File is a listed object: its key and the size the listing gave.
type File struct {
	Key  string
	Size int64
}

// Reasons a tile is set aside, for callers to branch on with errors.Is. A
// storage failure comes back unwrapped from these, as the storage's error.
var (
	ErrEmpty            = errors.New("empty")
	ErrCorrupt          = errors.New("corrupt")
	ErrNotGeoreferenced = errors.New("not georeferenced")
	ErrNoCRS            = errors.New("no CRS")
)

// Problem is a tile set aside: the reason (one of the Err values) and what
// GDAL or the header said.
type Problem struct {
	Reason error
	Detail string
	// Header is what the header said, when it could be read (a transfer
	// cut short): enough to place the tile on a map.
	Header *Header
}

func (p *Problem) Error() string { return p.Reason.Error() + ": " + p.Detail }
func (p *Problem) Unwrap() error { return p.Reason }

func problem(reason error, format string, args ...any) *Problem {
	return &Problem{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Band is one band's colour interpretation and data type, as GDAL names
// them ("Red", "Byte").
type Band struct {
	Color    string
	DataType string
}

// Header is what a tile's header says.
type Header struct {
	Driver        string // GDAL driver short name
	MimeType      string // image/jp2 or image/tiff
	Width, Height int
	Bands         []Band
	GeoTransform  [6]float64
	EPSG          int
	// Compression is LOSSY or LOSSLESS for JPEG 2000, GDAL's COMPRESSION
	// (JPEG, LZW, DEFLATE…) or NONE for GeoTIFF.
	Compression string
	// OpenDriver is true when an open-source driver read the tile.
	OpenDriver bool
}

// PixelSize is the absolute pixel height in CRS units.
func (h *Header) PixelSize() float64 { return math.Abs(h.GeoTransform[5]) }

// Corners are the tile's four corners in its CRS, in pixel order: top-left,
// top-right, bottom-right, bottom-left.
func (h *Header) Corners() [4][2]float64 {
	gt := h.GeoTransform
	at := func(px, py float64) [2]float64 {
		return [2]float64{gt[0] + px*gt[1] + py*gt[2], gt[3] + px*gt[4] + py*gt[5]}
	}
	w, ht := float64(h.Width), float64(h.Height)
	return [4][2]float64{at(0, 0), at(w, 0), at(w, ht), at(0, ht)}
}

// Box is the tile's footprint in its own CRS: minX, minY, maxX, maxY.
func (h *Header) Box() [4]float64 {
	c := h.Corners()
	xs := []float64{c[0][0], c[1][0], c[2][0], c[3][0]}
	ys := []float64{c[0][1], c[1][1], c[2][1], c[3][1]}
	return [4]float64{minOf(xs), minOf(ys), maxOf(xs), maxOf(ys)}
}

// NorthUp says whether the tile is an axis-aligned rectangle in its CRS.
func (h *Header) NorthUp() bool { return h.GeoTransform[2] == 0 && h.GeoTransform[4] == 0 }

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Max(m, x)
	}
	return m
}

// openSourceDrivers read tiles without proprietary SDKs.
var openSourceDrivers = map[string]bool{"GTiff": true, "JP2OpenJPEG": true, "JPEG2000": true}

var mimeTypes = map[string]string{"GTiff": "image/tiff", "JP2OpenJPEG": "image/jp2", "JPEG2000": "image/jp2", "JP2KAK": "image/jp2", "JP2ECW": "image/jp2"}

// gdalDrivers are the only drivers tried, so that a garbage file is not
// probed by a hundred drivers and a tile is never read as something else.
var gdalDrivers = []string{"GTiff", "JP2OpenJPEG"}

// Inspect reads obj's header from src. siblings are the objects listed in
// the same folder that GDAL may want (world files, .aux.xml, .ovr). GDAL
// first sees none of them, so a tile with its own georeferencing costs no
// read of its siblings; only a tile that lacks georeferencing or CRS is
// opened again with them. GDAL never probes the storage for files the
// listing did not show. A storage failure is returned as is; a bad tile as
// a *Problem.
func Inspect(ctx context.Context, src Source, obj File, siblings []File) (*Header, error) {
	if obj.Size == 0 {
		return nil, problem(ErrEmpty, "zero-byte object")
	}
	if err := register(); err != nil {
		return nil, fmt.Errorf("installing the GDAL handler: %w", err)
	}
	o, name, done := open(ctx, src, obj)
	defer done()
	h, err := inspect(o, name, obj, nil)
	if len(siblings) > 0 && (errors.Is(err, ErrNotGeoreferenced) || errors.Is(err, ErrNoCRS)) {
		o.addFiles(siblings)
		h, err = inspect(o, name, obj, siblings)
	}
	return h, err
}

// inspect opens the object once, seeing the given siblings.
func inspect(o *openObject, name string, obj File, siblings []File) (*Header, error) {
	opts := []godal.OpenOption{godal.RasterOnly(), godal.Drivers(gdalDrivers...), quiet}
	// The first block holds the header: fetch it now (GDAL would), and read
	// the georeferencing there when it is a PCRS CRS. A sibling (world
	// file, .aux.xml) may override the header's, so GDAL decides then.
	var fast georef
	head := make([]byte, 16)
	n, _ := o.file(obj.Key).readAt(o, head, 0)
	if serr := o.storageErr(); serr != nil {
		return nil, serr
	}
	if len(siblings) == 0 && !gdalOnly {
		if fileKind(head[:n]) == "jp2" {
			if h, ok := fastJP2(o, o.file(obj.Key)); ok {
				if err := checkJP2(o, o.file(obj.Key)); err != nil {
					return nil, withHeader(err, h)
				}
				return h, nil
			}
		}
		fast = fastGeoref(o, o.file(obj.Key), head[:n])
		if fast.gt != nil {
			opts = append(opts, godal.DriverOpenOption("GEOREF_SOURCES=NONE"))
		}
	}
	// Without the option godal tells GDAL there is no sibling at all; an
	// empty SiblingFiles() would instead let GDAL probe for them.
	if len(siblings) > 0 {
		sibNames := make([]string, 0, len(siblings))
		for _, s := range siblings {
			sibNames = append(sibNames, path.Base(s.Key))
		}
		opts = append(opts, godal.SiblingFiles(sibNames...))
	}
	ds, err := godal.Open(name, opts...)
	if serr := o.storageErr(); serr != nil {
		if ds != nil {
			_ = ds.Close()
		}
		return nil, serr
	}
	if err != nil {
		// GDAL names the virtual path; the owner knows the object's key.
		msg := strings.ReplaceAll(err.Error(), name, obj.Key)
		return nil, problem(ErrCorrupt, "%s", describeUnopenable(o, obj, msg))
	}
	defer ds.Close()

	h, perr := readHeader(ds, fast)
	if serr := o.storageErr(); serr != nil {
		return nil, serr
	}
	if perr != nil {
		return nil, perr
	}
	if err := checkComplete(o, obj, ds, h); err != nil {
		if serr := o.storageErr(); serr != nil {
			return nil, serr
		}
		return nil, withHeader(err, h)
	}
	return h, nil
}

// withHeader attaches the header read to a problem found after it.
func withHeader(err error, h *Header) error {
	var p *Problem
	if errors.As(err, &p) && h.EPSG != 0 {
		p.Header = h
	}
	return err
}

func readHeader(ds *godal.Dataset, fast georef) (*Header, *Problem) {
	drv := ds.Driver().ShortName()
	st := ds.Structure()
	h := &Header{
		Driver:     drv,
		MimeType:   mimeTypes[drv],
		Width:      st.SizeX,
		Height:     st.SizeY,
		OpenDriver: openSourceDrivers[drv],
	}
	if st.SizeX == 0 || st.SizeY == 0 || st.NBands == 0 {
		return nil, problem(ErrEmpty, "no pixels (%dx%d, %d bands)", st.SizeX, st.SizeY, st.NBands)
	}
	for _, b := range ds.Bands() {
		h.Bands = append(h.Bands, Band{Color: b.ColorInterp().Name(), DataType: b.Structure().DataType.String()})
	}
	h.Compression = compression(ds)

	var gt [6]float64
	var err error
	if fast.gt != nil {
		gt = *fast.gt
	} else {
		gt, err = ds.GeoTransform(quiet)
	}
	if err != nil || gt == [6]float64{0, 1, 0, 0, 0, 1} {
		return nil, problem(ErrNotGeoreferenced, "no geotransform: neither GeoTIFF tags, GMLJP2, GeoJP2 nor a world file place the tile")
	}
	if gt[1] == 0 || gt[5] == 0 && gt[4] == 0 {
		return nil, problem(ErrNotGeoreferenced, "degenerate geotransform %v", gt)
	}
	h.GeoTransform = gt
	if fast.epsg != 0 {
		h.EPSG = fast.epsg
		return h, nil
	}
	wkt := ds.Projection()
	if wkt == "" {
		return nil, problem(ErrNoCRS, "georeferenced but declares no coordinate reference system")
	}
	code, err := epsgOf(wkt)
	if err != nil {
		return nil, problem(ErrNoCRS, "%v", err)
	}
	h.EPSG = code
	return h, nil
}

func compression(ds *godal.Dataset) string {
	md := ds.Metadatas(godal.Domain("IMAGE_STRUCTURE"))
	if r := md["COMPRESSION_REVERSIBILITY"]; r != "" {
		// GDAL says "LOSSLESS (possibly)" for a reversible transform whose
		// layers may still have been truncated: reversible is what we report.
		if strings.HasPrefix(r, "LOSSLESS") {
			return "LOSSLESS"
		}
		return "LOSSY"
	}
	if c := md["COMPRESSION"]; c != "" {
		if c == "YCbCr JPEG" {
			return "JPEG"
		}
		return c
	}
	return "NONE"
}

// epsgOf identifies the CRS's EPSG code.
func epsgOf(wkt string) (int, error) {
	sr, err := godal.NewSpatialRefFromWKT(wkt)
	if err != nil {
		return 0, fmt.Errorf("unreadable CRS: %v", err)
	}
	defer sr.Close()
	if sr.AuthorityName("") != "EPSG" || sr.AuthorityCode("") == "" {
		_ = sr.AutoIdentifyEPSG()
	}
	if sr.AuthorityName("") == "EPSG" {
		if code, err := strconv.Atoi(sr.AuthorityCode("")); err == nil {
			return code, nil
		}
	}
	name, _ := sr.AttrValue("PROJCS", 0)
	if name == "" {
		name, _ = sr.AttrValue("GEOGCS", 0)
	}
	return 0, fmt.Errorf("CRS %q has no EPSG code", name)
}

// quiet turns GDAL's messages into returned errors without logging them.
var quiet = godal.ErrLogger(func(ec godal.ErrorCategory, _ int, msg string) error {
	if ec >= godal.CE_Failure {
		return errors.New(msg)
	}
	return nil
})

// describeUnopenable says why GDAL could not open the object, in words the
// owner of the delivery understands.
func describeUnopenable(o *openObject, obj File, gdalMsg string) string {
	head := make([]byte, 512)
	n, _ := o.file(obj.Key).readAt(o, head, 0)
	head = head[:n]
	trimmed := bytes.ToLower(bytes.TrimSpace(head))
	switch {
	case bytes.HasPrefix(trimmed, []byte("<!doctype html")) || bytes.HasPrefix(trimmed, []byte("<html")) || bytes.Contains(trimmed, []byte("<body")):
		return "an HTML page, not an image (an error page saved in place of the tile?)"
	case bytes.HasPrefix(trimmed, []byte("<?xml")) || bytes.HasPrefix(trimmed, []byte("<error")):
		return "an XML document, not an image (a storage error answer saved in place of the tile?)"
	}
	return "GDAL cannot open it: " + gdalMsg
}
