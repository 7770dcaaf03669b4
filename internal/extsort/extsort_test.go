package extsort

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// keyed records are an 8-byte key then a 4-byte sequence number, so that a
// test can tell which of equal keys was kept.
func keyed(key uint64, seq uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, key)
	return binary.BigEndian.AppendUint32(b, seq)
}

func byKey(a, b []byte) int    { return bytes.Compare(a[:8], b[:8]) }
func sameKey(a, b []byte) bool { return bytes.Equal(a[:8], b[:8]) }

func readAll(t *testing.T, s *Sorted) [][]byte {
	t.Helper()
	var out [][]byte
	if err := s.Each(func(rec []byte) error {
		out = append(out, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSortAgainstMemory: whatever the budget (everything in memory, a few
// runs, more runs than one merge takes), the records come back in the
// order a stable in-memory sort gives, and of equal keys Same keeps the
// last added.
func TestSortAgainstMemory(t *testing.T) {
	const n = 20_000
	rng := rand.New(rand.NewPCG(3, 4))
	var recs [][]byte
	for i := range n {
		recs = append(recs, keyed(rng.Uint64N(n/2), uint32(i)))
	}
	want := slices.Clone(recs)
	slices.SortStableFunc(want, byKey)
	var dedup [][]byte
	for i, r := range want {
		if i+1 < len(want) && sameKey(r, want[i+1]) {
			continue
		}
		dedup = append(dedup, r)
	}
	for _, budget := range []int{1 << 30, n * 12 / 5, n * 12 / (3 * maxFanIn)} {
		for _, same := range []bool{false, true} {
			t.Run(fmt.Sprintf("budget=%d/same=%v", budget, same), func(t *testing.T) {
				opts := Options{Compare: byKey, Budget: budget}
				exp := want
				if same {
					opts.Same, exp = sameKey, dedup
				}
				s := New(opts)
				for _, r := range recs {
					if err := s.Add(r); err != nil {
						t.Fatal(err)
					}
				}
				runs := len(s.at)
				sorted, err := s.Sort()
				if err != nil {
					t.Fatal(err)
				}
				defer sorted.Close()
				got := readAll(t, sorted)
				if !slices.EqualFunc(got, exp, bytes.Equal) || sorted.Len() != len(exp) {
					t.Fatalf("%d records back (Len %d) after %d runs, want %d in order", len(got), sorted.Len(), runs, len(exp))
				}
				// Read twice, and through an Iter: the same.
				it := sorted.Iter()
				for i := 0; it.Next(); i++ {
					if !bytes.Equal(it.Record(), exp[i]) {
						t.Fatalf("record %d read again differs", i)
					}
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
				if budget < n*12/maxFanIn && runs <= maxFanIn {
					t.Fatalf("budget %d made %d runs: the rounds of merging are not exercised", budget, runs)
				}
			})
		}
	}
}

// TestEmptyAndOne: no record, and one empty record.
func TestEmptyAndOne(t *testing.T) {
	s, err := New(Options{}).Sort()
	if err != nil || s.Len() != 0 || len(readAll(t, s)) != 0 {
		t.Fatalf("empty sort: %v, %d", err, s.Len())
	}
	x := New(Options{})
	if err := x.Add(nil); err != nil {
		t.Fatal(err)
	}
	s, err = x.Sort()
	if err != nil || s.Len() != 1 {
		t.Fatalf("one empty record: %v, %d", err, s.Len())
	}
	if got := readAll(t, s); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("read back %q", got)
	}
}

// TestRecordTooLarge: a record over MaxRecord is refused, not sorted.
func TestRecordTooLarge(t *testing.T) {
	s := New(Options{})
	if err := s.Add(make([]byte, MaxRecord+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a %d-byte record: %v", MaxRecord+1, err)
	}
	if err := s.Add(make([]byte, MaxRecord)); err != nil {
		t.Fatalf("a %d-byte record: %v", MaxRecord, err)
	}
}

// TestDamagedRunFails: a run file cut short fails the merge with an error,
// never a short answer.
func TestDamagedRunFails(t *testing.T) {
	s := New(Options{Compare: byKey, Budget: 64})
	for i := range 100 {
		if err := s.Add(keyed(uint64(100-i), uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.at) < 2 {
		t.Fatalf("%d runs, want several", len(s.at))
	}
	// The second run claims more bytes than the file holds.
	s.at[1].n += 1000
	if _, err := s.Sort(); err == nil {
		t.Fatal("a run cut short merged without an error")
	}
}

// BenchmarkSortMillion sorts a million 40-byte records under the default
// budget: the memory it reports per op is what a scan of a million tiles
// pays to keep its index on disk.
func BenchmarkSortMillion(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	rec := make([]byte, 40)
	for b.Loop() {
		s := New(Options{})
		for range 1_000_000 {
			binary.BigEndian.PutUint64(rec, rng.Uint64())
			if err := s.Add(rec); err != nil {
				b.Fatal(err)
			}
		}
		sorted, err := s.Sort()
		if err != nil {
			b.Fatal(err)
		}
		sorted.Close()
	}
}

// TestShortFileFails: records missing at the end of the sorted file (cut
// at a record's end) fail the reading, never a shorter answer.
func TestShortFileFails(t *testing.T) {
	s := New(Options{})
	for i := range 10 {
		if err := s.Add(keyed(uint64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	sorted, err := s.Sort()
	if err != nil {
		t.Fatal(err)
	}
	defer sorted.Close()
	sorted.size -= 13 // one record and its length prefix
	n := 0
	err = sorted.Each(func([]byte) error { n++; return nil })
	if err == nil || n != 9 {
		t.Fatalf("%d records read from a file cut by one, err %v", n, err)
	}
}

// TestIterOutlivesSorted: an Iter keeps reading after its Sorted is no
// longer referenced elsewhere (its cleanup closes the file).
func TestIterOutlivesSorted(t *testing.T) {
	s := New(Options{Budget: 1 << 10})
	const n = 20_000
	for i := range n {
		if err := s.Add(keyed(uint64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	sorted, err := s.Sort()
	if err != nil {
		t.Fatal(err)
	}
	it := sorted.Iter()
	sorted = nil
	read := 0
	for it.Next() {
		if read%1000 == 0 {
			runtime.GC()
		}
		read++
	}
	if it.Err() != nil || read != n {
		t.Fatalf("%d of %d records read: %v", read, n, it.Err())
	}
}
