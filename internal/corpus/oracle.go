package corpus

// #cgo pkg-config: gdal
// #include <stdlib.h>
// #include "ogr_srs_api.h"
// #include "cpl_conv.h"
//
// static int corpusMatchEPSG(const char *wkt) {
//	OGRSpatialReferenceH sr = OSRNewSpatialReference(NULL);
//	char *w = (char *)wkt;
//	int code = 0;
//	if (OSRImportFromWkt(sr, &w) != OGRERR_NONE) {
//		OSRDestroySpatialReference(sr);
//		return 0;
//	}
//	int n = 0;
//	int *confidence = NULL;
//	OGRSpatialReferenceH *matches = OSRFindMatches(sr, NULL, &n, &confidence);
//	if (matches != NULL && n >= 1 && confidence[0] == 100) {
//		const char *auth = OSRGetAuthorityName(matches[0], NULL);
//		const char *c = OSRGetAuthorityCode(matches[0], NULL);
//		if (auth != NULL && c != NULL && EQUAL(auth, "EPSG")) {
//			code = atoi(c);
//		}
//	}
//	if (matches != NULL) {
//		OSRFreeSRSArray(matches);
//	}
//	CPLFree(confidence);
//	OSRDestroySpatialReference(sr);
//	return code;
// }
import "C"

import "unsafe"

// FindMatchEPSG is the EPSG code GDAL's OSRFindMatches gives the CRS with
// full confidence (100), or 0: GDAL's last resort when a CRS carries no
// authority code and AutoIdentifyEPSG cannot name it.
func FindMatchEPSG(wkt string) int {
	register()
	cw := C.CString(wkt)
	defer C.free(unsafe.Pointer(cw))
	return int(C.corpusMatchEPSG(cw))
}
