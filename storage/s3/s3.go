// Package s3 is the storage backend for S3 and S3-compatible stores (AWS,
// OVH, Scaleway, MinIO, versitygw…).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// Storage serves the objects below a prefix of a bucket.
type Storage struct {
	client *s3.Client
	// lister is the HTTP client of listings, their answers bounded.
	lister *http.Client
	bucket string
	prefix string // "" or ending with "/"
	// maxError bounds the body of an answer that is not a success.
	maxError int64
}

// Open is the registry's opener for s3://bucket/prefix. By default it
// takes what the AWS tools take: the standard credential chain, AWS_REGION,
// and the endpoint from --s3-endpoint or AWS_ENDPOINT_URL_S3. With
// opts.Isolated it takes nothing from the process: see storage.Options.
func Open(ctx context.Context, u *url.URL, opts storage.Options) (storage.Storage, error) {
	var cfg aws.Config
	endpoint := opts.S3Endpoint
	if opts.Isolated {
		cfg = isolatedConfig(opts)
	} else {
		var loadOpts []func(*config.LoadOptions) error
		if opts.S3AccessKey != "" {
			loadOpts = append(loadOpts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(opts.S3AccessKey, opts.S3SecretKey, "")))
		}
		if opts.S3Region != "" {
			loadOpts = append(loadOpts, config.WithRegion(opts.S3Region))
		}
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, loadOpts...); err != nil {
			return nil, fmt.Errorf("AWS configuration: %w", err)
		}
		if endpoint == "" {
			endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible stores rarely care
	}
	return newStorage(cfg, u.Host, u.Path, endpoint, opts.S3PathStyle, opts.Isolated, opts.Guard)
}

// isolatedConfig is a configuration built from opts alone: no environment,
// no shared files, no credential chain (hence no instance metadata).
func isolatedConfig(opts storage.Options) aws.Config {
	cfg := aws.Config{Region: opts.S3Region, Credentials: aws.AnonymousCredentials{}}
	if opts.S3AccessKey != "" {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(opts.S3AccessKey, opts.S3SecretKey, "")
	}
	return cfg
}

// New serves bucket/prefix with cfg's credentials.
func New(cfg aws.Config, bucket, prefix, endpoint string, pathStyle bool) (*Storage, error) {
	return newStorage(cfg, bucket, prefix, endpoint, pathStyle, false, nil)
}

// newStorage serves bucket/prefix; isolated forces the endpoint to be
// exactly endpoint (none: AWS's), and every connection goes through guard.
func newStorage(cfg aws.Config, bucket, prefix, endpoint string, pathStyle, isolated bool, guard *netguard.Guard) (*Storage, error) {
	if bucket == "" {
		return nil, errors.New("s3 location without a bucket")
	}
	base := transport(guard, isolated)
	maxError := maxErrorAnswer
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		switch {
		case endpoint != "":
			o.BaseEndpoint = aws.String(endpoint)
		case isolated:
			o.BaseEndpoint = nil // whatever the SDK found in the environment
		}
		o.UsePathStyle = pathStyle
		// Retries are the storage decorator's, so that each one is counted.
		o.Retryer = aws.NopRetryer{}
		// Ranged reads of a header have no full-object checksum to check.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.HTTPClient = &http.Client{Transport: boundedErrors{base: base, max: maxError}}
	})
	prefix = strings.TrimPrefix(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	lister := &http.Client{Transport: boundedAnswers{base: base, max: maxListAnswer}}
	return &Storage{client: client, lister: lister, bucket: bucket, prefix: prefix, maxError: maxError}, nil
}

// maxListAnswer bounds one ListObjectsV2 answer: 1,000 keys of at most
// 1,024 bytes take under 2 MB, and the SDK decodes an answer whole, so a
// server sending one without end would take all memory.
var maxListAnswer int64 = 16 << 20

// errAnswerTooLong stops the SDK's reading of an answer past the bound.
var errAnswerTooLong = errors.New("answer too long")

// maxErrorAnswer bounds the body of an answer that is not a success: S3's
// are a few hundred bytes of XML, which the SDK reads whole to decode,
// so a server sending one without end would take all memory.
var maxErrorAnswer int64 = 1 << 20

// boundedErrors bounds the body of answers that are not successes; a
// success's (a tile's bytes) is read into the bytes asked for, no more.
type boundedErrors struct {
	base http.RoundTripper
	max  int64
}

func (b boundedErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(r)
	if err == nil && resp.StatusCode >= 300 {
		resp.Body = &boundedBody{ReadCloser: resp.Body, left: b.max}
	}
	return resp, err
}

// boundedAnswers fails the reading of any answer body past max bytes.
type boundedAnswers struct {
	base http.RoundTripper
	max  int64
}

func (b boundedAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(r)
	if err == nil {
		resp.Body = &boundedBody{ReadCloser: resp.Body, left: b.max}
	}
	return resp, err
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errAnswerTooLong
	}
	// One byte past the bound tells an answer of exactly max bytes from
	// a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, errAnswerTooLong
	}
	return n, err
}

