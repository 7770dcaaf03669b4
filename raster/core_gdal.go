package raster

// The GDAL calls made here, rather than through godal, are the ones whose
// results must not cross the cgo boundary as strings GDAL may keep in a
// per-thread buffer, and the process-wide error handler godal does not
// offer: everything below returns integers, or copies inside C.

/*
#cgo pkg-config: gdal
#include <stdlib.h>
#include <string.h>
#include <cpl_error.h>
#include <cpl_conv.h>
#include <ogr_srs_api.h>

extern void coreGDALMessage(int level, int code, char *msg);

static int core_log_enabled;

// Messages raised outside a godal call (godal pushes its own handler around
// each of its calls) land here instead of on stderr.
static void core_error_handler(CPLErr level, CPLErrorNum code, const char *msg) {
	if (__atomic_load_n(&core_log_enabled, __ATOMIC_RELAXED)) {
		coreGDALMessage((int)level, (int)code, (char *)msg);
	}
}

static void core_install_error_handler(void) {
	CPLSetErrorHandler(core_error_handler);
}

static void core_set_logging(int on) {
	__atomic_store_n(&core_log_enabled, on, __ATOMIC_RELAXED);
}

static void core_raise(const char *msg) {
	CPLError(CE_Failure, CPLE_AppDefined, "%s", msg);
}

static int core_epsg_code(OGRSpatialReferenceH sr) {
	const char *name = OSRGetAuthorityName(sr, NULL);
	const char *code = OSRGetAuthorityCode(sr, NULL);
	if (name == NULL || code == NULL || strcmp(name, "EPSG") != 0) {
		return 0;
	}
	return atoi(code);
}

// core_identify_epsg returns the WKT's own EPSG code, else the only EPSG CRS
// PROJ matches with full confidence, else 0; -1 when the WKT is unreadable.
static int core_identify_epsg(const char *wkt) {
	OGRSpatialReferenceH sr = OSRNewSpatialReference(NULL);
	char *cursor = (char *)wkt;
	if (OSRImportFromWkt(sr, &cursor) != OGRERR_NONE) {
		OSRDestroySpatialReference(sr);
		return -1;
	}
	int found = core_epsg_code(sr);
	if (found == 0) {
		int n = 0, *confidence = NULL, hits = 0;
		OGRSpatialReferenceH *matches = OSRFindMatches(sr, NULL, &n, &confidence);
		for (int i = 0; i < n; i++) {
			int code = core_epsg_code(matches[i]);
			if (confidence[i] == 100 && code > 0) {
				found = code;
				hits++;
			}
		}
		if (hits != 1) {
			found = 0;
		}
		if (matches != NULL) {
			OSRFreeSRSArray(matches);
		}
		CPLFree(confidence);
	}
	OSRDestroySpatialReference(sr);
	return found;
}
*/
import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"
	"unsafe"
)

// gdalLog receives GDAL's messages raised outside godal's calls; nil drops
// them.
var gdalLog atomic.Pointer[slog.Logger]

// SetLogger sends the GDAL messages no call returns as an error (warnings
// and failures raised outside a godal call, debug output) to log at debug
// level; nil, the default, drops them. GDAL never writes to stderr.
func SetLogger(log *slog.Logger) {
	gdalLog.Store(log)
	on := C.int(0)
	if log != nil {
		on = 1
	}
	C.core_set_logging(on)
}

func logGDAL(level, code int, msg string) {
	if log := gdalLog.Load(); log != nil {
		log.LogAttrs(context.Background(), slog.LevelDebug, "GDAL", slog.Int("level", level), slog.Int("code", code), slog.String("message", msg))
	}
}

func installErrorHandler() { C.core_install_error_handler() }

// identifyEPSG is the EPSG code of wkt: its own authority, else the single
// EPSG CRS PROJ finds equal to it with full confidence. ok is false when
// there is none; readable is false when the WKT cannot be parsed.
func identifyEPSG(wkt string) (code int, readable bool) {
	cwkt := C.CString(wkt)
	defer C.free(unsafe.Pointer(cwkt))
	r := int(C.core_identify_epsg(cwkt))
	return max(r, 0), r >= 0
}

// raiseGDALError raises a GDAL error outside any godal call, as GDAL's
// drivers do from deep inside a read: for tests of the handler.
func raiseGDALError(msg string) {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.core_raise(cmsg)
}
