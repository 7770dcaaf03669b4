package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/batch"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
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

// splitStorageSet is storageSet with rows in every one of the shards: a
// row's shard hashes its location, and the folders are random.
func splitStorageSet(t *testing.T, n, shards int) string {
	t.Helper()
	for range 20 {
		manifest := storageSet(t, n)
		rows, err := batch.LoadManifest(manifest)
		if err != nil {
			t.Fatal(err)
		}
		owned := map[int]bool{}
		for _, r := range rows {
			for i := range shards {
				if (batch.Shard{Index: i, Count: shards}).Owns(r) {
					owned[i] = true
				}
			}
		}
		if len(owned) == shards {
			return manifest
		}
	}
	t.Fatalf("no set of %d storages fell in all %d shards", n, shards)
	return ""
}

// s3Env reaches the gateway as the AWS tools would, with keys from the
// environment and nothing from the host's AWS files.
func s3Env(srv servertest.S3Server) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + srv.Access, "AWS_SECRET_ACCESS_KEY=" + srv.Secret, "AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
}

// runOK runs the command line in a child process and fails the test unless
// it exits 0.
func runOK(t *testing.T, env []string, args ...string) string {
	t.Helper()
	logs, err := child(t, env, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, logs)
	}
	return logs
}

// batchOutcomes reads the "batch finished" line's outcomes.
func batchOutcomes(t *testing.T, logs string) map[string]int {
	t.Helper()
	for line := range strings.Lines(logs) {
		var ev struct {
			Msg       string         `json:"msg"`
			Livrables map[string]int `json:"livrables"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "batch finished" {
			return ev.Livrables
		}
	}
	t.Fatalf("no batch finished line in:\n%s", logs)
	return nil
}

// readReport reads one livrable's report.json.
func readReport(t *testing.T, path string) indexer.Report {
	t.Helper()
	var r indexer.Report
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBatchS3ShardsMergeLikeLocal: two shards written to s3:// prefixes
// (the real gateway), merged into a local folder and into an s3:// prefix,
// give what the same shards written to local folders give; a rescan to the
// same prefixes takes its tiles from the state kept there.
func TestBatchS3ShardsMergeLikeLocal(t *testing.T) {
	srv := servertest.VersityGW(t, "pcrs")
	env, s3Flags := s3Env(srv), []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style"}
	manifest := splitStorageSet(t, 3, 2)
	work := t.TempDir()
	var local, remote []string
	for i := range 2 {
		shard := fmt.Sprintf("%d/2", i)
		local = append(local, filepath.Join(work, fmt.Sprintf("shard-%d", i)))
		remote = append(remote, fmt.Sprintf("s3://pcrs/shards/shard-%d", i))
		runOK(t, nil, "batch", "--shard", shard, "--out", local[i], "--concurrency", "4", manifest)
		logs := runOK(t, env, append(append([]string{"batch", "--shard", shard, "--out", remote[i], "--concurrency", "4"}, s3Flags...), manifest)...)
		if got := batchOutcomes(t, logs); got[indexer.OutcomeSuccess] == 0 || got[indexer.OutcomeFailed] != 0 {
			t.Fatalf("shard %s: outcomes %v", shard, got)
		}
	}
	fromLocal, fromS3 := filepath.Join(work, "national-local"), filepath.Join(work, "national-s3")
	runOK(t, nil, append([]string{"merge", "--out", fromLocal}, local...)...)
	runOK(t, env, append(append([]string{"merge", "--out", fromS3}, s3Flags...), remote...)...)
	runOK(t, env, append(append([]string{"merge", "--out", "s3://pcrs/national"}, s3Flags...), remote...)...)
	inBucket := filepath.Join(srv.Root, "pcrs", "national")
	for _, name := range []string{indexer.DallesFile, indexer.LivrablesFile, indexer.ReportFile} {
		a, _ := os.ReadFile(filepath.Join(fromLocal, name))
		b, _ := os.ReadFile(filepath.Join(fromS3, name))
		c, _ := os.ReadFile(filepath.Join(inBucket, name))
		if len(b) == 0 || !bytes.Equal(b, c) {
			t.Errorf("%s: merged into a local folder and into s3://pcrs/national, differs", name)
		}
		if name != indexer.ReportFile && !bytes.Equal(a, b) {
			t.Errorf("%s differs between the local and the s3 shards' merge", name)
		}
	}
	ra, rb := readMerged(t, fromLocal), readMerged(t, fromS3)
	// Livrables 0, 1 and 2 hold 1, 2 and 3 tiles, and livrable 0 an empty tile.
	if want := (indexer.Counts{Objects: 7, Tiles: 7, Readable: 6, Problems: 1}); ra.Counts != want || rb.Counts != want {
		t.Errorf("counts %+v (local shards), %+v (s3 shards), want %+v", ra.Counts, rb.Counts, want)
	}
	if len(rb.Livrables) != 3 || len(ra.Livrables) != 3 {
		t.Fatalf("%d and %d livrable reports, want 3", len(ra.Livrables), len(rb.Livrables))
	}
	for i := range ra.Livrables {
		a, b := stripTimes(t, ra.Livrables[i].Report), stripTimes(t, rb.Livrables[i].Report)
		if ra.Livrables[i].ID != rb.Livrables[i].ID || !reflect.DeepEqual(a, b) {
			t.Errorf("livrable %s: reports differ:\n%v\n%v", ra.Livrables[i].ID, a, b)
		}
	}
	for _, l := range rb.Livrables {
		checkBucketFolder(t, srv, remote, l.ID)
	}
	rescanReuses(t, env, s3Flags, manifest, srv, remote)
}

// checkBucketFolder: each livrable's folder holds its outputs and its
// state, and nothing left over from the write check.
func checkBucketFolder(t *testing.T, srv servertest.S3Server, remote []string, id string) {
	t.Helper()
	for _, r := range remote {
		dir := filepath.Join(srv.Root, "pcrs", strings.TrimPrefix(r, "s3://pcrs/"), id)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // the other shard's
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{indexer.DallesFile, indexer.LivrablesFile, indexer.ReportFile, "state.db"}; !reflect.DeepEqual(names, want) {
			t.Errorf("%s/%s holds %q, want %q", r, id, names, want)
		}
		return
	}
	t.Errorf("livrable %s is in no shard's prefix", id)
}

// rescanReuses: scanning shard 0 again to the same prefix reads no tile
// again: the state went to the bucket and came back.
func rescanReuses(t *testing.T, env, s3Flags []string, manifest string, srv servertest.S3Server, remote []string) {
	t.Helper()
	dir := filepath.Join(srv.Root, "pcrs", strings.TrimPrefix(remote[0], "s3://pcrs/"))
	ids, err := os.ReadDir(dir)
	if err != nil || len(ids) == 0 {
		t.Fatalf("shard 0's prefix: %v", err)
	}
	for _, id := range ids {
		if r := readReport(t, filepath.Join(dir, id.Name(), indexer.ReportFile)); r.Counts.Reused != 0 {
			t.Fatalf("first scan of %s reused %d tiles", id.Name(), r.Counts.Reused)
		}
	}
	runOK(t, env, append(append([]string{"batch", "--shard", "0/2", "--out", remote[0]}, s3Flags...), manifest)...)
	for _, id := range ids {
		r := readReport(t, filepath.Join(dir, id.Name(), indexer.ReportFile))
		// counts.reused counts readable tiles only (a problem recalled
		// from the state is reported as a problem).
		if r.Counts.Reused == 0 || r.Counts.Reused != r.Counts.Readable {
			t.Errorf("rescan of %s: counts %+v, want every readable tile reused", id.Name(), r.Counts)
		}
	}
}

// refusingProxy forwards every request to the real gateway (Host kept, so
// that signatures hold), except the PUTs of keys ending with suffix, which
// it answers 503 SlowDown, as an overloaded store does.
func refusingProxy(t *testing.T, target, suffix string) string {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix) {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>refused by the test</Message></Error>`)
			return
		}
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = tu.Scheme, tu.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBatchS3UploadFailure: a livrable whose upload fails is failed (exit
// 1, named, counted), and what the bucket published before stays: nothing
// of it when the first output is refused, its report.json when the last
// one is. A bucket that does not exist fails before any scan.
func TestBatchS3UploadFailure(t *testing.T) {
	srv := servertest.VersityGW(t, "pcrs")
	env := s3Env(srv)
	manifest := storageSet(t, 1)
	rows, err := batch.LoadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	id := indexer.StorageID(rows[0].Location)
	runOK(t, env, "batch", "--out", "s3://pcrs/out", "--s3-endpoint", srv.Endpoint, "--s3-path-style", manifest)
	dir := filepath.Join(srv.Root, "pcrs", "out", id)
	outputs := []string{indexer.DallesFile, indexer.LivrablesFile, indexer.ReportFile}
	before := map[string][]byte{}
	for _, name := range outputs {
		if before[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	published := indexer.PublishedAt(dir)
	for _, refused := range []string{"/" + indexer.DallesFile, "/" + indexer.ReportFile} {
		endpoint := refusingProxy(t, srv.Endpoint, refused)
		metrics := t.TempDir()
		logs, err := child(t, env, "batch", "--out", "s3://pcrs/out", "--s3-endpoint", endpoint, "--s3-path-style", "--retries", "1", "--metrics-file", metrics, manifest)
		checkFailed(t, "refusing "+refused, logs, err, "upload failed", id)
		// The scan's own final event and metrics say failed too: a scan is
		// a success only once its outputs are uploaded.
		if got := scanOutcomes(logs); len(got) != 1 || got[0] != indexer.OutcomeFailed {
			t.Errorf("refusing %s: scan finished with outcomes %q, want one failed", refused, got)
		}
		prom, _ := os.ReadFile(filepath.Join(metrics, "pcrs_indexer_"+id+".prom"))
		last := regexp.MustCompile(`(?m)^pcrs_indexer_last_success_timestamp_seconds\{[^}]*\} (\S+)$`).FindSubmatch(prom)
		var lastSuccess float64
		if last != nil {
			lastSuccess, _ = strconv.ParseFloat(string(last[1]), 64)
		}
		if !regexp.MustCompile(`(?m)^pcrs_indexer_scans_total\{[^}]*outcome="failed"[^}]*\} 1$`).Match(prom) ||
			regexp.MustCompile(`(?m)^pcrs_indexer_scans_total\{[^}]*outcome="success"[^}]*\} [1-9]`).Match(prom) ||
			lastSuccess != float64(published.Unix()) {
			t.Errorf("refusing %s: the metrics should count one failed scan and keep the last success, %d:\n%s", refused, published.Unix(), prom)
		}
		for _, name := range outputs {
			if now, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(now, before[name]) {
				t.Errorf("refusing %s: %s changed in the bucket", refused, name)
			}
		}
		// The attempt's report says what was not published; the next
		// success deletes it.
		if r := readReport(t, filepath.Join(dir, indexer.FailedReportFile)); r.Counts.Readable != 1 {
			t.Errorf("refusing %s: report.failed.json counts %+v", refused, r.Counts)
		}
	}
	runOK(t, env, "batch", "--out", "s3://pcrs/out", "--s3-endpoint", srv.Endpoint, "--s3-path-style", manifest)
	if _, err := os.Stat(filepath.Join(dir, indexer.FailedReportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("report.failed.json still in the bucket after a success: %v", err)
	}
	logs, err := child(t, env, "batch", "--out", "s3://no-such-bucket/out", "--s3-endpoint", srv.Endpoint, "--s3-path-style", "--retries", "0", manifest)
	checkFailed(t, "missing bucket", logs, err, "s3://no-such-bucket/out/"+id+"/ is not writable", id)
	if strings.Contains(logs, `"scan finished"`) {
		t.Errorf("missing bucket: the storage was scanned anyway:\n%s", logs)
	}
}

// scanOutcomes are the outcomes of the "scan finished" events in logs.
func scanOutcomes(logs string) []string {
	var out []string
	for line := range strings.Lines(logs) {
		var ev struct{ Msg, Outcome string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "scan finished" {
			out = append(out, ev.Outcome)
		}
	}
	return out
}

// checkFailed: the batch exited 1, saying why and naming the livrable and
// its storage id, and its last line counts one failed livrable.
func checkFailed(t *testing.T, what, logs string, err error, says, id string) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailed {
		t.Errorf("%s: %v, want exit 1\n%s", what, err, logs)
	}
	for _, want := range []string{says, `"livrable":"Livrable 0"`, id} {
		if !strings.Contains(logs, want) {
			t.Errorf("%s: the logs do not say %q:\n%s", what, want, logs)
		}
	}
	if got := batchOutcomes(t, logs); got[indexer.OutcomeFailed] != 1 || got[indexer.OutcomeSuccess] != 0 {
		t.Errorf("%s: outcomes %v, want one failed", what, got)
	}
}

// TestBatchOutUsage: what cannot be an output is refused before anything
// is scanned, and a secret in --out is never printed.
func TestBatchOutUsage(t *testing.T) {
	manifest := storageSet(t, 1)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--out", "s3://pcrs/out", "--state", filepath.Join(t.TempDir(), "s.db")}, "--state is for a local --out"},
		{[]string{"--out", "https://example.org/out/"}, "cannot be written to"},
		{[]string{"--out", "s3://AKIAEXAMPLE:hunter2@pcrs/out"}, "give credentials by reference"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append(append([]string{"batch"}, c.args...), manifest), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), c.says) || strings.Contains(stderr.String()+stdout.String(), "hunter2") {
			t.Errorf("%q: exit %d, %s", c.args, code, stderr.String())
		}
	}
}

// TestBatchS3ShrinkGuard: the previous report.json is fetched from the
// prefix, so a scan that lost most of its tiles publishes nothing there:
// the previous outputs stay, the attempt's report goes beside them, and
// merge lists the livrable as failed at its last attempt.
func TestBatchS3ShrinkGuard(t *testing.T) {
	srv := servertest.VersityGW(t, "pcrs")
	env, s3Flags := s3Env(srv), []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style"}
	manifest := storageSet(t, 3)
	rows, err := batch.LoadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"batch", "--out", "s3://pcrs/out"}, s3Flags...), manifest)
	runOK(t, env, args...)
	// Livrable 2 loses two of its three tiles.
	shrunk := indexer.StorageID(rows[2].Location)
	for _, tile := range []string{"t1.tif", "t2.tif"} {
		if err := os.Remove(filepath.Join(rows[2].Location, tile)); err != nil {
			t.Fatal(err)
		}
	}
	report := filepath.Join(srv.Root, "pcrs", "out", shrunk, indexer.ReportFile)
	before, _ := os.ReadFile(report)
	logs, err := child(t, env, args...)
	if got := batchOutcomes(t, logs); err == nil || got[indexer.OutcomeFailed] != 1 || got[indexer.OutcomeSuccess] != 2 {
		t.Fatalf("exit %v, outcomes %v, want livrable 2 alone failed\n%s", err, got, logs)
	}
	if now, _ := os.ReadFile(report); !bytes.Equal(now, before) {
		t.Error("the shrunk scan replaced report.json in the bucket")
	}
	if r := readReport(t, filepath.Join(filepath.Dir(report), indexer.FailedReportFile)); r.Counts.Readable != 1 {
		t.Errorf("report.failed.json in the bucket: counts %+v, want the attempt's 1 readable tile", r.Counts)
	}
	national := filepath.Join(t.TempDir(), "national")
	runOK(t, env, append([]string{"merge", "--out", national, "s3://pcrs/out"}, s3Flags...)...)
	if m := readMerged(t, national); !reflect.DeepEqual(m.Failed, []string{shrunk}) || m.Counts.Readable != 6 {
		t.Errorf("merge: failed %v, counts %+v; want %s failed and the 6 tiles published before", m.Failed, m.Counts, shrunk)
	}
}
