package raster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// memSource serves objects from memory and counts the bytes fetched.
type memSource struct {
	mu      sync.Mutex
	objects map[string][]byte
	fetched int64
}

func (m *memSource) ReadAt(_ context.Context, key string, p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return 0, os.ErrNotExist
	}
	if off >= int64(len(b)) {
		return 0, errors.New("read past the end")
	}
	n := copy(p, b[off:])
	m.fetched += int64(n)
	if n < len(p) {
		return n, errors.New("short read")
	}
	return n, nil
}

// scanBytes runs scanTIFF on data served from memory.
func scanBytes(data []byte) (*tiffInfo, *memSource, error) {
	src := &memSource{objects: map[string][]byte{"t.tif": data}}
	o, _, done := open(context.Background(), src, File{Key: "t.tif", Size: int64(len(data))})
	defer done()
	info, err := scanTIFF(o, o.file("t.tif"))
	return info, src, err
}

func scanPath(t *testing.T, path string) (*tiffInfo, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := scanBytes(data)
	return info, err
}

// gdalTIFFHeader is what plain GDAL says of the file: opened in place, no
// option, siblings visible. ok is false when GDAL finds no usable
// geotransform or CRS.
func gdalTIFFHeader(t *testing.T, path string) (*Header, int, bool) {
	t.Helper()
	godal.RegisterAll()
	ds, err := godal.Open(path, quiet)
	if err != nil {
		t.Logf("GDAL cannot open %s: %v", path, err)
		return nil, 0, false
	}
	defer ds.Close()
	st := ds.Structure()
	h := &Header{Driver: ds.Driver().ShortName(), Width: st.SizeX, Height: st.SizeY}
	h.MimeType = mimeTypes[h.Driver]
	h.OpenDriver = openSourceDrivers[h.Driver]
	for _, b := range ds.Bands() {
		h.Bands = append(h.Bands, Band{Color: b.ColorInterp().Name(), DataType: b.Structure().DataType.String()})
	}
	switch c := ds.Metadata("COMPRESSION", godal.Domain("IMAGE_STRUCTURE")); c {
	case "":
		h.Compression = "NONE"
	case "YCbCr JPEG":
		h.Compression = "JPEG"
	default:
		h.Compression = c
	}
	code := 0
	if sr := ds.SpatialRef(); sr != nil {
		defer sr.Close()
		if sr.AuthorityName("") != "EPSG" {
			_ = sr.AutoIdentifyEPSG()
		}
		if sr.AuthorityName("") == "EPSG" {
			code, _ = strconv.Atoi(sr.AuthorityCode(""))
		}
	}
	h.EPSG = code
	gt, err := ds.GeoTransform(quiet)
	if err != nil || gt == [6]float64{0, 1, 0, 0, 0, 1} || code == 0 {
		return h, code, false
	}
	h.GeoTransform = gt
	return h, code, true
}

