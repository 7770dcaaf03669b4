package sftp

// SetMaxListBytes bounds a folder's listing at n bytes, so that a test
// passes the bound with a few hundred files; the returned func restores
// it.
func SetMaxListBytes(n int64) (restore func()) {
	old := maxListBytes
	maxListBytes = n
	return func() { maxListBytes = old }
}
