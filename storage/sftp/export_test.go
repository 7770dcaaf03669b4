package sftp

// SetListBounds sets the listing bounds (bytes of NAME packets, entries,
// extended attributes) and returns the function restoring them.
func SetListBounds(bytes, entries, extended uint64) (restore func()) {
	b, e, x := maxListBytes, maxListEntries, maxListExtended
	maxListBytes, maxListEntries, maxListExtended = bytes, entries, extended
	return func() { maxListBytes, maxListEntries, maxListExtended = b, e, x }
}
