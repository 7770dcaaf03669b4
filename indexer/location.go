package indexer

import (
	"net/url"
	"path"
	"strings"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// gdalLocator returns where GDAL opens an object key of the storage at
// location: a local path, /vsis3/bucket/key for S3, /vsicurl/URL for web
// servers and plain FTP. It returns "" where GDAL has no virtual file system
// able to reach the storage: SFTP (GDAL has no /vsisftp/) and FTPS with
// explicit TLS. No credential ever goes into a location: it is built from
// the scheme, host and path the backend itself connects to (not from
// storage.Redact's text, which may hide more than the userinfo).
func gdalLocator(location string) func(key string) string {
	none := func(string) string { return "" }
	u, err := storage.ParseLocation(location)
	if err != nil {
		return none
	}
	switch u.Scheme {
	case "file":
		return func(key string) string { return path.Join(u.Path, key) }
	case "s3":
		prefix := "/vsis3/" + path.Join(u.Host, strings.TrimPrefix(u.Path, "/"))
		return func(key string) string { return prefix + "/" + key }
	case "http", "https", "ftp":
		v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
		if !strings.HasSuffix(v.Path, "/") {
			v.Path += "/"
		}
		prefix := "/vsicurl/" + v.String()
		return func(key string) string {
			segs := strings.Split(key, "/")
			for i, s := range segs {
				segs[i] = url.PathEscape(s)
			}
			return prefix + strings.Join(segs, "/")
		}
	}
	return none
}
