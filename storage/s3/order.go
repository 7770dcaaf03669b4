package s3

// ListsInOrder: ListObjectsV2 returns keys in UTF-8 binary order, page
// after page (the scan still checks it, and copes when a server does not).
func (s *Storage) ListsInOrder() bool { return true }
