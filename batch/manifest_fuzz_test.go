package batch

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// FuzzParseManifest: a manifest is read as a hostile file. Either it is
// refused with ErrManifest, or every row has a location, trimmed fields,
// no secret (by the package's own rule, storage.Redact, and as the URL
// parser the storage opens it with sees it), a distinct location, an
// increasing line number, a header of distinct columns, and belongs to
// exactly one shard; the rows hold no more bytes than the manifest, and a
// second parse gives the same.
func FuzzParseManifest(f *testing.F) {
	for _, m := range []string{
		"\ufefflocation,name,projet,livrable,attributes\r\ns3://b/aude,Aude,p1,l1,a.yaml\r\n\"https://h/x,y/\",,,,\r\n",
		"location\n/data/aude\n./relative\nftp://anonymous@ftp.example.fr/pcrs/\nsftp://user@h:2222/x\n",
		"Location , NAME\n  s3://b/x  ,  padded  \n",
		"location,name\n\"multi\nline\",\"quote \"\"q\"\"\"\nhttp://h/a,b\n",
		"location\nhttps://h/x?\nhttps://h/y#\nhttps://h/z?&\n",
		"location\n\x00\n\xff\xfe\n../../etc\nfile:///etc/\n",
		"location\n" + strings.Repeat("a", 10000) + "\n",
		// Refused.
		"name\nx\n",
		"location,nom\nx,y\n",
		"location\nftp://u:secret@h/x\n",
		"location\nhttps://h/x?token=abc\n",
		"location\nhttps://TOKEN@h/x\n",
		"location\nhttps://h/x#frag\n",
		"location\n/a\n/a\n",
		"location,name\n,x\n",
		"location,name\nx\n",
		"location\n\"unterminated\n",
		"location\na\"b\n",
		"",
		"\ufeff",
		strings.Repeat(",", 1000) + "\n",
	} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rows, err := ParseManifest(bytes.NewReader(raw))
		again, err2 := ParseManifest(bytes.NewReader(raw))
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(rows, again) {
			t.Errorf("a second parse differs: %v %+v, then %v %+v", err, rows, err2, again)
		}
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Errorf("error %v is no ErrManifest", err)
			}
			if rows != nil {
				t.Errorf("rows %+v with the error %v", rows, err)
			}
			return
		}
		// A column given twice would drop one of its settings without a
		// word: the reason the parser refuses unknown columns.
		if cols := headerColumns(raw); cols != nil {
			seen := map[string]bool{}
			for _, c := range cols {
				if seen[c] {
					t.Errorf("header %q names the column %q twice, and was accepted", cols, c)
				}
				seen[c] = true
			}
		}
		if len(rows) > MaxRows || len(rows) > bytes.Count(raw, []byte("\n")) {
			t.Errorf("%d rows out of %d bytes, %d newlines", len(rows), len(raw), bytes.Count(raw, []byte("\n")))
		}
		seen := map[string]bool{}
		total, prev := 0, 1
		for _, r := range rows {
			for _, v := range []string{r.Location, r.Name, r.Attributes, r.Projet, r.Livrable} {
				if strings.TrimSpace(v) != v {
					t.Errorf("line %d: %q is not trimmed", r.Line, v)
				}
				total += len(v)
			}
			if r.Location == "" {
				t.Errorf("line %d: no location", r.Line)
			}
			if seen[r.Location] {
				t.Errorf("line %d: location %q listed twice", r.Line, r.Location)
			}
			seen[r.Location] = true
			if r.Line <= prev {
				t.Errorf("line %d after line %d", r.Line, prev)
			}
			prev = r.Line
			if why := secret(r.Location); why != "" {
				t.Errorf("line %d: location %q accepted with %s", r.Line, r.Location, why)
			}
			for _, n := range []int{1, 2, 3, 7, 64} {
				owners := 0
				for i := range n {
					if (Shard{i, n}).Owns(r) {
						owners++
					}
				}
				if owners != 1 {
					t.Errorf("line %d belongs to %d of %d shards", r.Line, owners, n)
				}
			}
		}
		if total > len(raw) {
			t.Errorf("rows hold %d bytes out of a %d-byte manifest", total, len(raw))
		}
	})
}

// headerColumns is the manifest's header as ParseManifest reads it
// (trimmed, lower case), or nil when it is quoted.
func headerColumns(raw []byte) []string {
	line, _, _ := strings.Cut(string(bytes.TrimPrefix(raw, []byte("\ufeff"))), "\n")
	if strings.Contains(line, `"`) {
		return nil // quoted header names: leave them to encoding/csv
	}
	var cols []string
	for _, h := range strings.Split(strings.TrimSuffix(line, "\r"), ",") {
		cols = append(cols, strings.ToLower(strings.TrimSpace(h)))
	}
	return cols
}

// secret says what a location carries that must never be in a manifest:
// by storage.Redact's rule, then as storage.ParseLocation (what the scan
// opens) sees it.
func secret(location string) string {
	if storage.Redact(location) != location {
		return "something storage.Redact hides"
	}
	u, err := storage.ParseLocation(location)
	if err != nil || u.Scheme == "file" || u.Scheme == "" {
		// Not opened: the registry refuses it naming its scheme alone
		// ("0#x://y" is a path and a fragment to url.Parse).
		return ""
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return "a password"
		}
		if u.User.Username() != "" && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "s3") {
			return "a token as user name"
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		if p != "" {
			return "a query parameter"
		}
	}
	if u.Fragment != "" {
		return "a fragment"
	}
	return ""
}

// FuzzParseShard: "I/N" from a flag or the environment. Accepted shards
// satisfy 0 ≤ I < N, print back to what parses the same, and the shards
// of a count partition the rows.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "2/4", " 3 / 8 ", "4/4", "-1/2", "1", "a/b", "0/0", "1/2/3", "0/9223372036854775807",
		"9223372036854775806/9223372036854775807", "0/99999999999999999999", "+1/2", "0x1/2", "1_0/20", "٣/٨", "0/1\x00", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		i, n, _ := strings.Cut(s, "/")
		sh2, ok, err2 := ShardFromEnv(func(k string) string {
			return map[string]string{"JOB_COMPLETION_INDEX": i, "JOB_COMPLETIONS": n}[k]
		})
		if err != nil {
			if sh != (Shard{}) {
				t.Errorf("shard %+v with the error %v", sh, err)
			}
			if strings.Contains(s, "/") && (i != "" || n != "") && (err2 == nil || ok) {
				t.Errorf("%q refused as a flag (%v), accepted from the environment (%+v)", s, err, sh2)
			}
			return
		}
		if sh.Index < 0 || sh.Index >= sh.Count {
			t.Fatalf("%q: shard %+v", s, sh)
		}
		if err2 != nil || !ok || sh2 != sh {
			t.Errorf("%q: %+v as a flag, %+v %v %v from the environment", s, sh, sh2, ok, err2)
		}
		if back, err := ParseShard(fmt.Sprintf("%d/%d", sh.Index, sh.Count)); err != nil || back != sh {
			t.Errorf("%q: %+v prints back as %+v, %v", s, sh, back, err)
		}
		if sh.Count <= 64 {
			for _, loc := range []string{"", "s3://b/x", s} {
				owners := 0
				for k := range sh.Count {
					if (Shard{k, sh.Count}).Owns(Row{Location: loc}) {
						owners++
					}
				}
				if owners != 1 {
					t.Errorf("%q belongs to %d of %d shards", loc, owners, sh.Count)
				}
			}
		}
	})
}
