package s3

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// MaxPutSize is S3's limit on one PutObject. Outputs are far below it (a
// national dalles.geojson is hundreds of MiB); the SDK's multipart upload
// manager is not among this module's dependencies.
const MaxPutSize = 5 << 30

var _ storage.Writer = (*Storage)(nil)

// Put is one PutObject of key below the storage's prefix. The caller sets
// the request's deadline through ctx and retries: each attempt must be
// counted and bounded like a read.
func (s *Storage) Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error {
	if err := writableKey(key); err != nil {
		return err
	}
	if size > MaxPutSize {
		return fmt.Errorf("writing s3://%s/%s%s: %d bytes, over S3's single-request limit of 5 GiB", s.bucket, s.prefix, key, size)
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          body,
		ContentLength: aws.Int64(size),
	})
	if err != nil {
		return fmt.Errorf("writing s3://%s/%s%s: %w", s.bucket, s.prefix, key, s.mapErr(ctx, key, err))
	}
	return nil
}

// Delete is one DeleteObject of key below the storage's prefix; S3 answers
// a key already absent with success.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := writableKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return fmt.Errorf("deleting s3://%s/%s%s: %w", s.bucket, s.prefix, key, s.mapErr(ctx, key, err))
	}
	return nil
}

// writableKey refuses keys that are not clean relative paths: S3 itself
// takes "../x" as a name, but gateways over a file system (versitygw's
// POSIX backend, MinIO's) resolve it, and a write must stay below the
// prefix.
func writableKey(key string) error {
	if key == "" || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q names no object", storage.ErrBadKey, key)
	}
	if _, err := storage.JoinKey("/", key); err != nil {
		return err
	}
	return nil
}
