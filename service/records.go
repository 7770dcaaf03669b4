package service

import (
	"fmt"
)

// stored is a Record as the store keeps it: credentials sealed. Clear
// holds credentials written in clear by earlier versions, until open
// migrates them.
type stored struct {
	Record
	Clear  *Credentials `json:"credentials,omitempty"`
	Sealed string       `json:"sealedCredentials,omitempty"`
}

func (c Credentials) empty() bool { return c == Credentials{} }

// names are the JSON names of the credentials set, for the API to say
// which a storage has without their values.
func (c Credentials) names() []string {
	out := []string{}
	for _, f := range []struct {
		name, value string
	}{
		{"password", c.Password}, {"s3AccessKey", c.S3AccessKey}, {"s3SecretKey", c.S3SecretKey},
		{"sftpPrivateKey", c.SFTPPrivateKey}, {"sftpPassphrase", c.SFTPPassphrase},
	} {
		if f.value != "" {
			out = append(out, f.name)
		}
	}
	return out
}

func (s *Service) put(r *Record) error {
	st := stored{Record: *r}
	if !r.Credentials.empty() {
		if s.sealer == nil {
			return ErrNoSecretKey
		}
		var err error
		if st.Sealed, err = s.sealer.seal(r.ID, r.Credentials); err != nil {
			return err
		}
	}
	return s.storages.Put(r.ID, st)
}

// unseal gives st's record with its credentials in clear.
func (s *Service) unseal(id string, st stored) (Record, error) {
	r := st.Record
	r.ID = id
	switch {
	case st.Sealed != "":
		if s.sealer == nil {
			return r, fmt.Errorf("storage %s has stored credentials: %w", id, ErrNoSecretKey)
		}
		c, err := s.sealer.open(id, st.Sealed)
		if err != nil {
			return r, err
		}
		r.Credentials = c
	case st.Clear != nil:
		r.Credentials = *st.Clear
	}
	return r, nil
}

func (s *Service) get(id string) (*Record, error) {
	var st stored
	ok, err := s.storages.Get(id, &st)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	r, err := s.unseal(id, st)
	return &r, err
}

func (s *Service) list() ([]Record, error) {
	var out []Record
	err := s.storages.Each(func(id string, decode func(any) error) error {
		var st stored
		if err := decode(&st); err != nil {
			return err
		}
		r, err := s.unseal(id, st)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// migrateCredentials seals credentials stored in clear by earlier
// versions; without a key, the service refuses to start rather than keep
// them in clear.
func (s *Service) migrateCredentials() error {
	var clear []string
	err := s.storages.Each(func(id string, decode func(any) error) error {
		var st stored
		if err := decode(&st); err != nil {
			return err
		}
		if st.Clear != nil && !st.Clear.empty() {
			clear = append(clear, id)
		}
		_, err := s.unseal(id, st) // a missing or wrong key shows now, not at the scan
		return err
	})
	if err != nil || len(clear) == 0 {
		return err
	}
	if s.sealer == nil {
		return fmt.Errorf("%d storage(s) have credentials stored in clear: %w", len(clear), ErrNoSecretKey)
	}
	for _, id := range clear {
		r, err := s.get(id)
		if err != nil {
			return err
		}
		if err := s.put(r); err != nil {
			return fmt.Errorf("encrypting the credentials of storage %s: %w", id, err)
		}
	}
	s.log.Info("credentials stored in clear encrypted", "storages", len(clear))
	return nil
}
