package batch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	rows, err := ParseManifest(strings.NewReader("\ufefflocation,name,projet,livrable,attributes\r\ns3://b/aude,Aude,p1,l1,a.yaml\r\n\"https://h/x,y/\",,,,\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Name != "Aude" || rows[0].Attributes != "a.yaml" || rows[1].Location != "https://h/x,y/" || rows[1].Line != 3 {
		t.Errorf("rows %+v", rows)
	}
	for _, bad := range []struct{ csv, says string }{
		{"name\nx\n", "no location column"},
		{"location,nom\nx,y\n", `unknown column "nom"`},
		{"location\nftp://u:secret@h/x\n", "password"},
		{"location\nhttps://h/x?token=abc\n", "secret query"},
		{"location\nhttps:/h/x?token=abc&next=https://y\n", "secret query"}, // Redact alone let it through
		{"location\nhttps://h/x#frag\n", "fragment"},
		{"location,name,LOCATION\nhttps://h/x,a,https://h/y\n", "named twice"},
		{"location\n/a\n/a\n", "line 3 repeats the location of line 2"},
		{"location,name\n,x\n", "line 2 has no location"},
		// Past the size bound, never a silently shorter manifest.
		{"location\n" + strings.Repeat("/a/b\n", MaxBytes/5+1), "larger than 64 MiB"},
	} {
		_, err := ParseManifest(strings.NewReader(bad.csv))
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%.60q: %v, want ErrManifest saying %q", bad.csv, err, bad.says)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && strings.Contains(err.Error(), "abc") {
			t.Errorf("the secret leaked: %v", err)
		}
	}
}

// Every row belongs to exactly one shard, and appending rows moves none.
func TestShardsPartitionAndStayStable(t *testing.T) {
	var rows []Row
	for i := range 1000 {
		rows = append(rows, Row{Location: fmt.Sprintf("s3://bucket/dept-%03d/", i)})
	}
	const n = 4
	owner := map[string]int{}
	sizes := make([]int, n)
	for _, r := range rows {
		owners := 0
		for i := range n {
			if (Shard{i, n}).Owns(r) {
				owners++
				owner[r.Location] = i
				sizes[i]++
			}
		}
		if owners != 1 {
			t.Fatalf("%s belongs to %d shards", r.Location, owners)
		}
	}
	for i, s := range sizes {
		if s < 200 {
			t.Errorf("shard %d holds %d of 1000 rows: unbalanced", i, s)
		}
	}
	// Appending and reordering rows: the old ones keep their shard.
	more := append([]Row{{Location: "s3://bucket/new/"}}, rows...)
	for _, r := range more[1:] {
		if !(Shard{owner[r.Location], n}).Owns(r) {
			t.Fatalf("%s changed shard", r.Location)
		}
	}
}

func TestShardSources(t *testing.T) {
	if s, err := ParseShard("2/4"); err != nil || s != (Shard{2, 4}) {
		t.Errorf("2/4: %v %v", s, err)
	}
	for _, bad := range []string{"4/4", "-1/2", "1", "a/b", "0/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	env := map[string]string{"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "8"}
	s, ok, err := ShardFromEnv(func(k string) string { return env[k] })
	if err != nil || !ok || s != (Shard{3, 8}) {
		t.Errorf("from the environment: %v %v %v", s, ok, err)
	}
	if _, ok, err := ShardFromEnv(func(string) string { return "" }); ok || err != nil {
		t.Errorf("no variables: %v %v", ok, err)
	}
	env["JOB_COMPLETIONS"] = "2"
	if _, _, err := ShardFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("index 3 of 2 accepted")
	}
}