// transport dials through guard. A guarded or isolated client ignores
// HTTPS_PROXY: a proxy would connect on our behalf where the guard cannot
// see.
func transport(guard *netguard.Guard, isolated bool) *http.Transport {
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialWithTimeout(guard),
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: handshakeTimeout,
		// Bounds the wait for an answer's headers; bodies are small.
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
	if guard != nil || isolated {
		t.Proxy = nil
	}
	return t
}

// handshakeTimeout bounds a TCP connect and a TLS handshake each.
const handshakeTimeout = 15 * time.Second

func dialWithTimeout(guard *netguard.Guard) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
		return guard.DialContext(ctx, network, addr)
	}
}

// List is one ListObjectsV2 page; cursor is the continuation token. The
// listing is flat: no folders to descend into.
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if s.prefix != "" {
		in.Prefix = aws.String(s.prefix)
	}
	if cursor != "" {
		in.ContinuationToken = aws.String(cursor)
	}
	out, err := s.client.ListObjectsV2(ctx, in, func(o *s3.Options) { o.HTTPClient = s.lister })
	if errors.Is(err, errAnswerTooLong) {
		return storage.Page{}, fmt.Errorf("%w: listing s3://%s/%s: an answer over %d bytes", storage.ErrTooLarge, s.bucket, s.prefix, s.lister.Transport.(boundedAnswers).max)
	}
	if err != nil {
		return storage.Page{}, s.mapErr(ctx, "listing", err)
	}
	var page storage.Page
	for _, o := range out.Contents {
		key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
		if key == "" || strings.HasSuffix(key, "/") {
			continue // folder markers
		}
		page.Objects = append(page.Objects, storage.Object{
			Key:     key,
			Size:    aws.ToInt64(o.Size),
			ModTime: aws.ToTime(o.LastModified).UTC(),
			ETag:    strings.Trim(aws.ToString(o.ETag), `"`),
		})
	}
	if aws.ToBool(out.IsTruncated) {
		// A truncated page may hold no object at all; the token still counts.
		next := aws.ToString(out.NextContinuationToken)
		if next == "" || next == cursor {
			return storage.Page{}, fmt.Errorf("listing: truncated page without a new continuation token")
		}
		page.Next = next
	}
	return page, nil
}

// ReadAt is one ranged GetObject.
func (s *Storage) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)),
	})
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
			return 0, io.EOF
		}
		return 0, s.mapErr(ctx, key, err)
	}
	defer out.Body.Close()
	total, err := checkRange(out.ContentRange, off)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	n, err := io.ReadFull(out.Body, p)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		// Shorter than asked: the object ends there, or the connection was
		// cut. The announced lengths tell which.
		if total >= 0 && off+int64(n) < total || n < int(aws.ToInt64(out.ContentLength)) {
			return n, storage.Transient(fmt.Errorf("reading %s: body cut after %d bytes", key, n))
		}
		return n, io.EOF
	case err != nil:
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, storage.Transient(fmt.Errorf("reading %s: %w", key, err))
	}
	return n, nil
}

// checkRange reads a Content-Range answer ("bytes first-last/total"),
// refusing one that does not start at off, and returns the object's total
// size, or -1 when the answer does not say.
func checkRange(contentRange *string, off int64) (int64, error) {
	v := aws.ToString(contentRange)
	if v == "" {
		if off > 0 {
			return -1, errors.New("the store ignored the requested range")
		}
		return -1, nil
	}
	var first, last int64
	var total string
	if _, err := fmt.Sscanf(v, "bytes %d-%d/%s", &first, &last, &total); err != nil {
		return -1, fmt.Errorf("unreadable Content-Range %q", v)
	}
	if first != off {
		return -1, fmt.Errorf("asked for bytes from %d, got %q", off, v)
	}
	size, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1, nil // "*": size unknown
	}
	return size, nil
}

// Stat is one HeadObject.
func (s *Storage) Stat(ctx context.Context, key string) (storage.Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return storage.Object{}, s.mapErr(ctx, key, err)
	}
	return storage.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified).UTC(), ETag: strings.Trim(aws.ToString(out.ETag), `"`)}, nil
}

// Close releases idle connections.
func (s *Storage) Close() error { return nil }

// mapErr turns SDK errors into the storage's reasons.
func (s *Storage) mapErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, netguard.ErrRefused) {
		return fmt.Errorf("%s: %w", what, err) // final: retrying changes nothing
	}
	if errors.Is(err, errAnswerTooLong) {
		// Final: the same server would send the same again.
		return fmt.Errorf("%w: s3://%s/%s%s: an error answer over %d bytes", storage.ErrTooLarge, s.bucket, s.prefix, what, s.maxError)
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("%w: s3://%s/%s%s", storage.ErrNotFound, s.bucket, s.prefix, what)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		switch {
		case code == http.StatusNotFound:
			return fmt.Errorf("%w: %s: %w", storage.ErrNotFound, what, err)
		case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
			return storage.Transient(fmt.Errorf("%s: %w", what, err))
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "SlowDown" || ae.ErrorCode() == "RequestTimeout") {
			return storage.Transient(fmt.Errorf("%s: %w", what, err))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	// No HTTP answer at all: the network failed.
	return storage.Transient(fmt.Errorf("%s: %w", what, err))
}
