// Package corpus writes the tiles that check the raster reader against
// GDAL: a differential corpus covering every way a tile can be
// georeferenced (written by GDAL's own drivers, hand-edited, or assembled
// here without GDAL), and hostile headers crafted to exhaust a reader.
// Nothing binary is committed: every file is generated into a folder the
// caller gives.
package corpus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/airbusgeo/godal"
)

// Outcomes of a scan for one tile: "readable", or a report.json reason.
const (
	Readable         = "readable"
	Corrupt          = "corrupt"
	Empty            = "empty"
	Misplaced        = "misplaced"
	NotGeoreferenced = "not_georeferenced"
	NoCRS            = "no_crs"
)

// AnyProblem is the outcome class of a tile that must be set aside, for
// whatever reason.
var AnyProblem = []string{Corrupt, Empty, Misplaced, NotGeoreferenced, NoCRS}

// Writers of a case's tile.
const (
	WriterGDAL     = "gdal"      // GDAL's driver, untouched
	WriterGDALEdit = "gdal+edit" // GDAL's driver, then bytes edited here
	WriterGo       = "go"        // assembled here, no GDAL writer involved
	WriterRaw      = "raw"       // crafted bytes
)

// Case is one generated tile.
type Case struct {
	Name string
	// Path is the tile; empty when GDAL could not write it (Unwritable).
	Path string
	// Siblings are the files written beside the tile sharing its stem
	// (world file, .prj, .aux.xml).
	Siblings []string
	// Note says what the case covers.
	Note   string
	Writer string
	// Driver and Creation are the GDAL driver and creation options a
	// GDAL-written case used.
	Driver   string
	Creation []string
	// Unwritable says why this GDAL build could not write the case (a codec
	// it lacks): recorded, not dropped.
	Unwritable string
	// Want lists the outcomes accepted for a hostile tile: Readable and/or
	// report reasons. Empty for the differential corpus, whose truth is GDAL.
	Want []string
	// Slow marks the hostile tiles that cost a reader most.
	Slow bool
}

var registerOnce sync.Once

func register() { registerOnce.Do(godal.RegisterAll) }

// tileSpec describes a tile written through GDAL: an in-memory dataset
// translated by a driver with creation options.
type tileSpec struct {
	driver        string // GTiff or JP2OpenJPEG
	width, height int
	bands         int
	dataType      godal.DataType
	alpha         bool       // last band is alpha
	gt            [6]float64 // zero value: no geotransform
	srs           string     // any GDAL user input (EPSG:n, PROJ, WKT); "" none
	creation      []string
	metadata      map[string]string
}

func l93(x, y, pixel float64) [6]float64 { return [6]float64{x, pixel, 0, y, 0, -pixel} }

// defaultRaster is a 64 x 64 px RGB tile, 0.5 m pixels, in Lambert-93.
func defaultRaster(driver string) tileSpec {
	return tileSpec{driver: driver, width: 64, height: 64, bands: 3, dataType: godal.Byte,
		gt: l93(700000, 6600032, 0.5), srs: "EPSG:2154"}
}

// failuresOnly makes GDAL's failures errors and lets its warnings pass.
var failuresOnly = godal.ErrLogger(func(ec godal.ErrorCategory, _ int, msg string) error {
	if ec >= godal.CE_Failure {
		return errors.New(msg)
	}
	return nil
})

// errNoCodec is returned when GDAL lacks the codec a creation option asks.
var errNoCodec = errors.New("codec missing from this GDAL build")

