package servertest

import (
	"fmt"
	"path/filepath"
	"testing"
)

// HTTPServer is a web server serving a tree's listings.
type HTTPServer struct {
	// URL is the listing of the served tree, ending with "/".
	URL string
	// AccessLog is the server's access log (one line per request).
	AccessLog string
	// PGID is the server's process group, gone once the test has ended.
	PGID int
}

// Nginx serves root's content at /tiles/ with autoindex (HTML, or JSON).
func Nginx(t testing.TB, root string, jsonIndex bool) HTTPServer {
	t.Helper()
	bin := Binary(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	port := FreePort(t)
	format := "html"
	if jsonIndex {
		format = "json"
	}
	access := filepath.Join(dir, "access.log")
	conf := WriteFile(t, dir, "nginx.conf", lines(
		"user root;",
		"worker_processes 2;",
		"pid "+filepath.Join(dir, "nginx.pid")+";",
		"error_log "+filepath.Join(dir, "error.log")+";",
		"events { worker_connections 1024; }",
		"http {",
		"  access_log "+access+" combined;",
		"  client_body_temp_path "+dir+"/body; proxy_temp_path "+dir+"/proxy; fastcgi_temp_path "+dir+"/fcgi; uwsgi_temp_path "+dir+"/uwsgi; scgi_temp_path "+dir+"/scgi;",
		"  keepalive_requests 100000;",
		fmt.Sprintf("  server { listen 127.0.0.1:%d; root %s;", port, filepath.Dir(root)),
		fmt.Sprintf("    location /%s/ { alias %s/; autoindex on; autoindex_format %s; }", "tiles", root, format),
		"  }",
		"}",
	))
	pgid := Start(t, port, bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	return HTTPServer{URL: fmt.Sprintf("http://127.0.0.1:%d/tiles/", port), AccessLog: access, PGID: pgid}
}

// Apache serves root at /tiles/ with mod_autoindex as Debian configures it
// (FancyIndexing, HTMLTable).
func Apache(t testing.TB, root string) HTTPServer {
	t.Helper()
	bin := Binary(t, "apache2", "/usr/sbin/apache2")
	dir := t.TempDir()
	OpenUp(t, dir)
	port := FreePort(t)
	mods := "/usr/lib/apache2/modules/"
	access := filepath.Join(dir, "access.log")
	conf := WriteFile(t, dir, "apache2.conf", lines(
		"ServerRoot "+dir,
		"DefaultRuntimeDir "+dir,
		"PidFile "+filepath.Join(dir, "httpd.pid"),
		"Mutex file:"+dir+" default",
		"LoadModule mpm_event_module "+mods+"mod_mpm_event.so",
		"LoadModule authz_core_module "+mods+"mod_authz_core.so",
		"LoadModule dir_module "+mods+"mod_dir.so",
		"LoadModule autoindex_module "+mods+"mod_autoindex.so",
		"LoadModule mime_module "+mods+"mod_mime.so",
		"LoadModule alias_module "+mods+"mod_alias.so",
		"TypesConfig /etc/mime.types",

		"User nobody",
		"Group nogroup",
		"ServerName localhost",
		fmt.Sprintf("Listen 127.0.0.1:%d", port),
		"ErrorLog "+filepath.Join(dir, "error.log"),
		`LogFormat "%h %l %u %t \"%r\" %>s %b" common`,
		"CustomLog "+access+" common",
		"KeepAlive On",
		"MaxKeepAliveRequests 0",
		"Alias /tiles/ "+root+"/",
		"<Directory "+root+">",
		"  Options +Indexes",
		"  IndexOptions FancyIndexing HTMLTable VersionSort",
		"  Require all granted",
		"</Directory>",
	))
	pgid := Start(t, port, bin, "-f", conf, "-D", "FOREGROUND")
	return HTTPServer{URL: fmt.Sprintf("http://127.0.0.1:%d/tiles/", port), AccessLog: access, PGID: pgid}
}

// Lighttpd serves root at /tiles/ with mod_dirlisting.
func Lighttpd(t testing.TB, root string) HTTPServer {
	t.Helper()
	bin := Binary(t, "lighttpd", "/usr/sbin/lighttpd")
	dir := t.TempDir()
	port := FreePort(t)
	access := filepath.Join(dir, "access.log")
	conf := WriteFile(t, dir, "lighttpd.conf", lines(
		`server.modules = ("mod_alias", "mod_dirlisting", "mod_accesslog")`,
		`server.document-root = "`+dir+`"`,
		`server.bind = "127.0.0.1"`,
		fmt.Sprintf(`server.port = %d`, port),
		`server.pid-file = "`+filepath.Join(dir, "lighttpd.pid")+`"`,
		`server.errorlog = "`+filepath.Join(dir, "error.log")+`"`,
		`accesslog.filename = "`+access+`"`,
		`alias.url = ("/tiles/" => "`+root+`/")`,
		`dir-listing.activate = "enable"`,
		`mimetype.assign = (".txt" => "text/plain", ".tif" => "image/tiff", ".jp2" => "image/jp2")`,
	))
	pgid := Start(t, port, bin, "-D", "-f", conf)
	return HTTPServer{URL: fmt.Sprintf("http://127.0.0.1:%d/tiles/", port), AccessLog: access, PGID: pgid}
}
