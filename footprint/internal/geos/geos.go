// Package geos calls the GEOS operations GDAL exposes and godal does not
// wrap (cascaded union, make-valid) on WKB geometries. GEOS errors come back
// as Go errors: they are caught in C under a quiet, thread-local error
// handler, so they neither print nor race with other goroutines' GDAL calls.
package geos

/*
#cgo pkg-config: gdal
#include <stdio.h>
#include <stdlib.h>
#include "cpl_error.h"
#include "ogr_api.h"

enum { opUnionCascaded, opUnion, opMakeValid, opBuffer0, opValid };

// fp_op reads a (and b for a binary op) from WKB, applies op and returns
// the result, or NULL with GDAL's message in msg. For opValid the result is
// NULL and *valid is set.
static OGRGeometryH fp_op(int op, void *a, int na, void *b, int nb, int *valid, char *msg, int nmsg) {
	OGRGeometryH ga = NULL, gb = NULL, r = NULL;
	CPLPushErrorHandler(CPLQuietErrorHandler);
	CPLErrorReset();
	if (OGR_G_CreateFromWkb(a, NULL, &ga, na) != OGRERR_NONE) {
		snprintf(msg, nmsg, "reading WKB");
		goto done;
	}
	if (b != NULL && OGR_G_CreateFromWkb(b, NULL, &gb, nb) != OGRERR_NONE) {
		snprintf(msg, nmsg, "reading WKB");
		goto done;
	}
	switch (op) {
	case opUnionCascaded: r = OGR_G_UnionCascaded(ga); break;
	case opUnion: r = OGR_G_Union(ga, gb); break;
	case opMakeValid: r = OGR_G_MakeValid(ga); break;
	case opBuffer0: r = OGR_G_Buffer(ga, 0, 8); break;
	case opValid: *valid = OGR_G_IsValid(ga); break;
	}
	if (r == NULL && op != opValid) {
		snprintf(msg, nmsg, "%s", CPLGetLastErrorMsg());
	}
done:
	CPLPopErrorHandler();
	if (ga != NULL) OGR_G_DestroyGeometry(ga);
	if (gb != NULL) OGR_G_DestroyGeometry(gb);
	return r;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrGEOS wraps every failure of a GEOS operation.
var ErrGEOS = errors.New("GEOS")

// UnionCascaded unions the polygons of a WKB MultiPolygon, overlapping or
// not, and returns the result as WKB.
func UnionCascaded(wkb []byte) ([]byte, error) {
	return op(C.opUnionCascaded, wkb, nil)
}

// Union is the union of two WKB geometries.
func Union(a, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty WKB", ErrGEOS)
	}
	return op(C.opUnion, a, b)
}

// MakeValid repairs a WKB geometry (GEOS MakeValid): a self-intersecting
// ring becomes the polygons it encloses. The result may be a collection
// holding lines or points besides polygons.
func MakeValid(wkb []byte) ([]byte, error) {
	return op(C.opMakeValid, wkb, nil)
}

// Buffer0 is the zero-width buffer of a WKB geometry, the classic repair
// when MakeValid fails.
func Buffer0(wkb []byte) ([]byte, error) {
	return op(C.opBuffer0, wkb, nil)
}

// Valid says whether a WKB geometry is valid by OGC rules.
func Valid(wkb []byte) (bool, error) {
	if len(wkb) == 0 {
		return false, fmt.Errorf("%w: empty WKB", ErrGEOS)
	}
	var valid C.int
	var msg [256]C.char
	a := C.CBytes(wkb)
	defer C.free(a)
	C.fp_op(C.opValid, a, C.int(len(wkb)), nil, 0, &valid, &msg[0], C.int(len(msg)))
	if s := C.GoString(&msg[0]); s != "" {
		return false, fmt.Errorf("%w: %s", ErrGEOS, s)
	}
	return valid != 0, nil
}

func op(code C.int, a, b []byte) ([]byte, error) {
	if len(a) == 0 {
		return nil, fmt.Errorf("%w: empty WKB", ErrGEOS)
	}
	ca := C.CBytes(a)
	defer C.free(ca)
	var cb unsafe.Pointer
	if len(b) > 0 {
		cb = C.CBytes(b)
		defer C.free(cb)
	}
	var msg [256]C.char
	g := C.fp_op(code, ca, C.int(len(a)), cb, C.int(len(b)), nil, &msg[0], C.int(len(msg)))
	if g == nil {
		return nil, fmt.Errorf("%w: %s", ErrGEOS, C.GoString(&msg[0]))
	}
	defer C.OGR_G_DestroyGeometry(g)
	n := C.OGR_G_WkbSize(g)
	if n <= 0 {
		return nil, fmt.Errorf("%w: empty result", ErrGEOS)
	}
	out := make([]byte, int(n))
	if e := C.OGR_G_ExportToWkb(g, C.wkbNDR, (*C.uchar)(unsafe.Pointer(&out[0]))); e != C.OGRERR_NONE {
		return nil, fmt.Errorf("%w: writing WKB: OGR error %d", ErrGEOS, int(e))
	}
	return out, nil
}
