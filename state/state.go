// Package state is the embedded store (bbolt) that lets scans remember
// what they read: a rescan reads only new or changed objects, and a scan
// stopped half-way resumes without re-reading what it already read. bbolt
// commits are atomic and fsynced, so a kill -9 loses at most the records
// not yet committed, never the file.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is returned when another process holds the store.
var ErrLocked = errors.New("state file in use by another process")

// Store is one state file.
type Store struct {
	db *bolt.DB
}

// Open opens or creates the store at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	// Many workers record at once: group their commits.
	db.MaxBatchDelay = 20 * time.Millisecond
	return &Store{db: db}, nil
}

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

// Namespace is one storage's records.
type Namespace struct {
	db     *bolt.DB
	bucket []byte
}

// Namespace returns the records kept under name (a storage's location).
func (s *Store) Namespace(name string) *Namespace {
	return &Namespace{db: s.db, bucket: []byte("objects:" + name)}
}

// Get decodes key's record into v; false when there is none.
func (n *Namespace) Get(key string, v any) (bool, error) {
	var raw []byte
	err := n.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(n.bucket); b != nil {
			if data := b.Get([]byte(key)); data != nil {
				raw = append([]byte(nil), data...)
			}
		}
		return nil
	})
	if err != nil || raw == nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("state record %q: %w", key, err)
	}
	return true, nil
}

// Put records v under key. Concurrent Puts share one commit.
func (n *Namespace) Put(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return n.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(n.bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// Prune forgets the records whose key keep rejects (deleted objects) and
// says how many.
func (n *Namespace) Prune(keep func(key string) bool) (int, error) {
	removed := 0
	err := n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(n.bucket)
		if b == nil {
			return nil
		}
		var gone [][]byte
		if err := b.ForEach(func(k, _ []byte) error {
			if !keep(string(k)) {
				gone = append(gone, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		removed = len(gone)
		return nil
	})
	return removed, err
}

// Len counts the records.
func (n *Namespace) Len() (int, error) {
	count := 0
	err := n.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(n.bucket); b != nil {
			count = b.Stats().KeyN
		}
		return nil
	})
	return count, err
}

// Each decodes every record in key order, stopping at fn's first error.
func (n *Namespace) Each(fn func(key string, decode func(v any) error) error) error {
	return n.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(n.bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, raw []byte) error {
			return fn(string(k), func(v any) error { return json.Unmarshal(raw, v) })
		})
	})
}

// Delete forgets one record.
func (n *Namespace) Delete(key string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(n.bucket); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
}

// Drop forgets the whole namespace.
func (n *Namespace) Drop() error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(n.bucket) == nil {
			return nil
		}
		return tx.DeleteBucket(n.bucket)
	})
}