func (r tileSpec) write(path string) error {
	register()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	mem, err := godal.Create(godal.Memory, "", r.bands, r.dataType, r.width, r.height)
	if err != nil {
		return err
	}
	defer mem.Close()
	for i, b := range mem.Bands() {
		if err := b.Write(0, 0, pixels(r, i), r.width, r.height); err != nil {
			return err
		}
		if err := b.SetColorInterp(colorOf(r, i)); err != nil {
			return err
		}
	}
	if r.gt != ([6]float64{}) {
		if err := mem.SetGeoTransform(r.gt); err != nil {
			return err
		}
	}
	if r.srs != "" {
		sr, err := godal.NewSpatialRef(r.srs)
		if err != nil {
			return fmt.Errorf("CRS %q: %w", r.srs, err)
		}
		defer sr.Close()
		if err := mem.SetSpatialRef(sr); err != nil {
			return err
		}
	}
	for k, v := range r.metadata {
		if err := mem.SetMetadata(k, v); err != nil {
			return err
		}
	}
	opts := []godal.DatasetTranslateOption{godal.DriverName(godal.DriverName(r.driver)), godal.ConfigOption("GDAL_PAM_ENABLED=NO"), failuresOnly}
	if len(r.creation) > 0 {
		opts = append(opts, godal.CreationOption(r.creation...))
	}
	out, err := mem.Translate(path, nil, opts...)
	if err != nil {
		if codec := missingCodec(r.driver, r.creation); codec != "" {
			_ = os.Remove(path)
			return fmt.Errorf("%w: %s %s (%v)", errNoCodec, r.driver, codec, err)
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return out.Close()
}

// missingCodec names the COMPRESS value the driver does not offer.
func missingCodec(driver string, creation []string) string {
	for _, c := range creation {
		if v, ok := strings.CutPrefix(c, "COMPRESS="); ok && !DriverOffers(driver, "COMPRESS", v) {
			return v
		}
	}
	return ""
}

// DriverOffers says whether the driver's creation option list offers value
// for option: how GDAL tells which codecs it was built with.
func DriverOffers(driver, option, value string) bool {
	register()
	drv, ok := godal.RasterDriver(godal.DriverName(driver))
	if !ok {
		return false
	}
	list := drv.Metadata("DMD_CREATIONOPTIONLIST")
	i := strings.Index(list, "name='"+option+"'")
	if i < 0 {
		return false
	}
	rest := list[i:]
	if j := strings.Index(rest, "</Option>"); j >= 0 {
		rest = rest[:j]
	}
	return strings.Contains(rest, "<Value>"+value+"</Value>")
}

func colorOf(r tileSpec, band int) godal.ColorInterp {
	switch {
	case r.alpha && band == r.bands-1:
		return godal.CIAlpha
	case r.bands < 3:
		return godal.CIGray
	case band < 3:
		return []godal.ColorInterp{godal.CIRed, godal.CIGreen, godal.CIBlue}[band]
	}
	return godal.CIUndefined
}

// pixels is a smooth pattern, varying per band, that every codec compresses.
func pixels(r tileSpec, band int) any {
	n := r.width * r.height
	if r.dataType == godal.UInt16 {
		buf := make([]uint16, n)
		for i := range buf {
			buf[i] = uint16((i%r.width*7 + i/r.width*3 + band*500) % 4096)
		}
		return buf
	}
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i%r.width*2 + i/r.width + band*40)
	}
	return buf
}

// writeText writes a sibling file.
func writeText(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}

// worldFile is the six-line world file of gt: GDAL's centre-of-pixel form.
func worldFile(gt [6]float64) string {
	return fmt.Sprintf("%.10f\n%.10f\n%.10f\n%.10f\n%.10f\n%.10f\n",
		gt[1], gt[4], gt[2], gt[5], gt[0]+gt[1]/2+gt[2]/2, gt[3]+gt[4]/2+gt[5]/2)
}

// auxXML is a PAM sidecar; srs or gt may be empty.
func auxXML(srs string, gt *[6]float64) string {
	var b strings.Builder
	b.WriteString("<PAMDataset>\n")
	if srs != "" {
		fmt.Fprintf(&b, "  <SRS>%s</SRS>\n", xmlEscape(srs))
	}
	if gt != nil {
		fmt.Fprintf(&b, "  <GeoTransform>%.16e, %.16e, %.16e, %.16e, %.16e, %.16e</GeoTransform>\n", gt[0], gt[1], gt[2], gt[3], gt[4], gt[5])
	}
	b.WriteString("</PAMDataset>\n")
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// esriL93 is Lambert-93 as ESRI software writes it in .prj and .aux.xml:
// no authority, ESRI names.
const esriL93 = `PROJCS["RGF_1993_Lambert_93",GEOGCS["GCS_RGF_1993",DATUM["D_RGF_1993",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",700000.0],PARAMETER["False_Northing",6600000.0],PARAMETER["Central_Meridian",3.0],PARAMETER["Standard_Parallel_1",49.0],PARAMETER["Standard_Parallel_2",44.0],PARAMETER["Latitude_Of_Origin",46.5],UNIT["Meter",1.0]]`

// wktOf is the CRS's WKT as GDAL exports it.
func wktOf(srs string) (string, error) {
	register()
	sr, err := godal.NewSpatialRef(srs)
	if err != nil {
		return "", err
	}
	defer sr.Close()
	return sr.WKT()
}
