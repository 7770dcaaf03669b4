package corpus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/airbusgeo/godal"
)

// lcc93 is Lambert-93 spelt as a PROJ string: no EPSG code attached.
const lcc93 = "+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs"

// lccOther is a user-defined conic conformal projection matching no EPSG CRS.
const lccOther = "+proj=lcc +lat_0=46.8 +lon_0=2.5 +lat_1=48.5 +lat_2=45 +x_0=600000 +y_0=2200000 +ellps=GRS80 +units=m +no_defs"

// gen accumulates cases written into dir.
type gen struct {
	dir   string
	cases []Case
	err   error
}

func (g *gen) path(name string) string { return filepath.Join(g.dir, name) }

// add records a case whose tile and siblings are in dir.
func (g *gen) add(name, tile, writer, note string, siblings ...string) {
	c := Case{Name: name, Path: g.path(tile), Note: note, Writer: writer}
	for _, s := range siblings {
		c.Siblings = append(c.Siblings, g.path(s))
	}
	g.cases = append(g.cases, c)
}

// gdal writes a tile with GDAL and records it; a codec GDAL lacks becomes
// an Unwritable case.
func (g *gen) gdal(name, ext string, r tileSpec, note string) {
	if g.err != nil {
		return
	}
	tile := name + ext
	err := r.write(g.path(tile))
	if errors.Is(err, errNoCodec) {
		g.cases = append(g.cases, Case{Name: name, Note: note, Writer: WriterGDAL, Unwritable: err.Error(), Driver: r.driver, Creation: r.creation})
		return
	}
	if err != nil {
		g.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	g.add(name, tile, WriterGDAL, note)
	last := &g.cases[len(g.cases)-1]
	last.Driver, last.Creation = r.driver, r.creation
}

// withSiblings writes a tile with GDAL, then sibling files (name suffix →
// content) beside it.
func (g *gen) withSiblings(name, ext string, r tileSpec, note string, sibs map[string]string) {
	if g.err != nil {
		return
	}
	if err := r.write(g.path(name + ext)); err != nil {
		g.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	var names []string
	for suffix, content := range sibs {
		if err := writeText(g.path(name+suffix), content); err != nil {
			g.err = err
			return
		}
		names = append(names, name+suffix)
	}
	g.add(name, name+ext, WriterGDAL, note, names...)
}

// edit writes a tile with GDAL, then rewrites its bytes.
func (g *gen) edit(name, ext string, r tileSpec, note string, fn func(path string) error) {
	if g.err != nil {
		return
	}
	p := g.path(name + ext)
	if err := r.write(p); err != nil {
		g.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	if err := fn(p); err != nil {
		g.err = fmt.Errorf("%s: editing: %w", name, err)
		return
	}
	g.add(name, name+ext, WriterGDALEdit, note)
}

func jp2(creation ...string) tileSpec {
	r := defaultRaster("JP2OpenJPEG")
	r.creation = creation
	return r
}

func gtiff(creation ...string) tileSpec {
	r := defaultRaster("GTiff")
	r.creation = creation
	return r
}

// Georef writes, into dir, tiles covering every georeferencing source GDAL
// reads and their combinations, each compression, band layout and TIFF
// structure a PCRS delivery may use: the corpus compared with plain GDAL.
// Codecs this GDAL cannot write come back as Unwritable cases.
func Georef(dir string) ([]Case, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gen{dir: dir}
	georefSources(g)
	crsForms(g)
	transforms(g)
	encodings(g)
	return g.cases, g.err
}

func georefSources(g *gen) {
	other := l93(701000, 6601032, 0.25)
	g.gdal("jp2_geojp2_only", ".jp2", jp2("GMLJP2=NO", "GeoJP2=YES"), "JP2 georeferenced by a GeoJP2 box only")
	g.gdal("jp2_gmljp2_only", ".jp2", jp2("GMLJP2=YES", "GeoJP2=NO"), "JP2 georeferenced by a GMLJP2 v1 box only")
	g.gdal("jp2_both_agree", ".jp2", jp2("GMLJP2=YES", "GeoJP2=YES"), "JP2 with GeoJP2 and GMLJP2 saying the same")
	g.edit("jp2_both_disagree", ".jp2", jp2("GMLJP2=YES", "GeoJP2=YES"), "JP2 whose GMLJP2 origin (edited) disagrees with its GeoJP2", func(p string) error {
		return editJP2(p, func(bs []box) ([]box, error) { return editGMLOrigin(bs, "701000.25 6601031.75") })
	})
	g.gdal("jp2_gmljp2_v2", ".jp2", jp2("GMLJP2=YES", "GeoJP2=NO", "GMLJP2V2_DEF=YES"), "JP2 with a GMLJP2 v2 box only")
	g.edit("jp2_gml_only_edited", ".jp2", jp2("GMLJP2=YES", "GeoJP2=NO"), "JP2 whose only GMLJP2 box has an edited origin and resolution", func(p string) error {
		return editJP2(p, func(bs []box) ([]box, error) {
			bs, err := editGMLOrigin(bs, "712000.1 6612000.1")
			if err != nil {
				return nil, err
			}
			return editGMLOffsets(bs, "0.2 0", "0 -0.2")
		})
	})

	noGeo := func(r tileSpec) tileSpec { r.gt, r.srs = [6]float64{}, ""; return r }
	gt := defaultRaster("GTiff").gt
	g.withSiblings("jp2_worldfile_only", ".jp2", noGeo(jp2()), "JP2 with no internal georeferencing, a .j2w beside it", map[string]string{".j2w": worldFile(gt)})
	g.withSiblings("tif_worldfile_only", ".tif", noGeo(gtiff()), "TIFF with no GeoTIFF tags, a .tfw beside it", map[string]string{".tfw": worldFile(gt)})
	g.withSiblings("tif_worldfile_upper", ".TIF", noGeo(gtiff()), "upper-case TIFF with a .TFW beside it", map[string]string{".TFW": worldFile(gt)})
	g.withSiblings("tif_worldfile_prj", ".tif", noGeo(gtiff()), "TIFF with a .tfw and a .prj (WKT of EPSG:2154)", map[string]string{".tfw": worldFile(gt), ".prj": mustWKT("EPSG:2154")})
	g.withSiblings("jp2_worldfile_prj_esri", ".jp2", noGeo(jp2()), "JP2 with a .j2w and an ESRI .prj", map[string]string{".j2w": worldFile(gt), ".prj": esriL93})
	g.withSiblings("tif_worldfile_and_tags", ".tif", gtiff(), "TIFF with GeoTIFF tags and a .tfw saying otherwise", map[string]string{".tfw": worldFile(other)})
	g.withSiblings("jp2_worldfile_and_gml", ".jp2", jp2(), "JP2 with GMLJP2/GeoJP2 and a .j2w saying otherwise", map[string]string{".j2w": worldFile(other)})

	g.withSiblings("tif_aux_overrides", ".tif", gtiff(), "TIFF in EPSG:2154 with a .aux.xml giving EPSG:3946 and another geotransform", map[string]string{".tif.aux.xml": auxXML(mustWKT("EPSG:3946"), &other)})
	g.withSiblings("jp2_aux_overrides", ".jp2", jp2(), "JP2 in EPSG:2154 with a .aux.xml giving EPSG:3946 and another geotransform", map[string]string{".jp2.aux.xml": auxXML(mustWKT("EPSG:3946"), &other)})
	noCRS := func(r tileSpec) tileSpec { r.srs = ""; return r }
	g.withSiblings("tif_aux_srs_only", ".tif", noCRS(gtiff()), "TIFF with a geotransform but no CRS, the CRS in .aux.xml", map[string]string{".tif.aux.xml": auxXML(mustWKT("EPSG:2154"), nil)})
	g.withSiblings("tif_aux_srs_overrides", ".tif", gtiff(), "TIFF in EPSG:2154, .aux.xml with only an SRS (EPSG:3945)", map[string]string{".tif.aux.xml": auxXML(mustWKT("EPSG:3945"), nil)})
	g.withSiblings("jp2_aux_srs_only", ".jp2", noCRS(jp2()), "JP2 with a geotransform but no CRS, the CRS in .aux.xml", map[string]string{".jp2.aux.xml": auxXML(mustWKT("EPSG:2154"), nil)})
	g.withSiblings("tif_aux_esri", ".tif", noCRS(gtiff()), "TIFF without CRS, ESRI WKT of Lambert-93 in .aux.xml", map[string]string{".tif.aux.xml": auxXML(esriL93, nil)})
	g.withSiblings("jp2_aux_esri", ".jp2", noCRS(jp2()), "JP2 without CRS, ESRI WKT of Lambert-93 in .aux.xml", map[string]string{".jp2.aux.xml": auxXML(esriL93, nil)})
	g.withSiblings("tif_aux_short_name", ".tif", noCRS(gtiff()), "TIFF without CRS, CRS in NAME.aux.xml (not NAME.tif.aux.xml)", map[string]string{".aux.xml": auxXML(mustWKT("EPSG:2154"), nil)})
	g.gdal("tif_no_crs", ".tif", noCRS(gtiff()), "TIFF with a geotransform and no CRS at all")
	g.gdal("jp2_no_crs", ".jp2", noCRS(jp2()), "JP2 with a geotransform and no CRS at all")
	g.gdal("tif_no_georef", ".tif", noGeo(gtiff()), "TIFF with no georeferencing at all")
	g.gdal("jp2_no_georef", ".jp2", noGeo(jp2()), "JP2 with no georeferencing at all")
}

func crsForms(g *gen) {
	g.edit("tif_feet_units", ".tif", gtiff(), "GeoTIFF keeping ProjectedCSTypeGeoKey 2154 but ProjLinearUnitsGeoKey = US survey foot (hand-edited key)", func(p string) error {
		return setGeoKey(p, 3076, 9003)
	})
	g.edit("tif_geog_key_4326", ".tif", gtiff(), "GeoTIFF keeping ProjectedCSTypeGeoKey 2154 and a GeographicTypeGeoKey 4326 added by editing", func(p string) error {
		return setGeoKey(p, 2048, 4326)
	})
	for _, d := range []struct{ name, ext, drv string }{{"tif", ".tif", "GTiff"}, {"jp2", ".jp2", "JP2OpenJPEG"}} {
		r := defaultRaster(d.drv)
		r.srs = "EPSG:2154+5720"
		g.gdal(d.name+"_compound_2154_5720", d.ext, r, "compound CRS: Lambert-93 + NGF-IGN69 height")
		// GDAL's GMLJP2 writer cannot express a user-defined projection:
		// such a JP2 carries it in its GeoJP2 box only.
		if d.drv == "JP2OpenJPEG" {
			r.creation = []string{"GMLJP2=NO"}
		}
		r.srs = lcc93
		g.gdal(d.name+"_proj_lcc_l93", d.ext, r, "user-defined LCC equal to Lambert-93, no EPSG code")
		r.srs = lccOther
		g.gdal(d.name+"_proj_lcc_other", d.ext, r, "user-defined LCC matching no EPSG CRS")
		r.srs = esriL93
		g.gdal(d.name+"_esri_wkt", d.ext, r, "CRS given to the writer as ESRI WKT of Lambert-93")
		r.creation = nil
		r.srs = "EPSG:4326"
		r.gt = [6]float64{2.35, 1e-5, 0, 48.85, 0, -1e-5}
		g.gdal(d.name+"_epsg_4326", d.ext, r, "geographic CRS (lat/long axis order)")
	}
	for zone := 42; zone <= 50; zone++ {
		r := defaultRaster([]string{"GTiff", "JP2OpenJPEG"}[zone%2])
		r.srs = fmt.Sprintf("EPSG:%d", 3900+zone)
		r.gt = l93(1700000, float64(zone-41)*1e6+200032, 0.05)
		ext := []string{".tif", ".jp2"}[zone%2]
		g.gdal(fmt.Sprintf("cc%d", zone), ext, r, fmt.Sprintf("conic conformal zone CC%d (EPSG:%d)", zone, 3900+zone))
	}
}

func transforms(g *gen) {
	for _, d := range []struct{ name, ext, drv string }{{"tif", ".tif", "GTiff"}, {"jp2", ".jp2", "JP2OpenJPEG"}} {
		r := defaultRaster(d.drv)
		r.gt = [6]float64{700000, 0, 0.5, 6600032, -0.5, 0}
		g.gdal(d.name+"_transposed", d.ext, r, "transposed geotransform [x0,0,r,y0,-r,0]")
		r.gt = [6]float64{700000, 0.49, 0.1, 6600032, 0.1, -0.49}
		g.gdal(d.name+"_rotated", d.ext, r, "rotated geotransform")
		r.gt = [6]float64{700000.123456789, 0.050000001, 0, 6600032.987654321, 0, -0.049999999}
		g.gdal(d.name+"_odd_resolution", d.ext, r, "non-round origin and pixel size (exact float comparison)")
	}
	r := gtiff()
	r.metadata = map[string]string{"AREA_OR_POINT": "Point"}
	g.gdal("tif_pixel_is_point", ".tif", r, "GeoTIFF with RasterPixelIsPoint")
	r = jp2()
	r.metadata = map[string]string{"AREA_OR_POINT": "Point"}
	g.gdal("jp2_pixel_is_point", ".jp2", r, "JP2 written from a PixelIsPoint dataset")
}

func encodings(g *gen) {
	for _, c := range []string{"NONE", "DEFLATE", "LZW", "ZSTD", "LERC", "LERC_DEFLATE", "LERC_ZSTD", "WEBP", "JPEG", "PACKBITS", "LZMA", "JXL"} {
		g.gdal("tif_"+strings.ToLower(c), ".tif", gtiff("COMPRESS="+c), "GeoTIFF compressed with "+c)
	}
	g.gdal("tif_ycbcr_jpeg", ".tif", gtiff("COMPRESS=JPEG", "PHOTOMETRIC=YCBCR"), "GeoTIFF in YCbCr JPEG")
	g.gdal("tif_webp_lossless", ".tif", gtiff("COMPRESS=WEBP", "WEBP_LOSSLESS=YES"), "GeoTIFF in lossless WebP")
	g.gdal("jp2_lossy", ".jp2", jp2("QUALITY=20", "REVERSIBLE=NO"), "lossy JPEG 2000 (9/7 wavelet)")
	g.gdal("jp2_lossless", ".jp2", jp2("QUALITY=100", "REVERSIBLE=YES"), "lossless JPEG 2000 (5/3 wavelet)")
	g.gdal("jp2_reversible_truncated", ".jp2", jp2("QUALITY=30", "REVERSIBLE=YES"), "reversible wavelet with truncated layers")
	g.gdal("jp2_tiled", ".jp2", jp2("BLOCKXSIZE=32", "BLOCKYSIZE=32"), "JP2 with 4 codestream tiles")
	for _, d := range []struct{ name, ext, drv string }{{"tif", ".tif", "GTiff"}, {"jp2", ".jp2", "JP2OpenJPEG"}} {
		r := defaultRaster(d.drv)
		r.bands = 1
		g.gdal(d.name+"_1band", d.ext, r, "one grey band")
		r = defaultRaster(d.drv)
		r.bands, r.alpha = 4, true
		if d.drv == "GTiff" {
			r.creation = []string{"ALPHA=YES"}
		}
		g.gdal(d.name+"_4band_alpha", d.ext, r, "RGB plus alpha")
		r = defaultRaster(d.drv)
		r.bands = 4
		g.gdal(d.name+"_4band_irc", d.ext, r, "RGB plus an undefined (infrared) band")
		r = defaultRaster(d.drv)
		r.dataType = godal.UInt16
		g.gdal(d.name+"_uint16", d.ext, r, "UInt16 RGB")
	}
	g.gdal("tif_bigtiff", ".tif", gtiff("BIGTIFF=YES"), "BigTIFF")
	g.gdal("tif_bigtiff_tiled_deflate", ".tif", gtiff("BIGTIFF=YES", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "COMPRESS=DEFLATE"), "BigTIFF, tiled, DEFLATE")
	g.gdal("tif_tiled", ".tif", gtiff("TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"), "tiled GeoTIFF, 16 tiles")
	g.gdal("tif_striped", ".tif", gtiff("BLOCKYSIZE=4"), "striped GeoTIFF, 16 strips")
	g.gdal("tif_band_interleaved", ".tif", gtiff("INTERLEAVE=BAND"), "planar (band-interleaved) GeoTIFF")
}

func mustWKT(srs string) string {
	w, err := wktOf(srs)
	if err != nil {
		panic(fmt.Sprintf("GDAL cannot build %s: %v", srs, err))
	}
	return w
}

func editJP2(path string, fn func([]box) ([]box, error)) error {
	bs, err := readBoxes(path)
	if err != nil {
		return err
	}
	if bs, err = fn(bs); err != nil {
		return err
	}
	return writeBoxes(path, bs)
}

// setGeoKey sets a GeoKey held in the directory itself (SHORT value) of a
// GDAL-written GeoTIFF, in place: the key is overwritten when present,
// else the least important key is repurposed so the directory keeps its size.
func setGeoKey(path string, key, value uint16) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dir, err := geoKeyDirectory(b)
	if err != nil {
		return err
	}
	o := tiffOrder(b)
	n := int(o.Uint16(b[dir+6:]))
	for i := 0; i < n; i++ {
		at := dir + 8 + 8*i
		if o.Uint16(b[at:]) == key {
			o.PutUint16(b[at+2:], 0)
			o.PutUint16(b[at+4:], 1)
			o.PutUint16(b[at+6:], value)
			return os.WriteFile(path, b, 0o644)
		}
	}
	// Repurpose the GTCitationGeoKey (1026): keys must stay sorted, so the
	// new key takes its slot only if the order holds.
	keys := make([]uint16, n)
	for i := range keys {
		keys[i] = o.Uint16(b[dir+8+8*i:])
	}
	for i, k := range keys {
		if k != 1026 && k != 3073 {
			continue
		}
		pos := i
		if (pos > 0 && keys[pos-1] >= key) || (pos+1 < n && keys[pos+1] <= key) {
			continue
		}
		at := dir + 8 + 8*pos
		o.PutUint16(b[at:], key)
		o.PutUint16(b[at+2:], 0)
		o.PutUint16(b[at+4:], 1)
		o.PutUint16(b[at+6:], value)
		return os.WriteFile(path, b, 0o644)
	}
	return fmt.Errorf("GeoKey %d absent and no slot to put it in (keys %v)", key, keys)
}

func tiffOrder(b []byte) byteOrder {
	if len(b) > 1 && b[0] == 'M' {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// geoKeyDirectory finds the GeoKeyDirectoryTag's array in a classic TIFF's
// first IFD.
func geoKeyDirectory(b []byte) (int, error) {
	o := tiffOrder(b)
	if len(b) < 8 || o.Uint16(b[2:]) != 42 {
		return 0, errors.New("not a classic TIFF")
	}
	ifd := int(o.Uint32(b[4:]))
	n := int(o.Uint16(b[ifd:]))
	for i := 0; i < n; i++ {
		e := ifd + 2 + 12*i
		if o.Uint16(b[e:]) == 34735 {
			return int(o.Uint32(b[e+8:])), nil
		}
	}
	return 0, errors.New("no GeoKeyDirectoryTag")
}
