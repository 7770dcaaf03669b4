package s3

// SetMaxListAnswer bounds a listing's answer at n bytes, so that a test
// passes the bound without sending 16 MiB; the returned func restores it.
func SetMaxListAnswer(n int64) (restore func()) {
	old := maxListAnswer
	maxListAnswer = n
	return func() { maxListAnswer = old }
}

// SetMaxErrorAnswer bounds an error answer's body at n bytes; the
// returned func restores it.
func SetMaxErrorAnswer(n int64) (restore func()) {
	old := maxErrorAnswer
	maxErrorAnswer = n
	return func() { maxErrorAnswer = old }
}
