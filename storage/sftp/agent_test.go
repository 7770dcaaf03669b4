package sftp_test

import (
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func addKey(keyring agent.Agent, pemBytes []byte) error {
	key, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		return err
	}
	return keyring.Add(agent.AddedKey{PrivateKey: key})
}
