package raster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// jp2Mem serves one object from memory and counts the storage reads and
// the bytes they return.
type jp2Mem struct {
	data         []byte
	reads, bytes atomic.Int64
}

func (m *jp2Mem) ReadAt(_ context.Context, _ string, p []byte, off int64) (int, error) {
	m.reads.Add(1)
	if off < 0 || off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	m.bytes.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// jp2Scan runs scanJP2 on data served from memory, as the core does: the
// first block fetched, then the scan.
func jp2Scan(t testing.TB, data []byte) (*jp2Info, *jp2Mem, error) {
	t.Helper()
	src := &jp2Mem{data: data}
	obj := File{Key: "t.jp2", Size: int64(len(data))}
	o, _, done := open(context.Background(), src, obj)
	defer done()
	f := o.file(obj.Key)
	head := make([]byte, 16)
	_, _ = f.readAt(o, head, 0)
	j, err := scanJP2(o, f)
	return j, src, err
}

// jp2Write writes a tile with GDAL's JP2OpenJPEG driver and returns its
// bytes.
func jp2Write(t *testing.T, path string, tile tilegen.Tile) []byte {
	t.Helper()
	tile.Driver = "JP2OpenJPEG"
	if err := tile.Write(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// gdalJP2Header is the header plain GDAL gives: the file opened in place,
// its folder visible, no open option. ok is false when GDAL gives no
// usable georeferencing.
func gdalJP2Header(t *testing.T, path string) (*Header, bool) {
	t.Helper()
	if err := register(); err != nil {
		t.Fatal(err)
	}
	ds, err := godal.Open(path, godal.RasterOnly())
	if err != nil {
		t.Fatalf("GDAL cannot open %s: %v", path, err)
	}
	defer ds.Close()
	st := ds.Structure()
	drv := ds.Driver().ShortName()
	h := &Header{Driver: drv, MimeType: mimeTypes[drv], Width: st.SizeX, Height: st.SizeY, OpenDriver: openSourceDrivers[drv]}
	for _, b := range ds.Bands() {
		h.Bands = append(h.Bands, Band{Color: b.ColorInterp().Name(), DataType: b.Structure().DataType.String()})
	}
	rev := ds.Metadatas(godal.Domain("IMAGE_STRUCTURE"))["COMPRESSION_REVERSIBILITY"]
	h.Compression = "LOSSY"
	if strings.HasPrefix(rev, "LOSSLESS") {
		h.Compression = "LOSSLESS"
	}
	gt, err := ds.GeoTransform()
	if err != nil {
		return h, false
	}
	h.GeoTransform = gt
	wkt := ds.Projection()
	if wkt == "" {
		return h, false
	}
	sr, err := godal.NewSpatialRefFromWKT(wkt)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	if sr.AuthorityName("") != "EPSG" {
		return h, false
	}
	code := 0
	for _, c := range sr.AuthorityCode("") {
		code = code*10 + int(c-'0')
	}
	h.EPSG = code
	return h, true
}

// jp2Box1 is a box as the tests see it: its type, offset, header length
// and length.
type jp2Box1 struct {
	typ            string
	off, hdr, size int
}

// jp2Boxes lists the boxes of data, top-level and inside the superboxes
// GDAL descends into, in file order.
func jp2Boxes(data []byte, off, end int) []jp2Box1 {
	var out []jp2Box1
	for off+8 <= end {
		size, hdr := int(binary.BigEndian.Uint32(data[off:])), 8
		if size == 0 {
			size = end - off
		}
		b := jp2Box1{typ: string(data[off+4 : off+8]), off: off, hdr: hdr, size: size}
		out = append(out, b)
		if b.typ == "jp2h" || b.typ == "asoc" || b.typ == "res " {
			out = append(out, jp2Boxes(data, off+hdr, off+size)...)
		}
		off += size
	}
	return out
}

// jp2Splice replaces n bytes at at by repl, growing or shrinking every box
// that encloses them, so that the file stays well formed.
func jp2Splice(t *testing.T, data []byte, at, n int, repl []byte) []byte {
	t.Helper()
	delta := len(repl) - n
	out := append(append(append([]byte(nil), data[:at]...), repl...), data[at+n:]...)
	for _, b := range jp2Boxes(data, 0, len(data)) {
		// An insertion at a box's end lands after it, not in it.
		inside := at+n < b.off+b.size || n > 0 && at+n == b.off+b.size
		if b.off < at && inside && b.typ != "jp2c" {
			binary.BigEndian.PutUint32(out[b.off:], uint32(b.size+delta))
		}
	}
	return out
}

// jp2Edit replaces the first occurrence of old in the file's GML (or
// anywhere before the codestream) by repl.
func jp2Edit(t *testing.T, data []byte, old, repl string) []byte {
	t.Helper()
	cs := bytes.Index(data, []byte("jp2c"))
	at := bytes.Index(data[:cs], []byte(old))
	if at < 0 {
		t.Fatalf("%q not in the file's boxes", old)
	}
	return jp2Splice(t, data, at, len(old), []byte(repl))
}

// jp2BoxBytes builds a box.
func jp2BoxBytes(typ string, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// jp2Find is the first box of type typ.
func jp2Find(t *testing.T, data []byte, typ string) jp2Box1 {
	t.Helper()
	for _, b := range jp2Boxes(data, 0, len(data)) {
		if b.typ == typ {
			return b
		}
	}
	t.Fatalf("no %q box", typ)
	return jp2Box1{}
}

// TestJP2HeaderAgreesWithGDAL: on files GDAL's JP2OpenJPEG driver wrote,
// some then hand-edited, header() either declines or gives every field
// plain GDAL gives, to the bit; and it answers where it is expected to.
func TestJP2HeaderAgreesWithGDAL(t *testing.T) {
	type edit func(t *testing.T, data []byte) []byte
	replace := func(old, repl string) edit {
		return func(t *testing.T, data []byte) []byte { return jp2Edit(t, data, old, repl) }
	}
	// comment rewrites the codestream comment GDAL's writer leaves on a
	// reversible codestream, keeping its length, and its Rcom.
	comment := func(text string, rcom byte) edit {
		return func(t *testing.T, d []byte) []byte {
			const old = "Created by OpenJPEG version 2.5.0. LOSSLESS settings used"
			at := bytes.Index(d, []byte(old))
			if at < 0 || len(text) > len(old) {
				t.Fatalf("no comment %q in the codestream", old)
			}
			d = append([]byte(nil), d...)
			copy(d[at:], fmt.Sprintf("%-*s", len(old), text))
			d[at-1] = rcom
			return d
		}
	}
	lossless := []string{"REVERSIBLE=YES", "QUALITY=100", "GeoJP2=NO"}
	both := []string{"GMLJP2=YES", "GeoJP2=YES"}
	gmlOnly := []string{"GeoJP2=NO"}
	tests := []struct {
		name string
		tile tilegen.Tile
		edit edit
		fast bool
	}{
		{"default-both-boxes", tilegen.Tile{EPSG: 2154}, nil, true},
		{"lossy-gml", tilegen.Tile{EPSG: 2154, X: 652123.45, Y: 6232987.65, Pixel: 0.05, Width: 800, Creation: append([]string{"QUALITY=25"}, gmlOnly...)}, nil, true},
		{"lossless-gml", tilegen.Tile{EPSG: 3948, X: 1700200, Y: 7200200, Creation: append([]string{"REVERSIBLE=YES", "QUALITY=100"}, gmlOnly...)}, nil, true},
		{"reversible-quality-25", tilegen.Tile{EPSG: 2154, Creation: []string{"REVERSIBLE=YES", "QUALITY=25"}}, nil, true},
		{"reversible-layers", tilegen.Tile{EPSG: 2154, Bands: 1, Creation: []string{"REVERSIBLE=YES", "QUALITY=10,50,100"}}, nil, true},
		{"comment-neutral", tilegen.Tile{EPSG: 2154, Creation: lossless}, comment("Written by somebody, not a word about quality", 1), true},
		{"comment-lossy-padded", tilegen.Tile{EPSG: 2154, Creation: lossless}, comment("Created by OpenJPEG version 2.5.0. LOSSY settings used", 1), false},
		{"comment-lossy-elsewhere", tilegen.Tile{EPSG: 2154, Creation: lossless}, comment("LOSSY settings used, says this comment", 1), false},
		{"comment-lossy-lowercase", tilegen.Tile{EPSG: 2154, Creation: lossless}, comment("Created by OpenJPEG version 2.5.0. lossy settings used", 1), false},
		{"comment-binary", tilegen.Tile{EPSG: 2154, Creation: lossless}, comment("Created by OpenJPEG version 2.5.0. LOSSY settings used", 0), false},
		{"lossless-geojp2", tilegen.Tile{EPSG: 3949, Creation: []string{"REVERSIBLE=YES", "QUALITY=100", "GMLJP2=NO", "GeoJP2=YES"}}, nil, true},
		{"gray8", tilegen.Tile{EPSG: 3942, Bands: 1, X: 1300000, Y: 1200000}, nil, true},
		{"gray16", tilegen.Tile{EPSG: 3946, Bands: 1, DataType: godal.UInt16, Creation: []string{"REVERSIBLE=YES", "QUALITY=100"}}, nil, true},
		{"tiled-odd-size", tilegen.Tile{EPSG: 2154, Width: 1001, Height: 999, Creation: []string{"BLOCKXSIZE=256", "BLOCKYSIZE=256"}}, nil, true},
		{"gmljp2-v2", tilegen.Tile{EPSG: 2154, Creation: []string{"GMLJP2V2_DEF=YES", "GeoJP2=NO"}}, nil, true},
		{"gmljp2-v2-and-geojp2", tilegen.Tile{EPSG: 3950, Creation: []string{"GMLJP2V2_DEF=YES", "GeoJP2=YES"}}, nil, true},
		{"ycc", tilegen.Tile{EPSG: 2154, Creation: []string{"YCC=YES"}}, nil, true},
		{"cc43", tilegen.Tile{EPSG: 3943, X: 1700000, Y: 2200000}, nil, true},
		{"cc44", tilegen.Tile{EPSG: 3944, X: 1700000, Y: 3200000, Creation: gmlOnly}, nil, true},
		{"cc45", tilegen.Tile{EPSG: 3945, X: 1700000, Y: 4200000}, nil, true},
		{"cc47", tilegen.Tile{EPSG: 3947, X: 1700000, Y: 6200000, Creation: gmlOnly}, nil, true},

		// Declined: GDAL reads these its own way.
		{"rgbi-4-bands", tilegen.Tile{EPSG: 2154, Bands: 4}, nil, false},
		{"rgba-alpha", tilegen.Tile{EPSG: 2154, Bands: 4, Creation: []string{"ALPHA=YES"}}, nil, false},
		{"utm", tilegen.Tile{EPSG: 32631, X: 500000, Y: 4800000}, nil, false},
		{"no-georef", tilegen.Tile{EPSG: 2154, NoGeoTransform: true, Creation: []string{"GMLJP2=NO", "GeoJP2=NO"}}, nil, false},

		// Both boxes disagreeing: GDAL places the tile by its GeoJP2 box.
		{"both-gml-750m-off", tilegen.Tile{EPSG: 2154, Creation: both}, replace("<gml:pos>700000.25 ", "<gml:pos>700750.25 "), true},
		{"both-gml-other-crs", tilegen.Tile{EPSG: 2154, Creation: both}, func(t *testing.T, d []byte) []byte {
			for range 3 {
				d = jp2Edit(t, d, "EPSG::2154", "EPSG::3949")
			}
			return d
		}, true},
		{"geojp2-pixel-is-point", tilegen.Tile{EPSG: 2154, Creation: []string{"GMLJP2=NO", "GeoJP2=YES"}}, func(t *testing.T, d []byte) []byte {
			// GTRasterTypeGeoKey (1025) = PixelIsPoint, in the GeoTIFF's
			// little-endian key directory.
			return jp2Edit(t, d, "\x01\x04\x00\x00\x01\x00\x01\x00", "\x01\x04\x00\x00\x01\x00\x02\x00")
		}, false},
		{"geojp2-and-msig", tilegen.Tile{EPSG: 2154, Creation: both}, func(t *testing.T, d []byte) []byte {
			msig := append(append([]byte(nil), msigUUID...), "MSIG/"...)
			msig = append(msig, make([]byte, 80)...)
			b := jp2Find(t, d, "asoc")
			return jp2Splice(t, d, b.off, 0, jp2BoxBytes("uuid", msig))
		}, false},

		// GML forms.
		{"gml-epsg-short", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace(`<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG::2154">`, `<gml:Point gml:id="P0001" srsName="EPSG:2154">`), true},
		{"gml-urn-version", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace(`<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG::2154">`, `<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG:6.6:2154">`), true},
		{"gml-15-digits", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:pos>700000.25 6600199.75</gml:pos>", "<gml:pos>700000.123456789 6600199.98765432</gml:pos>"), true},
		{"gml-origin-1e308", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:pos>700000.25 ", "<gml:pos>1e308 "), false},
		{"gml-origin-nan", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:pos>700000.25 ", "<gml:pos>NaN "), false},
		{"gml-origin-20-digits", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:pos>700000.25 ", "<gml:pos>700000.12345678901234567 "), false},
		{"gml-comma-offsets", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace(">0.5 0</gml:offsetVector>", ">0.5,0</gml:offsetVector>"), false},
		{"gml-newline-offsets", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace(">0.5 0</gml:offsetVector>", ">0.5\n0</gml:offsetVector>"), false},
		{"gml-comment-between-offsets", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("</gml:offsetVector>\n", "</gml:offsetVector><!-- x -->\n"), false},
		{"gml-two-grids", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:boundedBy>", "<gml:boundedBy><gml:RectifiedGrid/>"), false},
		{"gml-lowercase-grid", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			d = jp2Edit(t, d, "<gml:RectifiedGrid ", "<gml:rectifiedgrid ")
			return jp2Edit(t, d, "</gml:RectifiedGrid>", "</gml:rectifiedgrid>")
		}, false},
		{"gml-no-point-srs", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace(`<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG::2154">`, `<gml:Point gml:id="P0001">`), false},
		{"gml-axis-swapped-crs", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			return jp2Edit(t, d, `<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG::2154">`, `<gml:Point gml:id="P0001" srsName="urn:ogc:def:crs:EPSG::4326">`)
		}, false},
		{"gml-entity", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("<gml:pos>700000.25 ", "<gml:pos>700000.25&#32;"), false},
		{"gml-second-root-instance", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			// Another labelled GML box before the first: GDAL keeps the
			// last it reads.
			xmlBox := jp2Find(t, d, "xml ")
			doc := bytes.ReplaceAll(d[xmlBox.off+8:xmlBox.off+xmlBox.size], []byte("700000.25 "), []byte("700750.25 "))
			extra := jp2BoxBytes("asoc", append(jp2BoxBytes("lbl ", []byte("gml.root-instance\x00")), jp2BoxBytes("xml ", doc)...))
			label := jp2Find(t, d, "lbl ") // gml.data, right before the labelled XML's asoc
			return jp2Splice(t, d, label.off+label.size, 0, extra)
		}, false},
		{"gml-root-instance-not-first", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			// A dictionary box before the root instance: GDAL reads the
			// root instance all the same.
			outer := jp2Find(t, d, "lbl ") // gml.data
			extra := jp2BoxBytes("asoc", append(jp2BoxBytes("lbl ", []byte("CRSDictionary.gml\x00")), jp2BoxBytes("xml ", []byte("<Dictionary/>"))...))
			return jp2Splice(t, d, outer.off+outer.size, 0, extra)
		}, true},
		{"gml-label-case", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("gml.root-instance\x00", "GML.Root-Instance\x00"), false},
		{"gml-data-label-upper", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("gml.data\x00", "GML.DATA\x00"), true},
		{"gml-not-gml-data", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, replace("gml.data\x00", "gml.dat2\x00"), false},
		{"icc-colour", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			b := jp2Find(t, d, "colr")
			return jp2Splice(t, d, b.off+8, 1, []byte{2})
		}, false},
		{"cdef-box", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			b := jp2Find(t, d, "colr")
			cdef := jp2BoxBytes("cdef", []byte{0, 3, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3})
			return jp2Splice(t, d, b.off, 0, cdef)
		}, false},
		{"jp2h-after-codestream", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			h := jp2Find(t, d, "jp2h")
			box := append([]byte(nil), d[h.off:h.off+h.size]...)
			return append(append(append([]byte(nil), d[:h.off]...), d[h.off+h.size:]...), box...)
		}, false},
		{"colr-before-ihdr", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			i, c := jp2Find(t, d, "ihdr"), jp2Find(t, d, "colr")
			swapped := append(append([]byte(nil), d[c.off:c.off+c.size]...), d[i.off:i.off+i.size]...)
			return append(append(append([]byte(nil), d[:i.off]...), swapped...), d[c.off+c.size:]...)
		}, false},
		{"ihdr-disagrees-with-siz", tilegen.Tile{EPSG: 2154, Creation: gmlOnly}, func(t *testing.T, d []byte) []byte {
			b := jp2Find(t, d, "ihdr")
			return jp2Splice(t, d, b.off+8, 4, []byte{0, 0, 1, 0x91})
		}, false},
	}
	dir := t.TempDir()
	answered := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".jp2")
			data := jp2Write(t, path, tt.tile)
			if tt.edit != nil {
				data = tt.edit(t, data)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			j, _, err := jp2Scan(t, data)
			if err != nil {
				t.Fatalf("scanJP2: %v", err)
			}
			if p := j.incompleteProblem(); p != nil {
				t.Fatalf("whole file found incomplete: %v", p)
			}
			got, ok := j.header()
			if ok != tt.fast {
				t.Errorf("header() answers = %v, want %v", ok, tt.fast)
			}
			if !ok {
				return
			}
			want, placed := gdalJP2Header(t, path)
			answered++
			if !placed {
				t.Fatalf("header() answers %+v where GDAL finds no usable georeferencing (%+v)", got, want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("header()\n got %+v\nGDAL %+v", got, want)
			}
			gdalOnly = true
			_, ok = j.header()
			gdalOnly = false
			if ok {
				t.Error("header() answers with gdalOnly set")
			}
		})
	}
	if answered == 0 {
		t.Error("header() never answered")
	}
}

