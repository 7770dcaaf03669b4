package corpus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/raster"
)

// dirSource serves a folder's files as the storage would.
type dirSource struct{ root string }

func (s dirSource) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(key)))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}

// truth is plain GDAL's reading of a tile, in the Header's terms.
type truth struct {
	driver, mime  string
	width, height int
	bands         []raster.Band
	compression   string
	gt            *[6]float64
	wkt           string
	epsg          int
}

var mimeOf = map[string]string{"GTiff": "image/tiff", "JP2OpenJPEG": "image/jp2"}

// gdalTruth opens the file as plain GDAL does: every driver, no option,
// GDAL free to look for the files beside it.
func gdalTruth(path string) (*truth, error) {
	register()
	ds, err := godal.Open(path, godal.SiblingFiles(), godal.ErrLogger(func(ec godal.ErrorCategory, _ int, msg string) error {
		if ec >= godal.CE_Failure {
			return errors.New(msg)
		}
		return nil
	}))
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	st := ds.Structure()
	t := &truth{driver: ds.Driver().ShortName(), width: st.SizeX, height: st.SizeY}
	t.mime = mimeOf[t.driver]
	for _, b := range ds.Bands() {
		t.bands = append(t.bands, raster.Band{Color: b.ColorInterp().Name(), DataType: b.Structure().DataType.String()})
	}
	md := ds.Metadatas(godal.Domain("IMAGE_STRUCTURE"))
	// GDAL states the reversibility of WebP TIFFs too: only JPEG 2000's
	// counts (SPEC: LOSSY/LOSSLESS for JPEG 2000, COMPRESSION for GeoTIFF).
	r, c := md["COMPRESSION_REVERSIBILITY"], md["COMPRESSION"]
	if t.driver == "GTiff" {
		r = ""
	}
	switch {
	case strings.HasPrefix(r, "LOSSLESS"):
		t.compression = "LOSSLESS"
	case r != "":
		t.compression = "LOSSY"
	case c == "YCbCr JPEG":
		t.compression = "JPEG"
	case c != "":
		t.compression = c
	default:
		t.compression = "NONE"
	}
	if gt, err := ds.GeoTransform(godal.ErrLogger(func(godal.ErrorCategory, int, string) error { return nil })); err == nil && gt != [6]float64{0, 1, 0, 0, 0, 1} {
		t.gt = &gt
	}
	t.wkt = ds.Projection()
	if t.wkt != "" {
		t.epsg = epsgOracle(t.wkt)
	}
	return t, nil
}

// epsgOracle names the CRS as GDAL can: its EPSG authority code, else
// AutoIdentifyEPSG's, else OSRFindMatches' match at full confidence.
func epsgOracle(wkt string) int {
	sr, err := godal.NewSpatialRefFromWKT(wkt)
	if err != nil {
		return 0
	}
	defer sr.Close()
	if code := epsgAuthority(sr, ""); code != 0 {
		return code
	}
	if sr.AutoIdentifyEPSG() == nil {
		if code := epsgAuthority(sr, ""); code != 0 {
			return code
		}
	}
	return FindMatchEPSG(wkt)
}

func epsgAuthority(sr *godal.SpatialRef, target string) int {
	if sr.AuthorityName(target) != "EPSG" {
		return 0
	}
	code, _ := strconv.Atoi(sr.AuthorityCode(target))
	return code
}

// siblingsOf lists, as the indexer does, the non-tile files of the tile's
// folder sharing its stem (the name up to the first dot).
func siblingsOf(t *testing.T, tile string) []raster.File {
	t.Helper()
	dir, name := filepath.Split(tile)
	stem, _, _ := strings.Cut(name, ".")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []raster.File
	for _, e := range entries {
		n := e.Name()
		s, _, _ := strings.Cut(n, ".")
		if n == name || s != stem || isTileName(n) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raster.File{Key: n, Size: info.Size()})
	}
	return out
}

func isTileName(n string) bool {
	switch strings.ToLower(filepath.Ext(n)) {
	case ".jp2", ".tif", ".tiff":
		return true
	}
	return false
}

// inspect reads the tile as the indexer does: raster.Inspect through a
// Source reading the folder, with the same-stem files as siblings.
func inspect(t *testing.T, path string) (*raster.Header, error) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	return raster.Inspect(context.Background(), dirSource{root: dir}, raster.File{Key: filepath.Base(path), Size: info.Size()}, siblingsOf(t, path))
}

// mismatches compares our answer with GDAL's, one line per difference.
func mismatches(want *truth, h *raster.Header, err error) []string {
	wantReason := func(reason error, why string) []string {
		if !errors.Is(err, reason) {
			return []string{fmt.Sprintf("GDAL: %s, so want problem %q; got header %+v, error %v", why, reason, h, err)}
		}
		return nil
	}
	if want.gt == nil {
		return wantReason(raster.ErrNotGeoreferenced, "no geotransform")
	}
	if want.epsg == 0 {
		return wantReason(raster.ErrNoCRS, fmt.Sprintf("no EPSG code for CRS %.80q", want.wkt))
	}
	if err != nil {
		return []string{fmt.Sprintf("GDAL reads it (EPSG:%d, gt %v); got error %v", want.epsg, *want.gt, err)}
	}
	var out []string
	diff := func(field string, got, exp any) {
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			out = append(out, fmt.Sprintf("%s: got %v, GDAL %v", field, got, exp))
		}
	}
	diff("driver", h.Driver, want.driver)
	diff("mime type", h.MimeType, want.mime)
	diff("width", h.Width, want.width)
	diff("height", h.Height, want.height)
	diff("bands", h.Bands, want.bands)
	diff("compression", h.Compression, want.compression)
	diff("EPSG", h.EPSG, want.epsg)
	if !sameFloats(h.GeoTransform, *want.gt) {
		out = append(out, fmt.Sprintf("geotransform: got %v, GDAL %v", h.GeoTransform, *want.gt))
	}
	return out
}

