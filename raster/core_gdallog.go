package raster

// The exported callback lives apart: a cgo file with //export may only
// declare in its preamble.

/*
#include <stdlib.h>
*/
import "C"

//export coreGDALMessage
func coreGDALMessage(level, code C.int, msg *C.char) {
	logGDAL(int(level), int(code), C.GoString(msg))
}
