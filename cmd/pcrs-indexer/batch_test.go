package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/batch"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// child runs the command line in a separate process (TestMain's hook), with
// extra environment variables.
func child(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PCRS_INDEXER_TEST_ARGS="+strings.Join(args, "\x1f")), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// storageSet writes n small storages of a few tiles each, some with a
// broken tile, and a manifest naming them.
func storageSet(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	var csv strings.Builder
	csv.WriteString("location,name\n")
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("livrable-%02d", i))
		for k := range 1 + i%3 {
			tile := tilegen.Tile{EPSG: 2154, X: 650000 + float64(i)*2000 + float64(k)*200, Y: 6600200, Width: 64, Height: 64}
			if err := tile.Write(filepath.Join(dir, fmt.Sprintf("t%d.tif", k))); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 0 {
			if err := tilegen.WriteFile(filepath.Join(dir, "vide.jp2"), nil); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&csv, "%s,Livrable %d\n", dir, i)
	}
	manifest := filepath.Join(root, "manifest.csv")
	if err := os.WriteFile(manifest, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest
}

// TestShardsMergeLikeOneRun: four Indexed Job pods (JOB_COMPLETION_INDEX
// 0..3, separate processes) then merge give what one process over the whole
// manifest gives.
func TestShardsMergeLikeOneRun(t *testing.T) {
	manifest := storageSet(t, 16)
	work := t.TempDir()
	var shardOuts []string
	nonEmpty := 0
	for i := range 4 {
		out := filepath.Join(work, fmt.Sprintf("shard-%d", i))
		env := []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), "JOB_COMPLETIONS=4"}
		if logs, err := child(t, env, "batch", "--out", out, "--concurrency", "4", manifest); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, logs)
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			nonEmpty++
		}
		shardOuts = append(shardOuts, out)
	}
	if nonEmpty < 2 {
		t.Fatalf("the 16 livrables fell in %d shard(s)", nonEmpty)
	}
	single := filepath.Join(work, "single")
	if logs, err := child(t, nil, "batch", "--out", single, "--concurrency", "4", manifest); err != nil {
		t.Fatalf("single run: %v\n%s", err, logs)
	}
	sharded, whole := filepath.Join(work, "national-sharded"), filepath.Join(work, "national-single")
	for _, m := range []struct {
		out string
		in  []string
	}{{sharded, shardOuts}, {whole, []string{single}}} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"merge", "--out", m.out}, m.in...), &stdout, &stderr); code != exitOK {
			t.Fatalf("merge: exit %d: %s", code, stderr.String())
		}
	}
	for _, name := range []string{indexer.DallesFile, indexer.LivrablesFile} {
		a, _ := os.ReadFile(filepath.Join(sharded, name))
		b, _ := os.ReadFile(filepath.Join(whole, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the sharded and the single run", name)
		}
	}
	var livs struct{ Features []json.RawMessage }
	raw, _ := os.ReadFile(filepath.Join(sharded, indexer.LivrablesFile))
	if err := json.Unmarshal(raw, &livs); err != nil || len(livs.Features) != 16 {
		t.Errorf("%d livrables merged (%v), want 16", len(livs.Features), err)
	}
	ra, rb := readMerged(t, sharded), readMerged(t, whole)
	if !reflect.DeepEqual(ra.Counts, rb.Counts) || !reflect.DeepEqual(ra.ProblemsByReason, rb.ProblemsByReason) {
		t.Errorf("counts differ: %+v %v vs %+v %v", ra.Counts, ra.ProblemsByReason, rb.Counts, rb.ProblemsByReason)
	}
	// 16 livrables of 1, 2 or 3 tiles (31 in all), 4 of them with an empty tile.
	if want := (indexer.Counts{Objects: 35, Tiles: 35, Readable: 31, Problems: 4}); ra.Counts != want {
		t.Errorf("counts %+v, want %+v", ra.Counts, want)
	}
	if len(ra.Livrables) != 16 {
		t.Fatalf("%d livrable reports", len(ra.Livrables))
	}
	for i := range ra.Livrables {
		a, b := stripTimes(t, ra.Livrables[i].Report), stripTimes(t, rb.Livrables[i].Report)
		if ra.Livrables[i].ID != rb.Livrables[i].ID || !reflect.DeepEqual(a, b) {
			t.Errorf("livrable %s: reports differ:\n%v\n%v", ra.Livrables[i].ID, a, b)
		}
	}
}

func readMerged(t *testing.T, dir string) batch.Report {
	t.Helper()
	var r batch.Report
	raw, err := os.ReadFile(filepath.Join(dir, indexer.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// stripTimes drops what differs between two runs of the same scan.
func stripTimes(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "startedAt")
	delete(m, "finishedAt")
	delete(m, "durationSeconds")
	return m
}