// TestJP2GeoJP2FirstLikeGDAL: where GeoJP2 and GMLJP2 disagree, the tile is
// placed where GDAL places it: by its GeoJP2 box, 750 m from its GML.
func TestJP2GeoJP2FirstLikeGDAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.jp2")
	data := jp2Write(t, path, tilegen.Tile{EPSG: 2154, Creation: []string{"GMLJP2=YES", "GeoJP2=YES"}})
	data = jp2Edit(t, data, "<gml:pos>700000.25 ", "<gml:pos>700750.25 ")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := gdalJP2Header(t, path)
	if want.GeoTransform[0] != 700000 {
		t.Fatalf("GDAL places the tile at x = %v: not by its GeoJP2 box", want.GeoTransform[0])
	}
	j, _, err := jp2Scan(t, data)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := j.header()
	if !ok || got.GeoTransform != want.GeoTransform {
		t.Errorf("header() = %+v, %v; GDAL's geotransform %v", got, ok, want.GeoTransform)
	}
}

// jp2Base is a small GDAL-written JP2 (GML only) the hostile tests edit.
func jp2Base(t *testing.T) []byte {
	t.Helper()
	return jp2Write(t, filepath.Join(t.TempDir(), "base.jp2"), tilegen.Tile{EPSG: 2154, Width: 256, Creation: []string{"GeoJP2=NO", "QUALITY=20"}})
}

