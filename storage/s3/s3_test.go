package s3_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
)

const bucket = "pcrs"

func awsConfig(srv servertest.S3Server) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(srv.Access, srv.Secret, "")}
}

// upload puts files through the S3 API, so that the store computes ETags.
func upload(t *testing.T, srv servertest.S3Server, prefix string, files map[string][]byte) {
	t.Helper()
	client := awss3.NewFromConfig(awsConfig(srv), func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(srv.Endpoint)
		o.UsePathStyle = true
	})
	for k, content := range files {
		_, err := client.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + k), Body: bytes.NewReader(content)})
		if err != nil {
			t.Fatalf("uploading %s: %v", k, err)
		}
	}
}

func TestConformanceVersityGW(t *testing.T) {
	storagetest.Run(t, storagetest.Caps{ETag: true}, func(t *testing.T, files map[string][]byte) storage.Storage {
		srv := servertest.VersityGW(t, bucket)
		// Objects beside the prefix must not leak into the listing.
		upload(t, srv, "", map[string][]byte{"autre/x.tif": []byte("x"), "livraison-bis/y.tif": []byte("y")})
		upload(t, srv, "livraison/", files)
		s, err := s3.New(awsConfig(srv), bucket, "/livraison", srv.Endpoint, true)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
