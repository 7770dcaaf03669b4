// Package batch runs national indexing: a CSV manifest of storages split
// into shards (one per Kubernetes Indexed Job pod, or --shard I/N), and the
// merge of the shards' outputs into national ones.
package batch

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// ErrManifest is a manifest that cannot be used as it is.
var ErrManifest = errors.New("invalid manifest")

// MaxRows bounds a manifest: France holds a few thousand livrables.
const MaxRows = 100_000

// MaxBytes bounds a manifest's size.
const MaxBytes = 64 << 20

// Row is one storage of the manifest.
type Row struct {
	Line       int    // 1-based line of the CSV record, for messages
	Location   string // a SOURCE, as scan takes it
	Name       string
	Attributes string // attributes file path
	Projet     string
	Livrable   string
}

var columns = map[string]bool{"location": true, "name": true, "attributes": true, "projet": true, "livrable": true}

// ParseManifest reads an RFC 4180 manifest with a header row: a location
// column and optional name, attributes, projet and livrable columns.
// Credentials come by reference (environment, files), never in the
// manifest: a location carrying a password or a secret query parameter is
// refused, as are unknown columns (a typo must not drop a setting) and two
// rows with the same location.
func ParseManifest(r io.Reader) ([]Row, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxBytes {
		// Cut short, it would be a smaller national run without a word.
		return nil, fmt.Errorf("%w: larger than %d MiB", ErrManifest, MaxBytes>>20)
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\ufeff"))))
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the header: %w", ErrManifest, err)
	}
	index := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !columns[h] {
			return nil, fmt.Errorf("%w: unknown column %q (known: location, name, attributes, projet, livrable)", ErrManifest, h)
		}
		if _, dup := index[h]; dup {
			return nil, fmt.Errorf("%w: the column %q is named twice (one would be dropped)", ErrManifest, h)
		}
		index[h] = i
	}
	if _, ok := index["location"]; !ok {
		return nil, fmt.Errorf("%w: no location column", ErrManifest)
	}
	var rows []Row
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrManifest, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rows) == MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrManifest, MaxRows)
		}
		get := func(col string) string {
			if i, ok := index[col]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := Row{Line: line, Location: get("location"), Name: get("name"), Attributes: get("attributes"), Projet: get("projet"), Livrable: get("livrable")}
		if row.Location == "" {
			return nil, fmt.Errorf("%w: line %d has no location", ErrManifest, line)
		}
		if err := noSecret(row.Location); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrManifest, line, err)
		}
		if first, dup := seen[row.Location]; dup {
			return nil, fmt.Errorf("%w: line %d repeats the location of line %d", ErrManifest, line, first)
		}
		seen[row.Location] = line
		rows = append(rows, row)
	}
	return rows, nil
}

// noSecret refuses locations that carry credentials, judged as url.Parse
// reads them as well as by storage.Redact: a manifest is for storages
// named without any secret, so anything either finds is refused.
func noSecret(location string) error {
	u, err := url.Parse(location)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return errors.New("the location carries a password: give it by reference (PCRS_INDEXER_PASSWORD, a password file), never in the manifest")
		}
	}
	switch {
	case err == nil && u.Fragment != "":
		return errors.New("the location has a fragment (#…), which no storage location has")
	case err == nil && (u.RawQuery != "" || u.ForceQuery), storage.Redact(location) != location:
		return errors.New("the location carries a secret query parameter: give credentials by reference, never in the manifest")
	}
	return nil
}

// LoadManifest reads the manifest file.
func LoadManifest(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := ParseManifest(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// Shard is the part of a manifest one process scans: rows whose location
// hashes to Index modulo Count. Hashing the location, not the row's
// position, keeps every row in its shard when rows are added, removed or
// reordered.
type Shard struct{ Index, Count int }

// Owns says whether row belongs to this shard.
func (s Shard) Owns(r Row) bool {
	h := fnv.New64a()
	h.Write([]byte(r.Location))
	return int(h.Sum64()%uint64(s.Count)) == s.Index
}

// ParseShard reads "I/N" (0 ≤ I < N).
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, such as 0/4", s)
	}
	return newShard(i, n)
}

// ShardFromEnv reads a Kubernetes Indexed Job's JOB_COMPLETION_INDEX and
// JOB_COMPLETIONS; ok is false when they are not set.
func ShardFromEnv(getenv func(string) string) (Shard, bool, error) {
	i, n := getenv("JOB_COMPLETION_INDEX"), getenv("JOB_COMPLETIONS")
	if i == "" && n == "" {
		return Shard{}, false, nil
	}
	s, err := newShard(i, n)
	if err != nil {
		return Shard{}, false, fmt.Errorf("JOB_COMPLETION_INDEX/JOB_COMPLETIONS: %w", err)
	}
	return s, true, nil
}

func newShard(i, n string) (Shard, error) {
	index, err1 := strconv.Atoi(strings.TrimSpace(i))
	count, err2 := strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return Shard{}, fmt.Errorf("shard %s/%s: want 0 ≤ index < count", i, n)
	}
	return Shard{Index: index, Count: count}, nil
}
