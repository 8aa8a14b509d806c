// Package credential makes and checks workerca's bearer secrets: operator
// API keys (wca_<id>_<secret>) and one-time enrollment tokens
// (wct_<id>_<secret>).
//
// The ID is public and names the stored row; the secret is 256 random bits
// shown once and stored only as its SHA-256. A plain hash suffices (no
// password KDF) because the secret is uniformly random, not chosen by a
// person. Matches compares in constant time.
//
//	c, _ := credential.New(credential.APIKey, rand.Reader)
//	fmt.Println(c)          // shown once
//	row.SecretHash = c.Hash()
//	...
//	p, err := credential.Parse(credential.APIKey, header)
//	ok := p.Matches(row.SecretHash)
package credential

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind is a credential's prefix.
type Kind string

// The kinds of credential.
const (
	APIKey          Kind = "wca"
	EnrollmentToken Kind = "wct"
)

const (
	idBytes     = 8
	secretBytes = 32
)

// ErrMalformed means a string is not a credential of the expected kind.
var ErrMalformed = errors.New("credential: malformed")

// Credential is a parsed or newly made credential.
type Credential struct {
	Kind   Kind
	ID     string
	secret string
}

// New makes a credential with a random ID and secret drawn from r.
func New(kind Kind, r io.Reader) (Credential, error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return Credential{}, fmt.Errorf("credential: random: %w", err)
	}
	return Credential{Kind: kind, ID: hex.EncodeToString(b[:idBytes]), secret: hex.EncodeToString(b[idBytes:])}, nil
}

// Parse reads "<kind>_<id>_<secret>". Any deviation in shape is
// ErrMalformed; whether the secret is right is for Matches to say.
func Parse(kind Kind, s string) (Credential, error) {
	rest, ok := strings.CutPrefix(s, string(kind)+"_")
	if !ok {
		return Credential{}, fmt.Errorf("%w: want prefix %s_", ErrMalformed, kind)
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes || len(secret) != 2*secretBytes || !isLowerHex(id) || !isLowerHex(secret) {
		return Credential{}, ErrMalformed
	}
	return Credential{Kind: kind, ID: id, secret: secret}, nil
}

// String returns the whole credential, secret included: show it once.
func (c Credential) String() string {
	return string(c.Kind) + "_" + c.ID + "_" + c.secret
}

// Hash returns the lowercase hex SHA-256 of the secret, the only form
// stored.
func (c Credential) Hash() string {
	sum := sha256.Sum256([]byte(c.secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether c's secret hashes to hash.
func (c Credential) Matches(hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(c.secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// Masked returns the credential with its secret hidden, for listings and
// logs.
func Masked(kind Kind, id string) string {
	return string(kind) + "_" + id + "_****"
}

func isLowerHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
