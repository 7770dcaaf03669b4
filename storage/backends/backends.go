// Package backends assembles the registry of every storage backend.
package backends

import (
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/storage/local"
)

// Registry returns a registry with every backend this build supports.
func Registry() *storage.Registry {
	var r storage.Registry
	r.Register("file", local.Open)
	r.Register("http", httpdir.Open)
	r.Register("https", httpdir.Open)
	return &r
}
