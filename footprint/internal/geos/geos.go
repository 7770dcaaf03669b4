// Package geos calls GDAL's cascaded union (GEOS underneath), which godal
// does not wrap: the reference the exact union is measured against.
package geos

/*
#cgo pkg-config: gdal
#include <stdlib.h>
#include "ogr_api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// UnionCascaded unions the polygons of a WKB MultiPolygon and returns the
// result as WKB.
func UnionCascaded(wkb []byte) ([]byte, error) {
	if len(wkb) == 0 {
		return nil, errors.New("empty WKB")
	}
	buf := C.CBytes(wkb)
	defer C.free(buf)
	var g C.OGRGeometryH
	if e := C.OGR_G_CreateFromWkb(buf, nil, &g, C.int(len(wkb))); e != C.OGRERR_NONE {
		return nil, fmt.Errorf("reading WKB: OGR error %d", int(e))
	}
	defer C.OGR_G_DestroyGeometry(g)
	u := C.OGR_G_UnionCascaded(g)
	if u == nil {
		return nil, errors.New("cascaded union failed")
	}
	defer C.OGR_G_DestroyGeometry(u)
	n := C.OGR_G_WkbSize(u)
	out := make([]byte, int(n))
	if e := C.OGR_G_ExportToWkb(u, C.wkbNDR, (*C.uchar)(unsafe.Pointer(&out[0]))); e != C.OGRERR_NONE {
		return nil, fmt.Errorf("writing WKB: OGR error %d", int(e))
	}
	return out, nil
}
