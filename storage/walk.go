package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ListWorkers is how many folders Walk lists at once: on a remote storage
// each listing request waits a round trip, and a delivery has many folders.
const ListWorkers = 8

// MaxDepth bounds how deep Walk descends: a listing generated on the fly
// could otherwise lead it down forever.
const MaxDepth = 64

// statWorkers is how many objects of one page are sized at once when the
// listing gave no exact size (one HEAD each on some web servers).
const statWorkers = 16

// Walk lists the whole storage, calling fn once for every object, with its
// exact size: objects listed without one are stat'ed. Folders are listed
// concurrently; fn is never called concurrently, in no particular order.
func Walk(ctx context.Context, s Storage, fn func(Object) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex // guards seen, fn and firstErr
		seen     = map[string]bool{"": true}
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, ListWorkers)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	var list func(cursor string)
	list = func(cursor string) {
		defer wg.Done()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		for {
			page, err := s.List(ctx, cursor)
			if err != nil {
				if cursor == "" {
					fail(fmt.Errorf("listing the storage root: %w", err))
				} else {
					fail(fmt.Errorf("listing %q: %w", cursor, err))
				}
				return
			}
			if err := sized(ctx, s, page.Objects); err != nil {
				fail(err)
				return
			}
			mu.Lock()
			for _, o := range page.Objects {
				if firstErr != nil {
					break
				}
				if err := fn(o); err != nil {
					firstErr = err
					cancel()
				}
			}
			for _, d := range page.Dirs {
				if strings.Count(strings.Trim(d, "/"), "/") >= MaxDepth && firstErr == nil {
					firstErr = fmt.Errorf("listing %q: more than %d folders deep", d, MaxDepth)
					cancel()
					break
				}
				if !seen[d] { // a symlink or a listing loop must not loop us
					seen[d] = true
					wg.Add(1)
					go list(d)
				}
			}
			stop := firstErr != nil
			mu.Unlock()
			if stop || page.Next == "" || page.Next == cursor {
				return
			}
			cursor = page.Next
		}
	}
	wg.Add(1)
	go list("")
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// sized stats, concurrently, the objects of a page listed without a size,
// keeping what the listing knew and the stat did not say.
func sized(ctx context.Context, s Storage, objects []Object) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statWorkers)
	for i := range objects {
		if objects[i].Size != SizeUnknown {
			continue
		}
		g.Go(func() error {
			o := &objects[i]
			st, err := s.Stat(gctx, o.Key)
			if err != nil {
				return fmt.Errorf("sizing %q: %w", o.Key, err)
			}
			if st.ModTime.IsZero() {
				st.ModTime = o.ModTime
			}
			if st.ETag == "" {
				st.ETag = o.ETag
			}
			*o = st
			return nil
		})
	}
	return g.Wait()
}
