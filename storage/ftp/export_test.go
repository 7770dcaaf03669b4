package ftp

import (
	"crypto/x509"
	"time"
)

// SetShutTimeout makes the library's wait for the end of a transfer d, so
// that a test can outlast the deadline it leaves behind without waiting
// 10 s; the returned func restores it.
func SetShutTimeout(d time.Duration) (restore func()) {
	old := shutTimeout
	shutTimeout = d
	return func() { shutTimeout = old }
}

// SetListBounds bounds listings at size bytes and lines lines, so that a
// test crosses them without sending megabytes; the returned func restores
// them.
func SetListBounds(size, lines int64) (restore func()) {
	oldSize, oldLines := maxListBytes, maxListLines
	maxListBytes, maxListLines = size, lines
	return func() { maxListBytes, maxListLines = oldSize, oldLines }
}

// SetRootCAs makes FTPS storages opened from now on trust pool alone (nil:
// the system's roots); the returned func restores the previous pool.
func SetRootCAs(pool *x509.CertPool) (restore func()) {
	old := rootCAs
	rootCAs = pool
	return func() { rootCAs = old }
}
