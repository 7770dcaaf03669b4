package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ListWorkers is how many folders Walk lists at once: on a remote storage
// each listing request waits a round trip, and a delivery has many folders.
const ListWorkers = 8

// Bounds a Walker applies when its own are zero. A storage is hostile until
// proven otherwise: a listing generated on the fly can lead a walk down, or
// across, forever.
const (
	MaxDepth          = 64
	DefaultMaxFolders = 100_000
	// DefaultMaxPages allows continuation pages beyond one per folder
	// (S3 gives 1,000 objects a page).
	DefaultMaxPages   = 1_000_000
	DefaultMaxObjects = 10_000_000
)

// statWorkers is how many objects of one page are sized at once when the
// listing gave no exact size (one HEAD each on some web servers).
const statWorkers = 16

// Walker lists a whole storage within bounds. The zero value applies the
// defaults above and sizes every object.
type Walker struct {
	// MaxFolders bounds the folders listed, the root included.
	MaxFolders int
	// MaxPages bounds the listing requests, continuation pages included.
	MaxPages int
	// MaxObjects bounds the objects handed to fn.
	MaxObjects int
	// MaxDepth bounds how many folders deep the walk descends.
	MaxDepth int
	// Workers is how many folders are listed at once (ListWorkers if 0).
	Workers int
	// NeedSize says which objects listed without an exact size are worth a
	// Stat (a HEAD on web servers: it also brings an ETag and a date); the
	// others reach fn with SizeUnknown. Nil sizes them all.
	NeedSize func(o Object) bool
}

func (w Walker) withDefaults() Walker {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&w.MaxFolders, DefaultMaxFolders)
	def(&w.MaxPages, DefaultMaxPages)
	def(&w.MaxObjects, DefaultMaxObjects)
	def(&w.MaxDepth, MaxDepth)
	def(&w.Workers, ListWorkers)
	if w.NeedSize == nil {
		w.NeedSize = func(Object) bool { return true }
	}
	return w
}

// Walk lists the whole storage with the default bounds.
func Walk(ctx context.Context, s Storage, fn func(Object) error) error {
	return Walker{}.Walk(ctx, s, fn)
}

