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
	Size int64 // SizeUnknown when the listing did not say
}

// SizeUnknown is the Size of a tile listed without an exact size (web
// servers whose listings round sizes). Inspect then learns it from its
// first read, which costs no extra request when src is a SizingSource.
const SizeUnknown = -1

// SizingSource is a Source whose ranged reads also tell the object's total
// size (HTTP's Content-Range), or SizeUnknown when the answer did not.
type SizingSource interface {
	ReadAtSize(ctx context.Context, key string, p []byte, off int64) (n int, size int64, err error)
}

// Reasons a tile is set aside, for callers to branch on with errors.Is. A
// storage failure comes back unwrapped from these, as the storage's error.
var (
	ErrEmpty            = errors.New("empty")
	ErrCorrupt          = errors.New("corrupt")
	ErrNotGeoreferenced = errors.New("not georeferenced")
	ErrNoCRS            = errors.New("no CRS")
	// ErrMisplaced is a tile whose georeferencing cannot place it: a
	// non-finite, degenerate or absurd geotransform.
	ErrMisplaced = errors.New("misplaced")
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
	// Size is the object's size in bytes, learned from the first read
	// when the listing did not give it (0 when the listing did).
	Size int64 `json:",omitempty"`
}

// PixelSize is the pixel height in CRS units: the length of the step one
// row down, so that a rotated or transposed tile has its real resolution.
func (h *Header) PixelSize() float64 { return math.Hypot(h.GeoTransform[2], h.GeoTransform[5]) }

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
// the same folder (world files, .aux.xml…): GDAL sees them exactly as it
// would beside the file on disk, and they cost a request only when GDAL
// reads them. The Go header readers answer alone unless a sibling could
// change GDAL's answer. A storage failure or the end of ctx is returned as
// is; a bad tile as a *Problem.
func Inspect(ctx context.Context, src Source, obj File, siblings []File) (h *Header, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if obj.Size == 0 {
		return nil, problem(ErrEmpty, "zero-byte object")
	}
	if err := register(); err != nil {
		return nil, fmt.Errorf("installing the GDAL handler: %w", err)
	}
	o, name, done := open(ctx, src, obj)
	// A panic (a defect in a header reader) goes to the caller, which
	// makes it the tile's problem; done still unregisters the object.
	defer done()
	learned := obj.Size < 0
	if learned {
		if err := o.file(obj.Key).ensureSize(o); err != nil {
			return nil, err
		}
		if obj.Size = o.file(obj.Key).size; obj.Size == 0 {
			return nil, problem(ErrEmpty, "zero-byte object")
		}
	}
	sibs := sameFolder(obj, siblings)
	o.addFiles(sibs)
	h, err = inspect(o, name, obj, sibs)
	if h != nil && learned {
		h.Size = obj.Size
	}
	return h, err
}

// headerReader is what the Go parsers of a format (scanTIFF, scanJP2) found.
type headerReader interface {
	incompleteProblem() *Problem
	header() (*Header, bool)
}

// inspect reads the header with the Go parser of the format, then, unless
// its answer is certain and no sibling can override it, with GDAL.
func inspect(o *openObject, name string, obj File, siblings []File) (*Header, error) {
	f := o.file(obj.Key)
	// The first block holds the header: fetch it now (GDAL would).
	head := make([]byte, 16)
	n, _ := f.readAt(o, head, 0)
	if serr := o.storageErr(); serr != nil {
		return nil, serr
	}
	var scan headerReader
	switch fileKind(head[:n]) {
	case "jp2":
		info, err := scanJP2(o, f)
		if err != nil {
			return nil, err
		}
		scan = info
	case "tiff":
		info, err := scanTIFF(o, f)
		if err != nil {
			return nil, err
		}
		scan = info
	}
	if serr := o.storageErr(); serr != nil {
		return nil, serr
	}
	if scan != nil && !overridable(obj, siblings) {
		if h, ok := scan.header(); ok && h.EPSG != 0 && h.GeoTransform != noGeoTransform {
			return judged(h, scan.incompleteProblem())
		}
	}
	h, err := readWithGDAL(o, name, obj, siblings)
	if err != nil {
		return nil, err
	}
	if scan != nil {
		return judged(h, scan.incompleteProblem())
	}
	return h, nil
}

