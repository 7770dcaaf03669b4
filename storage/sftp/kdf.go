package sftp

import (
	"bytes"
	"encoding/binary"
	"encoding/pem"
)

// maxKDFRounds bounds the bcrypt rounds of an encrypted OpenSSH key. The
// rounds are the key's own choice, paid on every connection and not
// interruptible by a context: ssh-keygen's default is 16, hardened keys
// use about 100, and a key asking for millions would hold a CPU for days.
const maxKDFRounds = 128

// kdfRounds reads the bcrypt rounds of an OpenSSH private key ("openssh-
// key-v1": cipher name, KDF name, KDF options = salt, rounds); 0 when raw
// is another format or not encrypted with bcrypt.
func kdfRounds(raw []byte) uint32 {
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		return 0
	}
	b, ok := bytes.CutPrefix(block.Bytes, []byte("openssh-key-v1\x00"))
	if !ok {
		return 0
	}
	_, b, ok = sshString(b) // cipher name
	if !ok {
		return 0
	}
	kdf, b, ok := sshString(b)
	if !ok || string(kdf) != "bcrypt" {
		return 0
	}
	opts, _, ok := sshString(b)
	if !ok {
		return 0
	}
	_, opts, ok = sshString(opts) // salt
	if !ok || len(opts) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(opts)
}

// sshString splits an SSH wire string off b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}