// sameFloats compares bit for bit: GDAL's geotransform is the truth.
func sameFloats(a, b [6]float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(a[i] == 0 && b[i] == 0) {
			return false
		}
	}
	return true
}

func runDifferential(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Unwritable != "" {
				checkUnwritable(t, c)
				return
			}
			want, err := gdalTruth(c.Path)
			if err != nil {
				t.Fatalf("%s (%s): plain GDAL cannot open it, so it is no truth source: %v", c.Name, c.Note, err)
			}
			t.Logf("GDAL: %s %dx%d %v %s gt=%v EPSG:%d", want.driver, want.width, want.height, want.bands, want.compression, want.gt, want.epsg)
			h, err := inspect(t, c.Path)
			for _, m := range mismatches(want, h, err) {
				t.Errorf("%s [%s]: %s", c.Name, c.Note, m)
			}
		})
	}
}

// checkUnwritable asserts that GDAL really lacks the codec the case asked.
func checkUnwritable(t *testing.T, c Case) {
	t.Helper()
	codec := ""
	for _, o := range c.Creation {
		if v, ok := strings.CutPrefix(o, "COMPRESS="); ok {
			codec = v
		}
	}
	if codec == "" || DriverOffers(c.Driver, "COMPRESS", codec) {
		t.Fatalf("%s: recorded as unwritable (%s) but %s offers COMPRESS=%s", c.Name, c.Unwritable, c.Driver, codec)
	}
	t.Logf("%s: GDAL %v cannot write it: %s", c.Name, godal.Version(), c.Unwritable)
}

func TestDifferentialGeoref(t *testing.T) {
	cases, err := Georef(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	checkCorpus(t, cases, 60)
	runDifferential(t, cases)
}

func TestDifferentialCrossWriter(t *testing.T) {
	cases, err := CrossWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	checkCorpus(t, cases, 12)
	runDifferential(t, cases)
}

// checkCorpus guards against a corpus that shrank or lost its files.
func checkCorpus(t *testing.T, cases []Case, atLeast int) {
	t.Helper()
	if len(cases) < atLeast {
		t.Fatalf("%d cases, want at least %d", len(cases), atLeast)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("case %s twice", c.Name)
		}
		seen[c.Name] = true
		if c.Unwritable != "" {
			continue
		}
		for _, p := range append([]string{c.Path}, c.Siblings...) {
			if info, err := os.Stat(p); err != nil || info.Size() == 0 {
				t.Errorf("%s: %s missing or empty (%v)", c.Name, p, err)
			}
		}
		got := siblingsOf(t, c.Path)
		if len(got) != len(c.Siblings) {
			t.Errorf("%s: %d siblings written, the folder shows %d", c.Name, len(c.Siblings), len(got))
		}
	}
}

// TestMismatchesDetect keeps the comparison honest: a header differing from
// GDAL's in any one field, or an answer where GDAL has a problem, is
// reported.
func TestMismatchesDetect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "base.tif")
	if err := gtiff().write(path); err != nil {
		t.Fatal(err)
	}
	want, err := gdalTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	good := raster.Header{Driver: want.driver, MimeType: want.mime, Width: want.width, Height: want.height,
		Bands: want.bands, GeoTransform: *want.gt, EPSG: want.epsg, Compression: want.compression}
	if m := mismatches(want, &good, nil); len(m) != 0 {
		t.Fatalf("GDAL's own answer reported as different: %v", m)
	}
	edits := map[string]func(h *raster.Header){
		"driver":       func(h *raster.Header) { h.Driver = "JP2OpenJPEG" },
		"mime type":    func(h *raster.Header) { h.MimeType = "image/jp2" },
		"width":        func(h *raster.Header) { h.Width++ },
		"height":       func(h *raster.Header) { h.Height-- },
		"bands":        func(h *raster.Header) { h.Bands = []raster.Band{{Color: "Gray", DataType: "Byte"}} },
		"compression":  func(h *raster.Header) { h.Compression = "LZW" },
		"EPSG":         func(h *raster.Header) { h.EPSG = 3946 },
		"geotransform": func(h *raster.Header) { h.GeoTransform[0] = math.Nextafter(h.GeoTransform[0], math.Inf(1)) },
	}
	for field, edit := range edits {
		h := good
		h.Bands = append([]raster.Band(nil), good.Bands...)
		edit(&h)
		m := mismatches(want, &h, nil)
		if len(m) != 1 || !strings.HasPrefix(m[0], field+":") {
			t.Errorf("%s changed: reported %q", field, m)
		}
	}
	noCRS := *want
	noCRS.epsg = 0
	if m := mismatches(&noCRS, &good, nil); len(m) != 1 {
		t.Errorf("GDAL without EPSG code, header with one: reported %q", m)
	}
	if m := mismatches(&noCRS, nil, &raster.Problem{Reason: raster.ErrNoCRS}); len(m) != 0 {
		t.Errorf("GDAL without EPSG code, problem no CRS: reported %q", m)
	}
	noGeo := noCRS
	noGeo.gt = nil
	if m := mismatches(&noGeo, nil, &raster.Problem{Reason: raster.ErrNoCRS}); len(m) != 1 {
		t.Errorf("GDAL without geotransform, problem no CRS: reported %q", m)
	}
	if m := mismatches(want, nil, &raster.Problem{Reason: raster.ErrCorrupt}); len(m) != 1 {
		t.Errorf("GDAL reads it, problem corrupt: reported %q", m)
	}
}
