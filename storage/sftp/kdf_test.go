package sftp

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// TestKDFRoundsBounded: an encrypted key asking for more bcrypt rounds
// than maxKDFRounds is refused before any round is run (a million would
// hold a CPU for hours on every connection); the bound itself is accepted.
func TestKDFRoundsBounded(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pp"))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(blk.Bytes, []byte("bcrypt")) + len("bcrypt") + 4 + 4 + 16 // options length, salt length, salt
	for _, c := range []struct {
		rounds uint32
		ok     bool
	}{{16, true}, {maxKDFRounds, true}, {maxKDFRounds + 1, false}, {1 << 31, false}} {
		binary.BigEndian.PutUint32(blk.Bytes[at:], c.rounds)
		key := string(pem.EncodeToMemory(blk))
		if got := kdfRounds([]byte(key)); got != c.rounds {
			t.Fatalf("kdfRounds = %d, want %d", got, c.rounds)
		}
		if c.rounds != 16 && c.rounds != maxKDFRounds+1 {
			continue // parsed only: decrypting is slow, for hours past the bound
		}
		_, err := privateKey(storage.Options{SFTPPrivateKey: key, SFTPKeyPassphrase: "pp"})
		switch {
		case !c.ok && !errors.Is(err, ErrKeyUnreadable):
			t.Errorf("%d rounds: %v, want refused as unreadable", c.rounds, err)
		case c.ok && errors.Is(err, ErrKeyUnreadable):
			t.Errorf("%d rounds refused: %v", c.rounds, err)
		case c.rounds == 16 && err != nil: // the rounds it was encrypted with
			t.Errorf("the key as written: %v", err)
		}
	}
	for _, raw := range []string{"", "not a key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"} {
		if r := kdfRounds([]byte(raw)); r != 0 {
			t.Errorf("kdfRounds(%q) = %d", raw, r)
		}
	}
}