// jp2SIZ is the offset of the SIZ segment's Lsiz in data.
func jp2SIZ(t *testing.T, data []byte) int {
	t.Helper()
	cs := jp2Find(t, data, "jp2c")
	if !bytes.Equal(data[cs.off+8:cs.off+12], []byte{0xFF, 0x4F, 0xFF, 0x51}) {
		t.Fatal("codestream does not start with SOC, SIZ")
	}
	return cs.off + 12
}

func putU32(data []byte, at int, v uint32) []byte {
	out := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(out[at:], v)
	return out
}

// TestJP2HostileHeaders: every cap sets the file aside as corrupt, with a
// detail naming the limit, before GDAL sees it, after a bounded number of
// reads.
func TestJP2HostileHeaders(t *testing.T) {
	base := jp2Base(t)
	siz := jp2SIZ(t, base)
	ihdr := jp2Find(t, base, "ihdr").off + 8
	sig := base[:jp2Find(t, base, "ftyp").off+jp2Find(t, base, "ftyp").size]
	freeBoxes := func(n, size int) []byte {
		out := append([]byte(nil), sig...)
		for range n {
			out = append(out, jp2BoxBytes("free", make([]byte, size-8))...)
		}
		return append(out, base[len(sig):]...)
	}
	nestedBoxes := func(n int) []byte {
		var kids []byte
		for range n {
			kids = append(kids, jp2BoxBytes("asoc", nil)...)
		}
		asoc := jp2BoxBytes("asoc", append(jp2BoxBytes("lbl ", []byte("gml.data\x00")), kids...))
		return append(append(append([]byte(nil), sig...), asoc...), base[len(sig):]...)
	}
	bigXML := func(n int) []byte {
		box := jp2BoxBytes("xml ", bytes.Repeat([]byte(" "), n))
		return append(append(append([]byte(nil), sig...), box...), base[len(sig):]...)
	}
	tests := []struct {
		name     string
		data     []byte
		want     string
		maxReads int64
	}{
		{"ihdr-2^31-wide", putU32(base, ihdr+4, 1<<31), "side limit", 1},
		{"ihdr-2^32-1-high", putU32(base, ihdr, 1<<32-1), "side limit", 1},
		{"ihdr-components", append(append(append([]byte(nil), base[:ihdr+8]...), 0x40, 0x00), base[ihdr+10:]...), "components", 1},
		{"siz-2^32-1-wide", putU32(base, siz+4, 1<<32-1), "side limit", 1},
		{"siz-2^31-high", putU32(putU32(base, siz+8, 1<<31), siz+28, 0), "side limit", 1},
		{"siz-16384-components", append(append(append([]byte(nil), base[:siz+36]...), 0x40, 0x00), base[siz+38:]...), "components", 1},
		{"siz-1px-tiles", putU32(putU32(base, siz+20, 1), siz+24, 1), "tiles", 1},
		{"siz-52430-tiles", putU32(putU32(putU32(putU32(base, siz+4, 100_000), siz+8, 52430), siz+20, 100_000), siz+24, 1), "tiles", 1},
		{"siz-1e6-square", putU32(putU32(putU32(putU32(base, siz+4, 1_000_000), siz+8, 1_000_000), siz+20, 1_000_000), siz+24, 1_000_000), "samples", 1},
		{"siz-zero-tile", putU32(base, siz+20, 0), "tiles", 1},
		{"many-small-boxes", freeBoxes(100, 8), "top-level boxes", 1},
		{"many-64KiB-boxes", freeBoxes(100, BlockSize), "top-level boxes", maxJP2TopBoxes},
		{"many-nested-boxes", nestedBoxes(1200), "boxes", 1},
		{"big-xml-box", bigXML(2 << 20), "metadata boxes", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, src, err := jp2Scan(t, tt.data)
			var p *Problem
			if !errors.As(err, &p) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("scanJP2: %v, want a corrupt problem", err)
			}
			if !strings.Contains(p.Detail, tt.want) {
				t.Errorf("detail %q does not name the limit %q", p.Detail, tt.want)
			}
			if n := src.reads.Load(); n > tt.maxReads {
				t.Errorf("%d reads (%d bytes) before refusing, want at most %d", n, src.bytes.Load(), tt.maxReads)
			}
			if b := src.bytes.Load(); b > headerBudget+BlockSize {
				t.Errorf("%d bytes read, more than the header budget", b)
			}
			t.Logf("%d bytes, %d reads, %d bytes read: %s", len(tt.data), src.reads.Load(), src.bytes.Load(), p.Detail)
		})
	}
}

