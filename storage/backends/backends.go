// Package backends assembles the registry of every storage backend.
package backends

import (
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/storage/local"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
)

// Registry returns a registry with every backend this build supports.
func Registry() *storage.Registry {
	var r storage.Registry
	r.Register("file", local.Open)
	r.Register("http", httpdir.Open)
	r.Register("https", httpdir.Open)
	r.Register("s3", s3.Open)
	r.Register("sftp", sftp.Open)
	r.Register("ftp", ftp.Open)
	r.Register("ftps", ftp.Open)
	return &r
}