// translate writes a GTiff at dir/name with gdal_translate's switches from
// a tile tilegen wrote.
func translate(t testing.TB, dir, name string, tile tilegen.Tile, switches ...string) string {
	t.Helper()
	src := filepath.Join(dir, "src-"+name)
	if err := tile.Write(src); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	ds, err := godal.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	dst := filepath.Join(dir, name)
	out, err := ds.Translate(dst, append([]string{"-of", "GTiff"}, switches...), godal.ConfigOption("GDAL_PAM_ENABLED=NO"))
	if err != nil {
		t.Fatalf("gdal_translate %v: %v", switches, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// geoKeyOffset is the byte offset of the GeoKeyDirectory's values in the
// file, for tests that hand-edit keys.
func geoKeyOffset(t *testing.T, data []byte, info *tiffInfo) int {
	t.Helper()
	e, ok := info.entries[tagGeoKeyDirectory]
	if !ok {
		t.Fatal("no GeoKeyDirectory")
	}
	if e.count*2 <= uint64(len(e.inline)) {
		t.Fatal("inline GeoKeyDirectory")
	}
	if len(e.inline) == 4 {
		return int(info.bo.Uint32(e.inline))
	}
	return int(info.bo.Uint64(e.inline))
}

// editTIFF hand-edits the TIFF at path: edit changes data in place, its
// header scanned, and says whether it found what it edits (else why not).
func editTIFF(t *testing.T, path string, edit func(data []byte, info *tiffInfo) (missing string)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := scanBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if missing := edit(data, info); missing != "" {
		t.Fatal(missing)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editGeoKey rewrites, in the file at path, the key entry whose id is from
// into (id, location, count, value), keeping the directory's order.
func editGeoKey(t *testing.T, path string, from uint16, key [4]uint16) {
	t.Helper()
	editTIFF(t, path, func(data []byte, info *tiffInfo) string {
		base := geoKeyOffset(t, data, info)
		for i := range int(info.geoKeys[3]) {
			at := base + 8 + 8*i
			if info.bo.Uint16(data[at:]) == from {
				for j, v := range key {
					info.bo.PutUint16(data[at+2*j:], v)
				}
				return ""
			}
		}
		return fmt.Sprintf("no GeoKey %d in %v", from, info.geoKeys)
	})
}

// removeGeoKey removes key id from the GeoKeyDirectory, keeping the
// others in order.
func removeGeoKey(t *testing.T, path string, id uint16) {
	t.Helper()
	editTIFF(t, path, func(data []byte, info *tiffInfo) string {
		base := geoKeyOffset(t, data, info)
		n := int(info.bo.Uint16(data[base+6:]))
		for i := range n {
			at := base + 8 + 8*i
			if info.bo.Uint16(data[at:]) == id {
				copy(data[at:base+8+8*n], data[at+8:base+8+8*n])
				info.bo.PutUint16(data[base+6:], uint16(n-1))
				return ""
			}
		}
		return fmt.Sprintf("no GeoKey %d", id)
	})
}

// patchASCII overwrites the start of GeoAsciiParams with text.
func patchASCII(t *testing.T, path, text string) {
	t.Helper()
	editTIFF(t, path, func(data []byte, info *tiffInfo) string {
		i := bytes.Index(data, []byte(info.geoASCII))
		if info.geoASCII == "" || i < 0 {
			return "no GeoAsciiParams"
		}
		copy(data[i:], text)
		return ""
	})
}

// setTag rewrites an inline SHORT or LONG tag's value in the file at path.
func setTag(t *testing.T, path string, tag uint16, value uint32) {
	t.Helper()
	editTIFF(t, path, func(data []byte, info *tiffInfo) string {
		ifd, entry, countSize := int64(info.bo.Uint32(data[4:8])), int64(12), int64(2)
		if info.bo.Uint16(data[2:4]) == 43 {
			ifd, entry, countSize = int64(info.bo.Uint64(data[8:16])), 20, 8
		}
		for i := range int64(len(info.entries)) {
			at := ifd + countSize + i*entry
			if info.bo.Uint16(data[at:]) != tag {
				continue
			}
			val := data[at+8:]
			if entry != 12 {
				val = data[at+12:]
			}
			switch info.bo.Uint16(data[at+2:]) {
			case 3:
				info.bo.PutUint16(val, uint16(value))
			case 4:
				info.bo.PutUint32(val, value)
			default:
				return fmt.Sprintf("tag %d is not a SHORT or LONG", tag)
			}
			return ""
		}
		return fmt.Sprintf("no tag %d", tag)
	})
}

// TestTIFFHeaderAgreesWithGDAL: for files GDAL wrote, some then hand-edited,
// header() either declines or gives every field GDAL gives, to the bit, and
// epsg() gives GDAL's EPSG identification or declines. fast says which
// files the Go reader must answer, so that declining everything fails.
func TestTIFFHeaderAgreesWithGDAL(t *testing.T) {
	l93 := tilegen.Tile{EPSG: 2154, X: 652123.45, Y: 6232987.65, Pixel: 0.05, Width: 300, Height: 200}
	gray16 := tilegen.Tile{EPSG: 3944, Bands: 1, DataType: godal.UInt16, X: 1650000.25, Y: 3210000.75}
	gray8 := tilegen.Tile{EPSG: 3950, Bands: 1}
	rgba := tilegen.Tile{EPSG: 2154, Bands: 4}
	type edit func(t *testing.T, path string)
	tests := []struct {
		name     string
		tile     tilegen.Tile
		switches []string
		edit     edit
		fast     bool
		epsg     bool // epsg() answers
	}{
		{"none-striped", l93, nil, nil, true, true},
		{"lzw-striped-3948", tilegen.Tile{EPSG: 3948}, []string{"-co", "COMPRESS=LZW"}, nil, true, true},
		{"deflate-bigtiff-tiled", tilegen.Tile{EPSG: 3942}, []string{"-co", "COMPRESS=DEFLATE", "-co", "BIGTIFF=YES", "-co", "TILED=YES"}, nil, true, true},
		{"deflate-predictor-be", l93, []string{"-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2", "-co", "ENDIANNESS=BIG"}, nil, true, true},
		{"bigtiff-be-tiled", tilegen.Tile{EPSG: 3950}, []string{"-co", "BIGTIFF=YES", "-co", "ENDIANNESS=BIG", "-co", "TILED=YES", "-co", "BLOCKXSIZE=128", "-co", "BLOCKYSIZE=64"}, nil, true, true},
		{"jpeg-ycbcr-tiled", l93, []string{"-co", "COMPRESS=JPEG", "-co", "PHOTOMETRIC=YCBCR", "-co", "TILED=YES"}, nil, true, true},
		{"jpeg-rgb-striped", l93, []string{"-co", "COMPRESS=JPEG", "-co", "BLOCKYSIZE=16"}, nil, true, true},
		{"packbits", l93, []string{"-co", "COMPRESS=PACKBITS"}, nil, true, true},
		{"zstd", l93, []string{"-co", "COMPRESS=ZSTD"}, nil, true, true},
		{"webp", l93, []string{"-co", "COMPRESS=WEBP"}, nil, true, true},
		{"lerc", l93, []string{"-co", "COMPRESS=LERC"}, nil, true, true},
		{"lerc-deflate", l93, []string{"-co", "COMPRESS=LERC_DEFLATE"}, nil, true, true},
		{"lerc-zstd", l93, []string{"-co", "COMPRESS=LERC_ZSTD"}, nil, true, true},
		{"lzma", l93, []string{"-co", "COMPRESS=LZMA"}, nil, true, true},
		{"band-interleaved", l93, []string{"-co", "INTERLEAVE=BAND", "-co", "COMPRESS=LZW"}, nil, true, true},
		{"gray16", gray16, []string{"-co", "COMPRESS=DEFLATE", "-co", "TILED=YES"}, nil, true, true},
		{"gray8", gray8, nil, nil, true, true},
		{"gray8-jpeg", gray8, []string{"-co", "COMPRESS=JPEG"}, nil, true, true},
		{"rgb16", tilegen.Tile{EPSG: 3945, DataType: godal.UInt16}, []string{"-co", "COMPRESS=LZW", "-co", "PREDICTOR=2"}, nil, true, true},
		{"int16", gray16, []string{"-ot", "Int16"}, nil, false, true},
		{"float32", gray16, []string{"-ot", "Float32", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=3"}, nil, false, true},
		{"nbits12", gray16, []string{"-co", "NBITS=12"}, nil, false, true},
		{"signed-byte", gray8, []string{"-co", "PIXELTYPE=SIGNEDBYTE"}, nil, false, true},
		{"nodata-and-metadata", l93, []string{"-a_nodata", "0", "-mo", "PRODUCER=IGN"}, nil, true, true},
		{"pixel-is-point", l93, []string{"-mo", "AREA_OR_POINT=Point"}, nil, true, true},
		{"pixel-is-point-odd", tilegen.Tile{EPSG: 2154, X: 700000.1, Y: 6600000.3, Pixel: 0.2}, []string{"-mo", "AREA_OR_POINT=Point", "-co", "TILED=YES"}, nil, true, true},
		{"rotated", tilegen.Tile{EPSG: 2154, Rotation: 0.01}, nil, nil, true, true},
		{"rotated-point", tilegen.Tile{EPSG: 3946, Rotation: -0.003, X: 1700200.5, Y: 5200200.5}, []string{"-mo", "AREA_OR_POINT=Point"}, nil, true, true},
		{"a_srs-3944", l93, []string{"-a_srs", "EPSG:3944"}, nil, true, true},
		{"a_ullr", l93, []string{"-a_ullr", "652000", "6233000", "652200", "6232800"}, nil, true, true},
		// Declined: GDAL reads these.
		{"rgba", rgba, []string{"-co", "ALPHA=YES"}, nil, false, true},
		{"rgb-undefined", rgba, nil, nil, false, true},
		{"ycbcr-uncompressed", l93, nil, func(t *testing.T, p string) { setTag(t, p, tagPhotometric, photometricYCbCr) }, false, true},
		{"ycbcr-lzw", l93, []string{"-co", "COMPRESS=LZW"}, func(t *testing.T, p string) { setTag(t, p, tagPhotometric, photometricYCbCr) }, false, true},
		{"minisblack-3-bands", l93, []string{"-co", "PHOTOMETRIC=MINISBLACK"}, nil, false, true},
		{"scale-offset", gray16, []string{"-a_scale", "0.5", "-a_offset", "10"}, nil, false, true},
		{"colorinterp-metadata", l93, []string{"-colorinterp", "blue,green,red"}, nil, false, true},
		{"utm", tilegen.Tile{EPSG: 32631, X: 500000, Y: 4800000}, nil, nil, false, false},
		{"wgs84", tilegen.Tile{EPSG: 4326, X: 2.1, Y: 43.2, Pixel: 0.0001}, nil, nil, false, false},
		{"no-crs", tilegen.Tile{X: 652000, Y: 6232000}, nil, nil, false, false},
		{"feet", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyProjLinearUnits, [4]uint16{keyProjLinearUnits, 0, 1, 9002})
		}, false, false},
		{"kilometre", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyProjLinearUnits, [4]uint16{keyProjLinearUnits, 0, 1, 9036})
		}, false, false},
		{"no-linear-units", l93, nil, func(t *testing.T, p string) { removeGeoKey(t, p, keyProjLinearUnits) }, true, true},
		{"geographic-type-rgf93", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyCitation, [4]uint16{keyGeographicType, 0, 1, 4171})
		}, true, true},
		{"no-raster-type", l93, nil, func(t *testing.T, p string) { removeGeoKey(t, p, keyRasterType) }, true, true},
		{"no-model-type", l93, nil, func(t *testing.T, p string) { removeGeoKey(t, p, keyModelType) }, false, false},
		{"pcs-only", l93, nil, func(t *testing.T, p string) {
			for _, k := range []uint16{keyRasterType, keyCitation, keyGeogCitation, keyGeogAngularUnit, keyProjLinearUnits} {
				removeGeoKey(t, p, k)
			}
		}, true, true},
		{"esri-citation", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyCitation, [4]uint16{keyCitation, tagGeoASCIIParams, 8, 0})
			patchASCII(t, p, "ESRI PE ")
		}, false, false},
		{"angular-grads", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyGeogAngularUnit, [4]uint16{keyGeogAngularUnit, 0, 1, 9105})
		}, false, false},
		{"vertical-datum", l93, nil, func(t *testing.T, p string) { editGeoKey(t, p, keyProjLinearUnits, [4]uint16{4096, 0, 1, 5720}) }, false, false},
		{"user-defined-units", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyProjLinearUnits, [4]uint16{keyProjLinearUnits, 0, 1, 32767})
		}, false, false},
		{"user-defined-pcs", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyProjectedCSType, [4]uint16{keyProjectedCSType, 0, 1, 32767})
		}, false, false},
		{"geographic-model", l93, nil, func(t *testing.T, p string) { editGeoKey(t, p, keyModelType, [4]uint16{keyModelType, 0, 1, 2}) }, false, false},
		{"geographic-type-wgs84", l93, nil, func(t *testing.T, p string) {
			editGeoKey(t, p, keyCitation, [4]uint16{keyGeographicType, 0, 1, 4326})
		}, false, false},
		{"projection-key", l93, nil, func(t *testing.T, p string) { editGeoKey(t, p, keyProjLinearUnits, [4]uint16{3074, 0, 1, 16031}) }, false, false},
		{"raster-type-bogus", l93, nil, func(t *testing.T, p string) { editGeoKey(t, p, keyRasterType, [4]uint16{keyRasterType, 0, 1, 3}) }, false, false},
		{"palette-photometric", gray8, nil, func(t *testing.T, p string) { setTag(t, p, tagPhotometric, 3) }, false, true},
		{"min-is-white", gray8, nil, func(t *testing.T, p string) { setTag(t, p, tagPhotometric, 0) }, false, true},
	}
	dir := t.TempDir()
	fastSeen := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := translate(t, dir, tt.name+".tif", tt.tile, tt.switches...)
			if tt.edit != nil {
				tt.edit(t, path)
			}
			info, err := scanPath(t, path)
			if err != nil {
				t.Fatalf("scanTIFF: %v", err)
			}
			if p := info.incompleteProblem(); p != nil {
				t.Fatalf("whole file said incomplete: %v", p)
			}
			want, gdalCode, gdalOK := gdalTIFFHeader(t, path)
			t.Logf("GDAL: EPSG:%d, usable %v", gdalCode, gdalOK)
			code, ok := info.epsg()
			if ok && code != gdalCode {
				t.Errorf("epsg() = %d, GDAL identifies EPSG:%d", code, gdalCode)
			}
			if ok != tt.epsg {
				t.Errorf("epsg() answers = %v, want %v (GDAL: EPSG:%d)", ok, tt.epsg, gdalCode)
			}
			got, ok := info.header()
			if ok != tt.fast {
				t.Errorf("header() answers = %v, want %v (unusual: %q, compression %v, photometric %v, lerc %v)", ok, tt.fast, info.unusual, info.compression, info.photometric, info.lerc)
			}
			if !ok {
				return
			}
			fastSeen++
			if !gdalOK {
				t.Fatalf("header() answers %+v where GDAL finds no usable georeferencing (%+v)", got, want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("header()\n got %+v\nGDAL %+v", got, want)
			}
			gdalOnly = true
			_, ok = info.header()
			gdalOnly = false
			if ok {
				t.Error("header() answers with gdalOnly set")
			}
		})
	}
	if fastSeen == 0 {
		t.Error("header() never answered")
	}
}

