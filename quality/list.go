package quality

import (
	"cmp"
	"slices"
)

// list keeps the warnings of one kind that are listed. A delivery copied
// twice over has as many duplicates as tiles; the report lists the first
// max in the final order (path, then other), whatever order they were
// found in: a max-heap of at most max warnings, so a million findings cost
// O(n log max) time and max warnings of memory, and the ones listed are
// those a reader of the sorted list would see first.
//
// firstCome lists the first max offered instead (missing cells, found in
// cell order: naming every cell of a long hole to pick the first names
// would cost what the cap is there to avoid).
type list struct {
	max       int
	firstCome bool
	items     []Warning
	seqs      []int // the order each item was found in, the last tie-break
	next      int
}

// admits says whether a warning with this path and other would be listed.
func (l *list) admits(path, other string) bool {
	if len(l.items) < l.max {
		return true
	}
	if l.firstCome {
		return false
	}
	top := &l.items[0]
	// Found later, it loses a tie on path and other.
	return cmp.Or(cmp.Compare(path, top.Path), cmp.Compare(other, top.Other)) < 0
}

// full says whether nothing more would be listed first-come.
func (l *list) full() bool { return len(l.items) >= l.max }

// push lists w, dropping the last listed when full; callers ask admits
// first.
func (l *list) push(w Warning) {
	seq := l.next
	l.next++
	if len(l.items) < l.max {
		l.items = append(l.items, w)
		l.seqs = append(l.seqs, seq)
		if !l.firstCome {
			l.up(len(l.items) - 1)
		}
		return
	}
	if l.firstCome {
		return
	}
	l.items[0], l.seqs[0] = w, seq
	l.down(0)
}

// after says whether item i comes after item j in the final order.
func (l *list) after(i, j int) bool {
	a, b := &l.items[i], &l.items[j]
	return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Other, b.Other), cmp.Compare(l.seqs[i], l.seqs[j])) > 0
}

func (l *list) swap(i, j int) {
	l.items[i], l.items[j] = l.items[j], l.items[i]
	l.seqs[i], l.seqs[j] = l.seqs[j], l.seqs[i]
}

func (l *list) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !l.after(i, parent) {
			return
		}
		l.swap(i, parent)
		i = parent
	}
}

func (l *list) down(i int) {
	for {
		last := i
		for _, child := range []int{2*i + 1, 2*i + 2} {
			if child < len(l.items) && l.after(child, last) {
				last = child
			}
		}
		if last == i {
			return
		}
		l.swap(i, last)
		i = last
	}
}

// sorted is the listed warnings in the final order.
func (l *list) sorted() []Warning {
	idx := make([]int, len(l.items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		if l.after(i, j) {
			return 1
		}
		if l.after(j, i) {
			return -1
		}
		return 0
	})
	out := make([]Warning, len(idx))
	for k, i := range idx {
		out[k] = l.items[i]
	}
	return out
}
