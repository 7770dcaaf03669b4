package batch

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/batch/output"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
)

func gatewayOpener(srv servertest.S3Server) Opener {
	return func(ctx context.Context, loc string) (*output.Prefix, error) {
		return output.Open(ctx, loc, storage.Options{S3Endpoint: srv.Endpoint, S3PathStyle: true, S3AccessKey: srv.Access, S3SecretKey: srv.Secret, Isolated: true},
			storage.RetryPolicy{Attempts: 1, Timeout: 10 * time.Second})
	}
}

const oneFeature = `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":1},"geometry":null}]}`

// TestMergeRemoteShard: of a remote shard, merge takes the published
// livrables (report.json), skips those never published and names that
// are no plain folder, and refuses a published livrable missing an output
// rather than merging less.
func TestMergeRemoteShard(t *testing.T) {
	srv := servertest.VersityGW(t, "pcrs")
	shard := filepath.Join(srv.Root, "pcrs", "shard")
	servertest.WriteTree(t, shard, map[string][]byte{
		"aaaa/report.json":        []byte(`{"counts":{"objects":1,"tiles":1,"readable":1}}`),
		"aaaa/dalles.geojson":     []byte(oneFeature),
		"aaaa/livrables.geojson":  []byte(oneFeature),
		"aaaa/state.db":           []byte("not read"),
		"bbbb/report.failed.json": []byte(`{}`),
		".hidden/report.json":     []byte(`{}`),
		"cccc/report.json":        []byte(`{"counts":{}}`),
		"cccc/livrables.geojson":  []byte(oneFeature),
	}, time.Now())
	ctx, out := context.Background(), filepath.Join(t.TempDir(), "national")
	err := MergeTo(ctx, out, []string{"s3://pcrs/shard"}, nil, gatewayOpener(srv))
	if !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), "s3://pcrs/shard/cccc/ holds report.json but no dalles.geojson") {
		t.Fatalf("merge with an incomplete livrable: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(shard, "cccc")); err != nil {
		t.Fatal(err)
	}
	if err := MergeTo(ctx, out, []string{"s3://pcrs/shard"}, nil, gatewayOpener(srv)); err != nil {
		t.Fatal(err)
	}
	var r Report
	raw, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Livrables) != 1 || r.Livrables[0].ID != "aaaa" || r.Counts.Readable != 1 {
		t.Errorf("merged report %s (%v), want livrable aaaa alone", raw, err)
	}
}
