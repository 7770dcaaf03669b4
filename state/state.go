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
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is returned when another process holds the store.
var ErrLocked = errors.New("state file in use by another process")

// ErrDamaged is a state file bbolt cannot use: truncated, overwritten or
// inconsistent. Open wraps it with the path and what to do.
var ErrDamaged = errors.New("state file damaged")

// ErrDropped is a write to a namespace dropped since this store was opened:
// a scan finishing after its storage was deleted must not bring it back.
var ErrDropped = errors.New("state namespace dropped")

// Store is one state file.
type Store struct {
	db *bolt.DB

	mu      sync.Mutex
	dropped map[string]bool // bucket names
}

// Open opens or creates the store at path. A damaged file gives an error
// wrapping ErrDamaged, never a panic.
func Open(path string) (*Store, error) {
	db, err := openBolt(path)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		var d damage
		if errors.As(err, &d) || errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
			errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrInvalidMapping) {
			return nil, damaged(path, err)
		}
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	if err := check(path, db); err != nil {
		_ = db.Close()
		return nil, damaged(path, err)
	}
	// Many workers record at once: group their commits.
	db.MaxBatchDelay = 20 * time.Millisecond
	return &Store{db: db, dropped: map[string]bool{}}, nil
}

func damaged(path string, cause error) error {
	return fmt.Errorf("%w: %s (%v): move it aside (a scan then reads every tile again) or start the service with --reset-state (its storages must then be registered again)", ErrDamaged, path, cause)
}

// damage is a panic of bbolt's turned into an error.
type damage struct{ v any }

func (d damage) Error() string { return fmt.Sprint(d.v) }

// guard runs fn, turning bbolt's panics on bad pages, and faults reading
// past a truncated file's end, into an error.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = damage{v}
		}
	}()
	return fn()
}

func openBolt(path string) (db *bolt.DB, err error) {
	err = guard(func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		return oerr
	})
	return db, err
}

// check walks every page reachable from the root once (each bucket's keys
// in order), after checking that the file holds every page the meta page
// counts: the cost is bounded by the file's size.
func check(path string, db *bolt.DB) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if tx.Size() > fi.Size() {
				return fmt.Errorf("the file has %d bytes, its meta page counts %d", fi.Size(), tx.Size())
			}
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
		})
	})
}

func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		child := b.Bucket(k)
		if child == nil {
			return fmt.Errorf("key %q: neither a value nor a bucket", k)
		}
		return walk(child)
	})
}

// Reset moves a damaged state file aside, to path+".damaged-<UTC time>",
// so that the next Open starts empty; it returns the new name.
func Reset(path string) (string, error) {
	aside := path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("moving the state file aside: %w", err)
	}
	return aside, nil
}

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

// Namespace is one storage's records.
type Namespace struct {
	store  *Store
	db     *bolt.DB
	bucket []byte
}

// Namespace returns the records kept under name (a storage's location).
func (s *Store) Namespace(name string) *Namespace {
	return &Namespace{store: s, db: s.db, bucket: []byte("objects:" + name)}
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
		// Checked inside the write transaction: Drop marks the name in
		// its own, and bbolt runs one writer at a time.
		if n.store.isDropped(n.bucket) {
			return fmt.Errorf("%w: %s", ErrDropped, n.bucket)
		}
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

// Drop forgets the whole namespace; later Puts to it fail with ErrDropped
// until the store is reopened.
func (n *Namespace) Drop() error {
	return n.db.Update(func(tx *bolt.Tx) error {
		n.store.setDropped(n.bucket)
		if tx.Bucket(n.bucket) == nil {
			return nil
		}
		return tx.DeleteBucket(n.bucket)
	})
}

// Clear forgets every record and, unlike Drop, takes new ones: for a
// storage that stays but whose records no longer hold (moved to another
// store). Its caller makes sure no scan writes meanwhile.
func (n *Namespace) Clear() error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(n.bucket) == nil {
			return nil
		}
		return tx.DeleteBucket(n.bucket)
	})
}

func (s *Store) isDropped(bucket []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped[string(bucket)]
}

func (s *Store) setDropped(bucket []byte) {
	s.mu.Lock()
	s.dropped[string(bucket)] = true
	s.mu.Unlock()
}
