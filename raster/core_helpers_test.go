package raster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/airbusgeo/godal"
)

// coreMemSource serves files from memory and counts the storage reads.
type coreMemSource struct {
	files map[string][]byte
	reads atomic.Int64
}

func (m *coreMemSource) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	m.reads.Add(1)
	b, ok := m.files[key]
	if !ok {
		return 0, os.ErrNotExist
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// coreCountingDir serves a folder and counts reads per key.
type coreCountingDir struct {
	dir   string
	reads atomic.Int64
}

func (d *coreCountingDir) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	d.reads.Add(1)
	return osSource{d.dir}.ReadAt(ctx, key, p, off)
}

func coreListed(t *testing.T, dir string, keys ...string) []File {
	t.Helper()
	var files []File
	for _, k := range keys {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Key: k, Size: fi.Size()})
	}
	return files
}

// coreWriteRaster writes a 3-band 64 x 64 tile with GDAL: gt nil writes no
// geotransform, an empty wkt no CRS.
func coreWriteRaster(t *testing.T, path, driver string, gt *[6]float64, wkt string, creation ...string) {
	t.Helper()
	if err := register(); err != nil {
		t.Fatal(err)
	}
	mem, err := godal.Create(godal.Memory, "", 3, godal.Byte, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for i, b := range mem.Bands() {
		buf := make([]byte, 64*64)
		for j := range buf {
			buf[j] = byte(j*(i+1) + j/64)
		}
		if err := b.Write(0, 0, buf, 64, 64); err != nil {
			t.Fatal(err)
		}
		if err := b.SetColorInterp([]godal.ColorInterp{godal.CIRed, godal.CIGreen, godal.CIBlue}[i]); err != nil {
			t.Fatal(err)
		}
	}
	if gt != nil {
		if err := mem.SetGeoTransform(*gt); err != nil {
			t.Fatal(err)
		}
	}
	if wkt != "" {
		if err := mem.SetProjection(wkt); err != nil {
			t.Fatal(err)
		}
	}
	opts := []godal.DatasetTranslateOption{godal.DriverName(godal.DriverName(driver)), godal.ConfigOption("GDAL_PAM_ENABLED=NO")}
	if len(creation) > 0 {
		opts = append(opts, godal.CreationOption(creation...))
	}
	out, err := mem.Translate(path, nil, opts...)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func coreEPSGWKT(t *testing.T, code int) string {
	t.Helper()
	sr, err := godal.NewSpatialRefFromEPSG(code)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	wkt, err := sr.WKT()
	if err != nil {
		t.Fatal(err)
	}
	return wkt
}

// coreESRILambert93 is Lambert-93 as ArcGIS writes it: no EPSG authority.
const coreESRILambert93 = `PROJCS["RGF_1993_Lambert_93",GEOGCS["GCS_RGF_1993",DATUM["D_RGF_1993",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",700000.0],PARAMETER["False_Northing",6600000.0],PARAMETER["Central_Meridian",3.0],PARAMETER["Standard_Parallel_1",49.0],PARAMETER["Standard_Parallel_2",44.0],PARAMETER["Latitude_Of_Origin",46.5],UNIT["Meter",1.0]]`

// corePlainGDAL is plain GDAL's answer for the file at path opened in place:
// no options but the drivers, its siblings on disk visible (withSiblings)
// or none.
func corePlainGDAL(t *testing.T, path string, withSiblings bool) (*Header, error) {
	t.Helper()
	if err := register(); err != nil {
		t.Fatal(err)
	}
	opts := []godal.OpenOption{godal.RasterOnly(), godal.Drivers(gdalDrivers...), quiet}
	if withSiblings {
		opts = append(opts, godal.SiblingFiles())
	}
	ds, err := godal.Open(path, opts...)
	if err != nil {
		return nil, problem(ErrCorrupt, "GDAL cannot open it: %v", err)
	}
	defer ds.Close()
	h, p := readHeader(ds)
	if p != nil {
		return nil, p
	}
	return judged(h, nil)
}

// coreSameAnswer fails unless both readers gave the same header, or problems
// with the same reason.
func coreSameAnswer(t *testing.T, got *Header, gerr error, want *Header, werr error) {
	t.Helper()
	var wp *Problem
	switch {
	case werr != nil && errors.As(werr, &wp):
		if !errors.Is(gerr, wp.Reason) {
			t.Fatalf("got %v, %v; plain GDAL: %v", got, gerr, werr)
		}
	case werr != nil:
		t.Fatalf("plain GDAL: %v", werr)
	case gerr != nil:
		t.Fatalf("got %v; plain GDAL: %+v", gerr, want)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("header %+v\nplain GDAL %+v", got, want)
	}
}
