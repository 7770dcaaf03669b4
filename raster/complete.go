package raster

import (
	"strconv"

	"github.com/airbusgeo/godal"
)

// checkComplete finds, from the header alone, a tile whose transfer was cut
// short: it declares more data than the object holds. It also finds a
// GeoTIFF whose every block is sparse (no pixels written).
func checkComplete(o *openObject, obj File, ds *godal.Dataset, h *Header) error {
	f := o.file(obj.Key)
	switch h.Driver {
	case "JP2OpenJPEG", "JPEG2000":
		return checkJP2(o, f)
	case "GTiff":
		return checkTIFF(ds, f.size)
	}
	return nil
}

// checkTIFF compares every strip or tile's declared offset and byte count,
// as GDAL read them from the IFD, with the object's size.
func checkTIFF(ds *godal.Dataset, size int64) error {
	bands := ds.Bands()
	if len(bands) == 0 {
		return nil
	}
	interleave := ds.Metadata("INTERLEAVE", godal.Domain("IMAGE_STRUCTURE"))
	if interleave != "BAND" {
		bands = bands[:1] // pixel-interleaved: one set of blocks for all bands
	}
	st := bands[0].Structure()
	nx := (st.SizeX + st.BlockSizeX - 1) / st.BlockSizeX
	ny := (st.SizeY + st.BlockSizeY - 1) / st.BlockSizeY
	var written int
	for bi, b := range bands {
		for y := range ny {
			for x := range nx {
				suffix := strconv.Itoa(x) + "_" + strconv.Itoa(y)
				offStr := b.Metadata("BLOCK_OFFSET_"+suffix, godal.Domain("TIFF"))
				if offStr == "" {
					continue // sparse block: never written
				}
				off, err1 := strconv.ParseInt(offStr, 10, 64)
				n, err2 := strconv.ParseInt(b.Metadata("BLOCK_SIZE_"+suffix, godal.Domain("TIFF")), 10, 64)
				if err1 != nil || err2 != nil {
					continue
				}
				if off == 0 && n == 0 {
					continue
				}
				written++
				if off+n > size {
					return problem(ErrCorrupt, "TIFF block %d,%d of band %d declares %d bytes at byte %d, ending at byte %d, but the object holds %d bytes: transfer cut short", x, y, bi+1, n, off, off+n, size)
				}
			}
		}
	}
	if written == 0 {
		return problem(ErrEmpty, "no pixels: every one of the %d blocks is sparse (never written)", nx*ny*len(bands))
	}
	return nil
}