// TestTIFFIncomplete: a copy cut short is incomplete at the first block
// that GDAL's own offsets place past the end, in today's words.
func TestTIFFIncomplete(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		switches []string
	}{
		{"striped-lzw", []string{"-co", "COMPRESS=LZW", "-co", "BLOCKYSIZE=8"}},
		{"tiled-jpeg", []string{"-co", "COMPRESS=JPEG", "-co", "PHOTOMETRIC=YCBCR", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=64"}},
		{"separate-bigtiff", []string{"-co", "INTERLEAVE=BAND", "-co", "BIGTIFF=YES", "-co", "TILED=YES", "-co", "BLOCKXSIZE=128", "-co", "BLOCKYSIZE=128"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := translate(t, dir, tt.name+".tif", tilegen.Tile{EPSG: 2154}, tt.switches...)
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range []int{len(whole) * 2 / 3, len(whole) - 1} {
				cut := filepath.Join(dir, fmt.Sprintf("%s-%d.tif", tt.name, keep))
				if err := os.WriteFile(cut, whole[:keep], 0o644); err != nil {
					t.Fatal(err)
				}
				want := firstCutBlock(t, path, int64(keep))
				info, err := scanPath(t, cut)
				if err != nil {
					t.Fatalf("scanTIFF: %v", err)
				}
				p := info.incompleteProblem()
				if p == nil || !errors.Is(p, ErrCorrupt) || p.Detail != want {
					t.Errorf("cut at %d: %v, want %q", keep, p, want)
				}
			}
			info, err := scanPath(t, path)
			if err != nil || info.incompleteProblem() != nil {
				t.Errorf("whole file: %v, %v", err, info.incompleteProblem())
			}
		})
	}
}

// firstCutBlock reads, through GDAL on the whole file (one goroutine, so
// its per-thread metadata strings are safe), the first block ending past
// keep, and words the problem.
func firstCutBlock(t *testing.T, path string, keep int64) string {
	t.Helper()
	ds, err := godal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	bands := ds.Bands()
	if ds.Metadata("INTERLEAVE", godal.Domain("IMAGE_STRUCTURE")) != "BAND" {
		bands = bands[:1]
	}
	st := bands[0].Structure()
	nx, ny := (st.SizeX+st.BlockSizeX-1)/st.BlockSizeX, (st.SizeY+st.BlockSizeY-1)/st.BlockSizeY
	for bi, b := range bands {
		for y := range ny {
			for x := range nx {
				s := fmt.Sprintf("%d_%d", x, y)
				off, _ := strconv.ParseInt(b.Metadata("BLOCK_OFFSET_"+s, godal.Domain("TIFF")), 10, 64)
				n, _ := strconv.ParseInt(b.Metadata("BLOCK_SIZE_"+s, godal.Domain("TIFF")), 10, 64)
				if n > 0 && off+n > keep {
					return fmt.Sprintf("TIFF block %d,%d of band %d declares %d bytes at byte %d, ending at byte %d, but the object holds %d bytes: transfer cut short", x, y, bi+1, n, off, off+n, keep)
				}
			}
		}
	}
	t.Fatalf("no block of %s ends past %d", path, keep)
	return ""
}

// TestTIFFSparse: a GeoTIFF GDAL created sparse and never wrote is empty; one
// with a single block written is not.
func TestTIFFSparse(t *testing.T) {
	dir := t.TempDir()
	for _, written := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("sparse-%v.tif", written))
		ds, err := godal.Create(godal.GTiff, path, 3, godal.Byte, 256, 256, godal.CreationOption("SPARSE_OK=TRUE", "TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64"))
		if err != nil {
			t.Fatal(err)
		}
		if err := ds.SetGeoTransform([6]float64{652000, 0.5, 0, 6233000, 0, -0.5}); err != nil {
			t.Fatal(err)
		}
		if written {
			if err := ds.Bands()[0].Write(64, 64, make([]byte, 64*64), 64, 64); err != nil {
				t.Fatal(err)
			}
			buf := bytes.Repeat([]byte{7}, 64*64)
			for _, b := range ds.Bands() {
				if err := b.Write(64, 64, buf, 64, 64); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := ds.Close(); err != nil {
			t.Fatal(err)
		}
		info, err := scanPath(t, path)
		if err != nil {
			t.Fatal(err)
		}
		p := info.incompleteProblem()
		if written {
			if p != nil {
				t.Errorf("one block written: %v", p)
			}
			continue
		}
		want := "no pixels: every one of the 16 blocks is sparse (never written)"
		if p == nil || !errors.Is(p, ErrEmpty) || p.Detail != want {
			t.Errorf("never written: %v, want %q", p, want)
		}
	}
}

// tiffTag is one tag of a hand-made TIFF.
type tiffTag struct {
	tag, typ uint16
	count    uint64
	value    []byte // inline when it fits, else written after the IFD
}

func shortTag(tag uint16, v ...uint16) tiffTag {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return tiffTag{tag, 3, uint64(len(v)), b}
}

func longTag(tag uint16, v ...uint32) tiffTag {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return tiffTag{tag, 4, uint64(len(v)), b}
}

// makeTIFF writes a little-endian classic TIFF (or BigTIFF) with tags,
// their out-of-line values after the IFD, then pad bytes.
func makeTIFF(big bool, tags []tiffTag, pad int) []byte {
	le := binary.LittleEndian
	var out []byte
	countSize, entrySize, inline := 2, 12, 4
	if big {
		out = []byte("II+\x00\x08\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00")
		countSize, entrySize, inline = 8, 20, 8
	} else {
		out = []byte("II*\x00\x08\x00\x00\x00")
	}
	ifd := len(out)
	extra := ifd + countSize + len(tags)*entrySize + inline
	out = append(out, make([]byte, extra-ifd)...)
	if big {
		le.PutUint64(out[ifd:], uint64(len(tags)))
	} else {
		le.PutUint16(out[ifd:], uint16(len(tags)))
	}
	for i, tg := range tags {
		e := out[ifd+countSize+i*entrySize:]
		le.PutUint16(e, tg.tag)
		le.PutUint16(e[2:], tg.typ)
		var val []byte
		if big {
			le.PutUint64(e[4:], tg.count)
			val = e[12:]
		} else {
			le.PutUint32(e[4:], uint32(tg.count))
			val = e[8:]
		}
		if len(tg.value) <= inline {
			copy(val, tg.value)
			continue
		}
		if big {
			le.PutUint64(val, uint64(len(out)))
		} else {
			le.PutUint32(val, uint32(len(out)))
		}
		out = append(out, tg.value...)
	}
	return append(out, make([]byte, pad)...)
}

// TestTIFFCaps: declarations beyond the caps and garbage structure are
// refused as corrupt, with the limit or defect named, before any work
// proportional to them; nothing panics.
func TestTIFFCaps(t *testing.T) {
	base := func(w, h uint32, more ...tiffTag) []tiffTag {
		return append([]tiffTag{longTag(tagImageWidth, w), longTag(tagImageLength, h), shortTag(tagBitsPerSample, 8)}, more...)
	}
	huge := uint64(1) << 62
	tests := []struct {
		name string
		data []byte
		want string // in the ErrCorrupt detail
	}{
		{"1.6e9 tiles", makeTIFF(false, base(640000, 640000, shortTag(tagTileWidth, 16), shortTag(tagTileLength, 16), longTag(tagTileOffsets, 8), longTag(tagTileByteCounts, 8)), 0), "declares 1600000000 tiles, more than the limit of 1048576"},
		{"1e9 strips", makeTIFF(false, base(100, 1000000000, longTag(tagRowsPerStrip, 1), longTag(tagStripOffsets, 8), longTag(tagStripByteCounts, 8)), 0), "declares 100x1000000000 pixels, more than the limit of 1000000 a side"},
		{"1e9 separate strips", makeTIFF(true, base(100, 1000000, shortTag(tagSamplesPerPixel, 1000), shortTag(tagPlanarConfiguration, 2), longTag(tagRowsPerStrip, 1), longTag(tagStripOffsets, 8), longTag(tagStripByteCounts, 8)), 0), "declares 1000000000 strips, more than the limit of 1048576"},
		{"offsets count mismatch", makeTIFF(false, base(100, 100, longTag(tagRowsPerStrip, 10), longTag(tagStripOffsets, 8, 9), longTag(tagStripByteCounts, 1, 1)), 0), "declares 2 values for tag 273, not the 10"},
		{"offsets array past the end", makeTIFF(false, append(base(100, 100, longTag(tagRowsPerStrip, 1)), tiffTag{tagStripOffsets, 4, 100, []byte{0xff, 0xff, 0xff, 0x0f}}, tiffTag{tagStripByteCounts, 4, 100, []byte{0xff, 0xff, 0xff, 0x0f}}), 0), "past the end of the object"},
		{"offset count overflows", makeTIFF(true, append(base(100, 100), tiffTag{tagStripOffsets, 16, huge, []byte{1, 2, 3, 4, 5, 6, 7, 8}}), 0), "not the 1 its"},
		{"no offsets", makeTIFF(false, base(100, 100), 0), "no StripOffsets"},
		{"no width", makeTIFF(false, []tiffTag{longTag(tagImageLength, 1)}, 0), "no ImageWidth"},
		{"zero tile size", makeTIFF(false, base(100, 100, shortTag(tagTileWidth, 0), shortTag(tagTileLength, 16)), 0), "tiles of 0x16 pixels"},
		{"IFD past the end", []byte("II*\x00\xff\xff\xff\x7f"), "past the end of the object"},
		{"BigTIFF IFD at 2^64-1", []byte("II+\x00\x08\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), "past the end of the object"},
		{"BigTIFF 2^64-1 entries", append([]byte("II+\x00\x08\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 8)...), "entries, outside 1..4096"},
		{"no entries", []byte("II*\x00\x08\x00\x00\x00\x00\x00\x00\x00"), "declares 0 entries"},
		{"bad BigTIFF header", []byte("II+\x00\x04\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00"), "malformed BigTIFF header"},
		{"short", []byte("II*\x00"), "cut short"},
		{"block beyond int64", makeTIFF(true, append(base(100, 100), tiffTag{tagStripOffsets, 16, 1, []byte{0, 0, 0, 0, 0, 0, 0, 0x7f}}, tiffTag{tagStripByteCounts, 16, 1, []byte{0, 0, 0, 0, 0, 0, 0, 0x7f}}), 0), "beyond any file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := scanBytes(tt.data)
			var p *Problem
			if !errors.As(err, &p) || !errors.Is(err, ErrCorrupt) || !strings.Contains(p.Detail, tt.want) {
				t.Fatalf("scanTIFF: %v, want corrupt %q", err, tt.want)
			}
		})
	}
}

// TestTIFFOddButReadable: structure scanTIFF must not refuse (GDAL reads
// it), where header() leaves the tile to GDAL.
func TestTIFFOddButReadable(t *testing.T) {
	base := []tiffTag{longTag(tagImageWidth, 10), longTag(tagImageLength, 10), shortTag(tagBitsPerSample, 8), longTag(tagStripOffsets, 200), longTag(tagStripByteCounts, 100)}
	loop := func(b []byte) []byte { // the next-IFD pointer names the first IFD
		n := int(binary.LittleEndian.Uint16(b[8:]))
		binary.LittleEndian.PutUint32(b[10+12*n:], 8)
		return b
	}
	tests := []struct {
		name   string
		tags   []tiffTag
		mutate func([]byte) []byte
	}{
		{"IFD loop", base, loop},
		{"no byte counts", base[:4], nil},
		{"GeoKeys of type DOUBLE", append(base[:5:5], tiffTag{tagGeoKeyDirectory, 12, 4, make([]byte, 32)}), nil},
		{"GeoKeys past the end", append(base[:5:5], tiffTag{tagGeoKeyDirectory, 3, 1 << 20, []byte{0, 0, 0, 0x70}}), nil},
		{"duplicate tag", append(base[:5:5], shortTag(tagPhotometric, 1), shortTag(tagPhotometric, 2)), nil},
		{"GeoKeys count larger than the array", append(base[:5:5], shortTag(tagGeoKeyDirectory, 1, 1, 0, 1000, 3072, 0, 1, 2154)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := makeTIFF(false, tt.tags, 300)
			if tt.mutate != nil {
				data = tt.mutate(data)
			}
			info, _, err := scanBytes(data)
			if err != nil {
				t.Fatalf("scanTIFF: %v", err)
			}
			if p := info.incompleteProblem(); p != nil {
				t.Errorf("incomplete: %v", p)
			}
			if h, ok := info.header(); ok {
				t.Errorf("header() answers %+v", h)
			}
			if _, ok := info.epsg(); ok {
				t.Error("epsg() answers")
			}
		})
	}
}

// TestTIFFFetchesOnce: scanning a striped file fetches its bytes once,
// through the block cache GDAL then reads from.
func TestTIFFFetchesOnce(t *testing.T) {
	path := translate(t, t.TempDir(), "s.tif", tilegen.Tile{EPSG: 2154, Width: 64, Height: 2000}, "-co", "BLOCKYSIZE=1", "-co", "COMPRESS=LZW")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, src, err := scanBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.header(); !ok {
		t.Errorf("2,000-strip file declined: %q", info.unusual)
	}
	if src.fetched > BlockSize {
		t.Errorf("fetched %d bytes for a header in the first %d", src.fetched, BlockSize)
	}
}

// BenchmarkScanTIFF: scanTIFF and header() on a 2,000-strip file and a
// 256-tile JPEG file, all bytes already cached as they are once fetched.
func BenchmarkScanTIFF(b *testing.B) {
	dir := b.TempDir()
	for _, bc := range []struct {
		name     string
		tile     tilegen.Tile
		switches []string
	}{
		{"2000-strips", tilegen.Tile{EPSG: 2154, Width: 2000}, []string{"-co", "BLOCKYSIZE=1", "-co", "COMPRESS=LZW"}},
		{"256-jpeg-tiles", tilegen.Tile{EPSG: 2154, Width: 4096}, []string{"-co", "COMPRESS=JPEG", "-co", "PHOTOMETRIC=YCBCR", "-co", "TILED=YES"}},
	} {
		path := translate(b, dir, bc.name+".tif", bc.tile, bc.switches...)
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		src := &memSource{objects: map[string][]byte{"t.tif": data}}
		o, _, done := open(context.Background(), src, File{Key: "t.tif", Size: int64(len(data))})
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				info, err := scanTIFF(o, o.file("t.tif"))
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := info.header(); !ok {
					b.Fatalf("declined: %q", info.unusual)
				}
			}
		})
		done()
	}
}

// firstBlockSource serves only the first block of its object: a storage
// failing mid-read.
type firstBlockSource struct{ data []byte }

var errStorage = errors.New("storage down")

func (s firstBlockSource) ReadAt(_ context.Context, _ string, p []byte, off int64) (int, error) {
	if off >= BlockSize {
		return 0, errStorage
	}
	return copy(p, s.data[off:]), nil
}

// TestTIFFStorageErrorIsNotCorrupt: a storage failure while reading any
// part of the header is returned as the storage's error, never a verdict.
func TestTIFFStorageErrorIsNotCorrupt(t *testing.T) {
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	base := []tiffTag{longTag(tagImageWidth, 10), longTag(tagImageLength, 10), longTag(tagRowsPerStrip, 1)}
	tests := map[string][]tiffTag{
		"offsets array": append(base[:3:3], tiffTag{tagStripOffsets, 4, 10, le32(100000)}, tiffTag{tagStripByteCounts, 4, 10, le32(100000)}),
		"GeoKeys":       append(base[:3:3], tiffTag{tagStripOffsets, 4, 10, make([]byte, 40)}, tiffTag{tagStripByteCounts, 4, 10, make([]byte, 40)}, tiffTag{tagGeoKeyDirectory, 3, 8, le32(100000)}),
		"GDAL_METADATA": append(base[:3:3], tiffTag{tagStripOffsets, 4, 10, make([]byte, 40)}, tiffTag{tagStripByteCounts, 4, 10, make([]byte, 40)}, tiffTag{tagGDALMetadata, 2, 8, le32(100000)}),
	}
	for name, tags := range tests {
		t.Run(name, func(t *testing.T) {
			data := makeTIFF(false, tags, 200000)
			obj := File{Key: "t.tif", Size: int64(len(data))}
			o, _, done := open(context.Background(), firstBlockSource{data}, obj)
			defer done()
			_, err := scanTIFF(o, o.file(obj.Key))
			if !errors.Is(err, errStorage) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("scanTIFF: %v, want the storage's error", err)
			}
		})
	}
}