// TestJP2OverflowingLengths: box lengths beyond any file (XLBox up to
// 2^64-1) are a cut or impossible box, never an overflow or a panic.
func TestJP2OverflowingLengths(t *testing.T) {
	base := jp2Base(t)
	asoc := jp2Find(t, base, "asoc")
	xl := func(v uint64) []byte {
		out := append([]byte(nil), base[:asoc.off]...)
		out = binary.BigEndian.AppendUint32(out, 1)
		out = append(out, "asoc"...)
		out = binary.BigEndian.AppendUint64(out, v)
		return append(out, base[asoc.off+8:]...)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"xlbox-maxint64", xl(math.MaxInt64), "transfer cut short"},
		{"xlbox-2^64-1", xl(math.MaxUint64), "impossible length"},
		{"xlbox-2^63", xl(1 << 63), "impossible length"},
		{"lbox-4", putU32(base, asoc.off, 4), "impossible length"},
		{"lbox-2^32-1", putU32(base, asoc.off, math.MaxUint32), "transfer cut short"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, src, err := jp2Scan(t, tt.data)
			if err != nil {
				t.Fatalf("scanJP2: %v", err)
			}
			p := j.incompleteProblem()
			if p == nil || !errors.Is(p, ErrCorrupt) || !strings.Contains(p.Detail, tt.want) {
				t.Fatalf("incomplete = %v, want %q", p, tt.want)
			}
			if n := src.reads.Load(); n != 1 {
				t.Errorf("%d reads, want 1", n)
			}
		})
	}
}

