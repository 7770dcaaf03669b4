// Package crs asks PROJ, through GDAL, for what godal does not wrap: the
// area of use of an EPSG CRS.
package crs

/*
#cgo pkg-config: gdal
#include "cpl_error.h"
#include "ogr_srs_api.h"

// fp_area_of_use fills the bounds, in degrees, and returns 1, or 0 when the
// code is unknown or has no area of use.
static int fp_area_of_use(int code, double *w, double *s, double *e, double *n) {
	int ok = 0;
	CPLPushErrorHandler(CPLQuietErrorHandler);
	OGRSpatialReferenceH h = OSRNewSpatialReference(NULL);
	if (h != NULL) {
		if (OSRImportFromEPSG(h, code) == OGRERR_NONE) {
			const char *name = NULL;
			ok = OSRGetAreaOfUse(h, w, s, e, n, &name);
		}
		OSRDestroySpatialReference(h);
	}
	CPLPopErrorHandler();
	return ok;
}
*/
import "C"

// Area is an area of use in degrees. West > East when it crosses the
// antimeridian.
type Area struct{ West, South, East, North float64 }

// AreaOfUse is EPSG:code's area of use; false when PROJ knows none.
func AreaOfUse(code int) (Area, bool) {
	var w, s, e, n C.double
	if code <= 0 || code > 1<<30 || C.fp_area_of_use(C.int(code), &w, &s, &e, &n) == 0 {
		return Area{}, false
	}
	return Area{float64(w), float64(s), float64(e), float64(n)}, true
}
