package servertest

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Vsftpd serves root to anonymous users, passive mode on loopback.
func Vsftpd(t testing.TB, root string) string {
	t.Helper()
	return vsftpd(t, root)
}

// VsftpdTLS is Vsftpd with explicit TLS (AUTH TLS) forced on login and on
// every data connection, with the certificate and key in PEM files. A
// data connection must resume the control connection's TLS session, as
// vsftpd requires by default (require_ssl_reuse). It returns an ftps://
// URL.
func VsftpdTLS(t testing.TB, root, certFile, keyFile string) string {
	t.Helper()
	u := vsftpd(t, root,
		"ssl_enable=YES",
		"allow_anon_ssl=YES",
		"force_anon_logins_ssl=YES",
		"force_anon_data_ssl=YES",
		"rsa_cert_file="+certFile,
		"rsa_private_key_file="+keyFile,
	)
	return "ftps" + strings.TrimPrefix(u, "ftp")
}

func vsftpd(t testing.TB, root string, extra ...string) string {
	t.Helper()
	bin := Binary(t, "vsftpd", "/usr/sbin/vsftpd")
	if err := os.MkdirAll("/var/run/vsftpd/empty", 0o755); err != nil {
		t.Fatalf("vsftpd needs its secure_chroot_dir: %v", err)
	}
	dir := t.TempDir()
	port := FreePort(t)
	pasv := PortRange(t, 40)
	conf := WriteFile(t, dir, "vsftpd.conf", lines(
		"listen=YES",
		"listen_ipv6=NO",
		"listen_address=127.0.0.1",
		fmt.Sprintf("listen_port=%d", port),
		"background=NO",
		"anonymous_enable=YES",
		"no_anon_password=YES",
		"anon_root="+root,
		"local_enable=NO",
		"write_enable=NO",
		"pasv_enable=YES",
		"pasv_address=127.0.0.1",
		fmt.Sprintf("pasv_min_port=%d", pasv),
		fmt.Sprintf("pasv_max_port=%d", pasv+39),
		"seccomp_sandbox=NO",
		"secure_chroot_dir=/var/run/vsftpd/empty",
		"xferlog_enable=NO",
		"use_localtime=NO",
		"max_clients=200",
		"max_per_ip=200",
	)+lines(extra...))
	OpenUp(t, root)
	Start(t, port, bin, conf)
	return fmt.Sprintf("ftp://127.0.0.1:%d/", port)
}

// VsftpdTree writes files into a fresh folder and serves it with Vsftpd.
func VsftpdTree(t testing.TB, files map[string][]byte, mtime time.Time) *url.URL {
	t.Helper()
	root := t.TempDir()
	WriteTree(t, root, files, mtime)
	u, err := url.Parse(Vsftpd(t, root))
	if err != nil {
		t.Fatal(err)
	}
	return u
}