// TestJP2CutTransfer: a file cut short keeps its header and says so, at the
// cost of no request beyond the header's: a box past the object's end, or
// a tile-part past the codestream's end when the codestream box runs to
// the end of the file.
func TestJP2CutTransfer(t *testing.T) {
	dir := t.TempDir()
	whole := jp2Write(t, filepath.Join(dir, "w.jp2"), tilegen.Tile{EPSG: 2154, Width: 1000, Creation: []string{"GeoJP2=NO", "QUALITY=50", "BLOCKXSIZE=256", "BLOCKYSIZE=256"}})
	cs := jp2Find(t, whole, "jp2c")
	toEnd := putU32(whole, cs.off, 0) // LBox 0: the codestream runs to the end
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"box-past-end", whole[:len(whole)/2], `box "jp2c"`},
		{"tile-part-past-end", toEnd[:BlockSize-100], "tile-part"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, src, err := jp2Scan(t, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			p := j.incompleteProblem()
			if p == nil || !strings.Contains(p.Detail, tt.want) || !strings.Contains(p.Detail, "transfer cut short") {
				t.Fatalf("incomplete = %v, want %s cut short", p, tt.want)
			}
			if _, ok := j.header(); !ok {
				t.Error("header() declines a file whose header is whole")
			}
			if n := src.reads.Load(); n != 1 {
				t.Errorf("%d reads, want 1", n)
			}
		})
	}
	j, src, err := jp2Scan(t, whole)
	if err != nil || j.incompleteProblem() != nil {
		t.Fatalf("whole file: %v, %v", err, j.incompleteProblem())
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("whole file: %d reads, want 1", n)
	}
}

