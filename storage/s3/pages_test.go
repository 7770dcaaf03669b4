package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
)

// TestEmptyTruncatedPages: some stores answer pages with no object that
// still say "truncated"; the walk must follow them to the end.
func TestEmptyTruncatedPages(t *testing.T) {
	var calls atomic.Int32
	pages := map[string]string{
		"":   `<IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken>`,
		"t1": `<IsTruncated>true</IsTruncated><NextContinuationToken>t2</NextContinuationToken>`,
		"t2": `<Contents><Key>p/a.jp2</Key><Size>10</Size><ETag>"e1"</ETag><LastModified>2024-01-02T03:04:05.000Z</LastModified></Contents><IsTruncated>true</IsTruncated><NextContinuationToken>t3</NextContinuationToken>`,
		"t3": `<Contents><Key>p/b/c.TIF</Key><Size>20</Size><ETag>"e2"</ETag><LastModified>2024-01-02T03:04:05.000Z</LastModified></Contents><Contents><Key>p/b/</Key><Size>0</Size></Contents><IsTruncated>false</IsTruncated>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, ok := pages[r.URL.Query().Get("continuation-token")]
		if !ok || r.URL.Query().Get("prefix") != "p/" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>%s</ListBucketResult>`, body)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
	s, err := s3.New(cfg, "b", "p", srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []storage.Object
	if err := storage.Walk(context.Background(), s, func(o storage.Object) error { got = append(got, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "a.jp2" || got[0].ETag != "e1" || got[1].Key != "b/c.TIF" || got[1].Size != 20 {
		t.Errorf("walked %+v", got)
	}
	if calls.Load() != 4 {
		t.Errorf("%d listing requests, want 4", calls.Load())
	}
}

// TestEndlessListingAnswer: a server answering a listing with objects
// without end is cut at the bound (ErrTooLarge, final), where the SDK
// would have decoded all of it; an answer under the bound still lists.
func TestEndlessListingAnswer(t *testing.T) {
	defer s3.SetMaxListAnswer(1 << 20)()
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>`)
		entries := 5
		if r.URL.Query().Get("prefix") == "p/" {
			entries = 1 << 30 // until the client hangs up
		}
		for i := range entries {
			n, err := fmt.Fprintf(w, `<Contents><Key>p/%09d.tif</Key><Size>10</Size><ETag>"e"</ETag><LastModified>2024-01-02T03:04:05.000Z</LastModified></Contents>`, i)
			written.Add(int64(n))
			if err != nil || written.Load() > 256<<20 {
				return
			}
		}
		fmt.Fprint(w, `<IsTruncated>false</IsTruncated></ListBucketResult>`)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
	s, err := s3.New(cfg, "b", "p", srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.List(context.Background(), "")
	if !errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), "1048576 bytes") {
		t.Fatalf("an endless answer: %v, want a final ErrTooLarge naming the bound", err)
	}
	srv.CloseClientConnections()
	if w := written.Load(); w > 64<<20 {
		t.Errorf("the server wrote %d bytes before the client stopped reading", w)
	}
	short, err := s3.New(cfg, "b", "q", srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	if page, err := short.List(context.Background(), ""); err != nil {
		t.Fatalf("a short answer: %d objects, %v", len(page.Objects), err)
	}
}

// TestEndlessErrorAnswer: a server answering a read with an error whose
// body never ends fails the read with a final ErrTooLarge once the bound
// is read, instead of the SDK taking all memory to decode it; an
// ordinary error answer is the ordinary error.
func TestEndlessErrorAnswer(t *testing.T) {
	defer s3.SetMaxErrorAnswer(64 << 10)()
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>`)
		if strings.HasSuffix(r.URL.Path, "/endless.tif") {
			chunk := strings.Repeat("x", 4096)
			for written.Load() < 256<<20 {
				n, err := fmt.Fprint(w, chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}
		fmt.Fprint(w, `</Message></Error>`)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
	s, err := s3.New(cfg, "b", "p", srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_, err = s.ReadAt(context.Background(), "endless.tif", buf, 0)
	if !errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), "endless.tif") || !strings.Contains(err.Error(), "65536 bytes") {
		msg := fmt.Sprint(err)
		t.Fatalf("an endless error answer: %.300s (%d bytes), want a final ErrTooLarge naming the object and the bound", msg, len(msg))
	}
	srv.CloseClientConnections()
	if w := written.Load(); w > 64<<20 {
		t.Errorf("the server wrote %d bytes before the client stopped reading", w)
	}
	_, err = s.ReadAt(context.Background(), "short.tif", buf, 0)
	if err == nil || errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("an ordinary error answer: %v", err)
	}
}
