package sftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// fakeDecrypt stands for the bcrypt rounds, which take seconds under the
// race detector: "pp" opens any key, each time as a new signer; anything
// else is a wrong passphrase. It returns the count of calls.
func fakeDecrypt(t *testing.T) *int {
	t.Helper()
	n := new(int)
	orig := decrypt
	decrypt = func(raw, passphrase []byte) (ssh.Signer, error) {
		*n++
		if string(passphrase) != "pp" {
			return nil, x509.IncorrectPasswordError
		}
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		return ssh.NewSignerFromKey(priv)
	}
	t.Cleanup(func() { decrypt = orig })
	return n
}

// TestKeyCache: an encrypted key (written by ssh-keygen) is decrypted once
// for every Open of the same key and passphrase; a wrong passphrase is
// refused every time and never kept; the cache holds at most its bound,
// the oldest key leaving first.
func TestKeyCache(t *testing.T) {
	keygen := keygen(t)
	key := string(keygen(16))
	n := fakeDecrypt(t)
	opts := storage.Options{SFTPPrivateKey: key, SFTPKeyPassphrase: "pp"}
	first, err := privateKey(opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := privateKey(opts)
	if err != nil || again != first || *n != 1 {
		t.Errorf("second Open: same signer %v, %v, %d decryptions; want the first, 1", again == first, err, *n)
	}
	for i := range 2 {
		if _, err := privateKey(storage.Options{SFTPPrivateKey: key, SFTPKeyPassphrase: "wrong"}); !errors.Is(err, ErrKeyPassphrase) {
			t.Errorf("wrong passphrase, try %d: %v", i, err)
		}
	}
	if *n != 3 {
		t.Errorf("%d decryptions, want a wrong passphrase tried each time (3)", *n)
	}
	other := string(keygen(16))
	if s, err := privateKey(storage.Options{SFTPPrivateKey: other, SFTPKeyPassphrase: "pp"}); err != nil || s == first || *n != 4 {
		t.Errorf("another key with the same passphrase: %v, same signer %v, %d decryptions", err, s == first, *n)
	}

	small := keyCache{max: 2}
	signers := make([]ssh.Signer, 3)
	for i := range signers {
		if signers[i], err = small.signer([]byte{byte(i)}, []byte("pp")); err != nil {
			t.Fatal(err)
		}
		if len(small.keys) != min(i+1, 2) || len(small.order) != len(small.keys) {
			t.Errorf("after %d keys: %d kept, %d in order; bound 2", i+1, len(small.keys), len(small.order))
		}
	}
	if s, _ := small.signer([]byte{2}, []byte("pp")); s != signers[2] {
		t.Error("the newest key was not kept")
	}
	if s, _ := small.signer([]byte{0}, []byte("pp")); s == signers[0] {
		t.Error("the oldest key was kept past the bound")
	}
}

// BenchmarkDecryptKey: what an Open pays for an encrypted key, at
// ssh-keygen's default rounds and at the bound, and once cached.
func BenchmarkDecryptKey(b *testing.B) {
	keygen := keygen(b)
	for _, rounds := range []int{16, maxKDFRounds} {
		raw := keygen(rounds)
		b.Run(fmt.Sprintf("rounds=%d", rounds), func(b *testing.B) {
			for b.Loop() {
				if _, err := decrypt(raw, []byte("pp")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rounds=%d/cached", rounds), func(b *testing.B) {
			c := keyCache{max: 1}
			if _, err := c.signer(raw, []byte("pp")); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := c.signer(raw, []byte("pp")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// keygen makes keys with ssh-keygen itself, encrypted with "pp" and the
// rounds asked.
func keygen(b testing.TB) func(rounds int) []byte {
	bin := servertest.Binary(b, "ssh-keygen", "/usr/bin/ssh-keygen")
	return func(rounds int) []byte {
		file := filepath.Join(b.TempDir(), "key")
		if out, err := exec.Command(bin, "-q", "-t", "ed25519", "-a", strconv.Itoa(rounds), "-N", "pp", "-f", file).CombinedOutput(); err != nil {
			b.Fatalf("ssh-keygen: %v %s", err, out)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		if kdfRounds(raw) != uint32(rounds) {
			b.Fatalf("ssh-keygen wrote %d rounds, asked %d", kdfRounds(raw), rounds)
		}
		return raw
	}
}