// TestJP2BareCodestream: a raw J2K codestream gets the same caps, and
// header() leaves it to GDAL.
func TestJP2BareCodestream(t *testing.T) {
	base := jp2Base(t)
	cs := jp2Find(t, base, "jp2c")
	raw := base[cs.off+8:]
	j, _, err := jp2Scan(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.header(); ok {
		t.Error("header() answers for a raw codestream")
	}
	_, _, err = jp2Scan(t, putU32(raw, 8, 1<<31)) // Xsiz
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("raw codestream 2^31 wide: %v", err)
	}
}

// BenchmarkScanJP2: scanJP2 and header() on a GDAL-written tile whose
// header is in the first block (GeoJP2 and GMLJP2 boxes, the default).
func BenchmarkScanJP2(b *testing.B) {
	path := filepath.Join(b.TempDir(), "t.jp2")
	if err := (tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Creation: []string{"QUALITY=20"}}).Write(path); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		j, _, err := jp2Scan(b, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := j.header(); !ok {
			b.Fatal("header() declines")
		}
	}
}

// TestJP2HostileSetAsideBeforeGDAL: through Inspect, a file declaring
// 52,430 codestream tiles (676 MB for OpenJPEG to open) is set aside with
// the scan's verdict, from the first block only: GDAL never opens it.
func TestJP2HostileSetAsideBeforeGDAL(t *testing.T) {
	base := jp2Base(t)
	siz := jp2SIZ(t, base)
	data := putU32(putU32(putU32(putU32(base, siz+4, 100_000), siz+8, 52430), siz+20, 100_000), siz+24, 1)
	src := &jp2Mem{data: data}
	_, err := Inspect(context.Background(), src, File{Key: "hostile.jp2", Size: int64(len(data))}, nil)
	var p *Problem
	if !errors.As(err, &p) || !errors.Is(err, ErrCorrupt) || !strings.Contains(p.Detail, "52430 tiles") {
		t.Fatalf("Inspect: %v, want the tile-count limit", err)
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
}
