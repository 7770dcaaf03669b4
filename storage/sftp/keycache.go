package sftp

import (
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/ssh"
)

// An encrypted key costs its bcrypt rounds on every decryption: 0.12 s at
// ssh-keygen's 16, 0.99 s at 128 (BenchmarkDecryptKey), and the service
// opens a storage for every scan, every check and every file an owner
// downloads. decrypted keeps the keys already decrypted, by a digest of
// the key and its passphrase: the same pair always gives the same key,
// and a wrong passphrase is never kept.
var decrypted = keyCache{max: 64}

// decrypt is ssh.ParsePrivateKeyWithPassphrase; tests count its calls.
var decrypt = ssh.ParsePrivateKeyWithPassphrase

type keyCache struct {
	mu    sync.Mutex
	max   int
	keys  map[[sha256.Size]byte]ssh.Signer
	order [][sha256.Size]byte // oldest first, evicted first
}

// signer decrypts raw with passphrase, or returns what an earlier call
// decrypted from the same pair. Two first calls at once both decrypt.
func (c *keyCache) signer(raw, passphrase []byte) (ssh.Signer, error) {
	h := sha256.New()
	h.Write(raw)
	h.Write([]byte{0})
	h.Write(passphrase)
	var id [sha256.Size]byte
	h.Sum(id[:0])
	c.mu.Lock()
	s, ok := c.keys[id]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := decrypt(raw, passphrase)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[id]; ok {
		return c.keys[id], nil
	}
	if c.keys == nil {
		c.keys = map[[sha256.Size]byte]ssh.Signer{}
	}
	if len(c.order) >= c.max {
		delete(c.keys, c.order[0])
		c.order = c.order[1:]
	}
	c.keys[id] = s
	c.order = append(c.order, id)
	return s, nil
}
