package service

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// SecretKeyEnv is the environment variable holding the credentials key
// (base64 of 32 bytes), when no key file is given.
const SecretKeyEnv = "PCRS_INDEXER_SECRET_KEY"

// ErrNoSecretKey: the service was asked to keep credentials without a key
// to encrypt them with.
var ErrNoSecretKey = errors.New("no secret key to encrypt credentials with: give --secret-key-file or " + SecretKeyEnv + " (base64 of 32 random bytes, e.g. `head -c32 /dev/urandom | base64`)")

// LoadSecretKey reads the credentials key from file when given, else from
// $PCRS_INDEXER_SECRET_KEY; nil, nil when there is neither.
func LoadSecretKey(file string) ([]byte, error) {
	text := os.Getenv(SecretKeyEnv)
	from := SecretKeyEnv
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		text, from = string(raw), file
	}
	if text == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secret key in %s: want base64 of exactly 32 bytes", from)
	}
	return key, nil
}

// sealer encrypts credentials with AES-256-GCM, a random nonce per value,
// the record's id as associated data (a sealed value moved to another
// record does not open).
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key: %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead}, nil
}

func (s *sealer) seal(id string, c Credentials) (string, error) {
	plain, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(id))), nil
}

var errUnsealable = errors.New("stored credentials do not decrypt with this secret key")

func (s *sealer) open(id, sealed string) (Credentials, error) {
	var c Credentials
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return c, fmt.Errorf("storage %s: %w", id, errUnsealable)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return c, fmt.Errorf("storage %s: %w", id, errUnsealable)
	}
	return c, json.Unmarshal(plain, &c)
}
