package indexer

import "testing"

func TestGDALLocator(t *testing.T) {
	for _, tt := range []struct{ location, key, want string }{
		{"/data/livraison", "dalles/a.jp2", "/data/livraison/dalles/a.jp2"},
		{"file:///data/livraison/", "a.tif", "/data/livraison/a.tif"},
		{"s3://bucket/pcrs/aude", "dalles/a.jp2", "/vsis3/bucket/pcrs/aude/dalles/a.jp2"},
		{"s3://bucket", "a.jp2", "/vsis3/bucket/a.jp2"},
		{"https://user:secret@host.example/pcrs/?token=abc", "d 1/a#b.jp2", "/vsicurl/https://host.example/pcrs/d%201/a%23b.jp2"},
		{"http://host:8080/x", "a.tif", "/vsicurl/http://host:8080/x/a.tif"},
		{"ftp://anonymous@host/pub", "a.jp2", "/vsicurl/ftp://host/pub/a.jp2"},
		{"sftp://u@host:22/data", "a.jp2", ""},
		{"ftps://u@host/data", "a.jp2", ""},
	} {
		if got := gdalLocator(tt.location)(tt.key); got != tt.want {
			t.Errorf("%s + %s = %q, want %q", tt.location, tt.key, got, tt.want)
		}
	}
}
