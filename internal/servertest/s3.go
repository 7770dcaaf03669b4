package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// S3Server is a versitygw gateway over a folder; each sub-folder is a bucket.
type S3Server struct {
	Endpoint       string
	Access, Secret string
	Root           string
}

// VersityGW starts versitygw (POSIX backend) over a fresh folder holding
// the bucket.
func VersityGW(t testing.TB, bucket string) S3Server {
	t.Helper()
	bin := Binary(t, "versitygw", os.Getenv("VERSITYGW"), filepath.Join(ModuleRoot(t), ".tools", "versitygw"))
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	s := S3Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Access: "pcrs-test-access", Secret: "pcrs-test-secret-key", Root: root}
	Start(t, port, bin, "--access", s.Access, "--secret", s.Secret, "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", root)
	return s
}