// judged applies to a header read the checks every tile passes, then
// returns the cut transfer found while reading it, if any.
func judged(h *Header, incomplete *Problem) (*Header, error) {
	if h.Compression == "YCbCr JPEG" {
		h.Compression = "JPEG" // JPEG's colour transform is not another codec
	}
	if p := judge(h); p != nil {
		return nil, p
	}
	if incomplete != nil {
		return nil, withHeader(incomplete, h)
	}
	return h, nil
}

// readWithGDAL opens the object with GDAL, seeing the given siblings.
func readWithGDAL(o *openObject, name string, obj File, siblings []File) (*Header, error) {
	opts := []godal.OpenOption{godal.RasterOnly(), godal.Drivers(gdalDrivers...), quiet}
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
			_ = ds.Close(quiet)
		}
		return nil, serr
	}
	if err != nil {
		// GDAL names the virtual path; the owner knows the object's key.
		msg := strings.ReplaceAll(err.Error(), name, obj.Key)
		return nil, problem(ErrCorrupt, "%s", describeUnopenable(o, obj, msg))
	}
	defer ds.Close(quiet)

	h, perr := readHeader(ds)
	if serr := o.storageErr(); serr != nil {
		return nil, serr
	}
	if perr != nil {
		return nil, perr
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

// readHeader reads what GDAL says. Only calls whose results GDAL owns for
// the dataset's life, static names, or numbers are used: a string GDAL
// formats into a per-thread buffer could be overwritten by another
// goroutine's call before it is copied.
func readHeader(ds *godal.Dataset) (*Header, *Problem) {
	drv := ds.Driver().ShortName()
	st := ds.Structure()
	h := &Header{
		Driver:     drv,
		MimeType:   mimeTypes[drv],
		Width:      st.SizeX,
		Height:     st.SizeY,
		OpenDriver: openSourceDrivers[drv],
	}
	if p := checkSize(st.SizeX, st.SizeY, st.NBands); p != nil {
		return nil, p
	}
	for _, b := range ds.Bands() {
		h.Bands = append(h.Bands, Band{Color: b.ColorInterp().Name(), DataType: b.Structure().DataType.String()})
	}
	h.Compression = compression(ds, drv)

	gt, err := ds.GeoTransform(quiet)
	if err != nil || gt == noGeoTransform {
		return nil, problem(ErrNotGeoreferenced, "no geotransform: neither GeoTIFF tags, GMLJP2, GeoJP2, an .aux.xml nor a world file place the tile")
	}
	h.GeoTransform = gt
	if p := checkPlacement(h); p != nil {
		return nil, p
	}
	wkt := ds.Projection()
	if wkt == "" {
		return nil, problem(ErrNoCRS, "georeferenced but declares no coordinate reference system")
	}
	code, readable := identifyEPSG(wkt)
	switch {
	case !readable:
		return nil, problem(ErrNoCRS, "unreadable CRS %q", crsName(wkt))
	case code == 0:
		return nil, problem(ErrNoCRS, "CRS %q has no EPSG code", crsName(wkt))
	}
	h.EPSG = code
	return h, nil
}

// compression is GDAL's name for the tile's coding: for JPEG 2000, whether
// the wavelet is reversible; for GeoTIFF, the COMPRESSION metadata item.
func compression(ds *godal.Dataset, driver string) string {
	md := ds.Metadatas(godal.Domain("IMAGE_STRUCTURE"))
	if driver != "GTiff" {
		// GDAL says "LOSSLESS (possibly)" for a reversible transform whose
		// layers may still have been truncated: reversible is what we report.
		if r := md["COMPRESSION_REVERSIBILITY"]; r != "" {
			if strings.HasPrefix(r, "LOSSLESS") {
				return "LOSSLESS"
			}
			return "LOSSY"
		}
	}
	if c := md["COMPRESSION"]; c != "" {
		return c
	}
	return "NONE"
}

// crsName is the name a WKT gives its CRS, for messages.
func crsName(wkt string) string {
	_, rest, ok := strings.Cut(wkt, "[\"")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "\"")
	return name
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
