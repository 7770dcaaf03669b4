package storage

import (
	"context"
	"fmt"
)

// Walk lists the whole storage, calling fn for every object once, with its
// exact size: objects listed without one are stat'ed. Folders are listed
// one after the other: listing is a small share of a scan's requests and
// keeping it sequential keeps the order deterministic.
func Walk(ctx context.Context, s Storage, fn func(Object) error) error {
	pending := []string{""}
	seen := map[string]bool{"": true}
	for len(pending) > 0 {
		cursor := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		for {
			page, err := s.List(ctx, cursor)
			if err != nil {
				if cursor == "" {
					return fmt.Errorf("listing the storage root: %w", err)
				}
				return fmt.Errorf("listing %q: %w", cursor, err)
			}
			for _, o := range page.Objects {
				if o.Size == SizeUnknown {
					st, err := s.Stat(ctx, o.Key)
					if err != nil {
						return fmt.Errorf("sizing %q: %w", o.Key, err)
					}
					// Keep what the listing knew and the stat did not say.
					if st.ModTime.IsZero() {
						st.ModTime = o.ModTime
					}
					if st.ETag == "" {
						st.ETag = o.ETag
					}
					o = st
				}
				if err := fn(o); err != nil {
					return err
				}
			}
			// Push in reverse so folders come out in the order listed.
			for i := len(page.Dirs) - 1; i >= 0; i-- {
				d := page.Dirs[i]
				if !seen[d] { // a symlink or a listing loop must not loop us
					seen[d] = true
					pending = append(pending, d)
				}
			}
			if page.Next == "" || page.Next == cursor {
				break
			}
			cursor = page.Next
		}
	}
	return nil
}
