package indexer

// SetMaxSkipped lowers the skipped entries a report lists, so that a test
// passes the bound without listing 10,000 objects; the returned func
// restores it.
func SetMaxSkipped(n int) (restore func()) {
	old := maxSkipped
	maxSkipped = n
	return func() { maxSkipped = old }
}