// Walk lists the whole storage, calling fn once for every object: sized
// when the listing says so or NeedSize asks for it, and with Err set when
// that object alone failed (its Stat, a key the backend cannot address, a
// folder link that loops). A fixed pool of workers lists folders from a
// queue; fn is never called concurrently, in no particular order. Going
// past a bound fails the walk with ErrTooLarge: a partial listing must not
// pass for a whole one.
func (w Walker) Walk(ctx context.Context, s Storage, fn func(Object) error) error {
	return w.WalkPages(ctx, s, func(l Listed) error {
		for _, o := range l.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// Listed is one listing page's objects, handed on as soon as they are
// sized, so that a caller can start on them while the walk goes on.
type Listed struct {
	Objects []Object
	// Chain is the cursor that began this listing: a folder on
	// hierarchical storages, "" for the root (a flat storage's whole
	// listing). Done says the chain has no page left: every object it
	// holds has been handed on.
	Chain string
	Done  bool
}

// WalkPages is Walk handing on whole pages, with the bounds, sizing and
// guarantees of Walk; fn is never called concurrently.
func (w Walker) WalkPages(ctx context.Context, s Storage, fn func(Listed) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wk := &walk{w: w.withDefaults(), s: s, fn: fn, cancel: cancel, queue: []string{""}, seen: map[string]bool{"": true}, folders: 1}
	wk.cond = sync.NewCond(&wk.mu)
	stop := context.AfterFunc(ctx, func() { wk.fail(ctx.Err()) })
	var wg sync.WaitGroup
	for range wk.w.Workers {
		wg.Go(func() { wk.work(ctx) })
	}
	wg.Wait()
	stop()
	// The AfterFunc may still be running when stop returns false: read
	// the verdict under the lock it takes.
	wk.mu.Lock()
	defer wk.mu.Unlock()
	return wk.err
}

// walk is the state the workers share, all of it guarded by mu.
type walk struct {
	w      Walker
	s      Storage
	fn     func(Listed) error
	cancel context.CancelFunc // ends the requests in flight once the walk failed

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []string // folders still to list; bounded by MaxFolders
	seen    map[string]bool
	busy    int // workers listing a folder now
	folders int
	pages   int
	objects int
	err     error
}

func (wk *walk) fail(err error) {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	wk.failLocked(err)
}

func (wk *walk) failLocked(err error) {
	if wk.err == nil {
		wk.err = err
		wk.cancel()
	}
	wk.cond.Broadcast()
}

// work takes folders from the queue until it is empty with no worker left
// to fill it, or the walk failed.
func (wk *walk) work(ctx context.Context) {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	for {
		for len(wk.queue) == 0 && wk.busy > 0 && wk.err == nil {
			wk.cond.Wait()
		}
		if wk.err != nil || len(wk.queue) == 0 {
			wk.cond.Broadcast()
			return
		}
		// Last in, first out: depth first keeps the queue short.
		cursor := wk.queue[len(wk.queue)-1]
		wk.queue = wk.queue[:len(wk.queue)-1]
		wk.busy++
		wk.mu.Unlock()
		err := wk.folder(ctx, cursor)
		wk.mu.Lock()
		wk.busy--
		if err != nil {
			wk.failLocked(err)
		}
		wk.cond.Broadcast()
	}
}

// folder lists one folder, all its pages, queueing its sub-folders.
func (wk *walk) folder(ctx context.Context, cursor string) error {
	chain := cursor
	for {
		if err := wk.count(&wk.pages, wk.w.MaxPages, "listing pages"); err != nil {
			return err
		}
		page, err := wk.s.List(ctx, cursor)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cursor == "" {
				return fmt.Errorf("listing the storage root: %w", err)
			}
			return fmt.Errorf("listing %q: %w", cursor, err)
		}
		// Sized in a copy: the page may be the backend's own.
		page.Objects = slices.Clone(page.Objects)
		wk.size(ctx, page.Objects)
		if err := ctx.Err(); err != nil {
			return err
		}
		done := page.Next == "" || page.Next == cursor
		if err := wk.take(page, chain, done); err != nil {
			return err
		}
		if done {
			return nil
		}
		cursor = page.Next
	}
}

func (wk *walk) count(n *int, max int, what string) error {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	if *n >= max {
		return fmt.Errorf("%w: more than %d %s", ErrTooLarge, max, what)
	}
	*n++
	return nil
}

// take hands a page's objects to fn and queues its new folders.
func (wk *walk) take(page Page, chain string, done bool) error {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	if wk.err != nil {
		return nil
	}
	if wk.objects+len(page.Objects) > wk.w.MaxObjects {
		return fmt.Errorf("%w: more than %d objects", ErrTooLarge, wk.w.MaxObjects)
	}
	wk.objects += len(page.Objects)
	if err := wk.fn(Listed{Objects: page.Objects, Chain: chain, Done: done}); err != nil {
		return err
	}
	for _, d := range page.Dirs {
		if wk.seen[d] { // a symlink or a listing loop must not loop us
			continue
		}
		if strings.Count(strings.Trim(d, "/"), "/") >= wk.w.MaxDepth {
			return fmt.Errorf("%w: listing %q: more than %d folders deep", ErrTooLarge, d, wk.w.MaxDepth)
		}
		if wk.folders >= wk.w.MaxFolders {
			return fmt.Errorf("%w: more than %d folders", ErrTooLarge, wk.w.MaxFolders)
		}
		wk.folders++
		wk.seen[d] = true
		wk.queue = append(wk.queue, d)
	}
	return nil
}

// size stats, concurrently, the objects of a page listed without a size
// that the caller needs sized, keeping what the listing knew and the stat
// did not say. A failed stat is that object's problem, not the walk's.
func (wk *walk) size(ctx context.Context, objects []Object) {
	var g errgroup.Group
	g.SetLimit(statWorkers)
	for i := range objects {
		o := &objects[i]
		if o.Size != SizeUnknown || o.Err != nil || !wk.w.NeedSize(*o) {
			continue
		}
		g.Go(func() error {
			st, err := wk.s.Stat(ctx, o.Key)
			if err != nil {
				o.Err = fmt.Errorf("sizing %q: %w", o.Key, err)
				return nil
			}
			if st.ModTime.IsZero() {
				st.ModTime = o.ModTime
			}
			if st.ETag == "" {
				st.ETag = o.ETag
			}
			st.Key = o.Key
			*o = st
			return nil
		})
	}
	_ = g.Wait()
}

// Ordered is a backend whose listing hands keys in strictly increasing
// byte order (S3's ListObjectsV2 does): a tile's sidecars, whose keys
// share its stem, then come right beside it, and the tile can be read
// before the listing ends.
type Ordered interface {
	ListsInOrder() bool
}

// ListsInOrder says whether the backend below s's decorators lists in
// order.
func ListsInOrder(s Storage) bool {
	for {
		if o, ok := s.(Ordered); ok {
			return o.ListsInOrder()
		}
		d, ok := s.(interface{ Unwrap() Storage })
		if !ok {
			return false
		}
		s = d.Unwrap()
	}
}
