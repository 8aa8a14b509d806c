package store

import "time"

// Certificate is one row of the certificate ledger (table certificates):
// every certificate the authority issued, recorded before it is returned.
type Certificate struct {
	// Serial is the lowercase hex encoding of the serial number's bytes.
	Serial string `gorm:"column:serial;primaryKey"`
	// WorkerID identifies the worker the certificate was issued to.
	WorkerID string `gorm:"column:worker_id"`
	// Pool is the worker pool the certificate belongs to.
	Pool string `gorm:"column:pool"`
	// SPIFFEID is the SPIFFE ID in the certificate's URI SAN.
	SPIFFEID string `gorm:"column:spiffe_id"`
	// SPKISHA256 is the lowercase hex SHA-256 of the subject public key info.
	SPKISHA256 string `gorm:"column:spki_sha256"`
	// NotBefore is the start of the validity period.
	NotBefore time.Time `gorm:"column:not_before"`
	// NotAfter is the end of the validity period.
	NotAfter time.Time `gorm:"column:not_after"`
	// Method is the enrollment method that authorized issuance, such as
	// "token" or "aws-iid".
	Method string `gorm:"column:method"`
	// EnrollmentID identifies the enrollment credential, such as the token id.
	EnrollmentID string `gorm:"column:enrollment_id"`
	// AttestationSubject is what the attestor vouched for, such as
	// "token:<id>" or "aws:<account>:<instance>".
	AttestationSubject string `gorm:"column:attestation_subject"`
	// Evidence is a JSON summary of the attestation evidence.
	Evidence string `gorm:"column:evidence"`
	// ParentSerial is the serial of the certificate this one renews, or "".
	ParentSerial string `gorm:"column:parent_serial"`
	// DER is the certificate in DER form. It must not be empty.
	DER []byte `gorm:"column:der"`
	// IssuedAt is when the certificate was issued.
	IssuedAt time.Time `gorm:"column:issued_at"`
	// RevokedAt is when the certificate was revoked, or nil.
	RevokedAt *time.Time `gorm:"column:revoked_at"`
	// RevocationReason is the CRLReason code (RFC 5280 §5.3.1), or nil.
	RevocationReason *int `gorm:"column:revocation_reason"`
	// InvalidityDate is when the key is known or suspected to have been
	// compromised (RFC 5280 §5.3.2), or nil.
	InvalidityDate *time.Time `gorm:"column:invalidity_date"`
	// RetainUntil is the earliest time the row may be deleted.
	RetainUntil time.Time `gorm:"column:retain_until"`
	// AttestedAt is when the worker last proved its identity by
	// attestation: IssuedAt for an attested certificate, the parent's
	// AttestedAt for a renewal. Pools cap renewal chains with it. Zero
	// means IssuedAt.
	AttestedAt time.Time `gorm:"column:attested_at"`
	// CRLShard is the CRL shard named in the certificate's CDP; nil for
	// rows recorded before shards existed.
	CRLShard *int `gorm:"column:crl_shard"`
}

// TableName returns the certificates table's name.
func (Certificate) TableName() string { return "certificates" }

func (c *Certificate) normalize() {
	c.NotBefore = utc(c.NotBefore)
	c.NotAfter = utc(c.NotAfter)
	c.IssuedAt = utc(c.IssuedAt)
	c.RevokedAt = utcPtr(c.RevokedAt)
	c.InvalidityDate = utcPtr(c.InvalidityDate)
	c.RetainUntil = utc(c.RetainUntil)
	if c.AttestedAt.IsZero() {
		c.AttestedAt = c.IssuedAt
	}
	c.AttestedAt = utc(c.AttestedAt)
}

// EnrollmentToken is a single-use enrollment token (table
// enrollment_tokens). Only the hash of its secret is stored.
type EnrollmentToken struct {
	// ID is the public identifier part of the token.
	ID string `gorm:"column:id;primaryKey"`
	// SecretHash is the hex SHA-256 of the token's secret, never the secret.
	SecretHash string `gorm:"column:secret_hash"`
	// Pool is the pool a worker enrolling with the token joins.
	Pool string `gorm:"column:pool"`
	// WorkerID is the worker the token is bound to.
	WorkerID string `gorm:"column:worker_id"`
	// CreatedBy is who created the token: an API key id or "cli".
	CreatedBy string `gorm:"column:created_by"`
	// CreatedAt is when the token was created.
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
	// ExpiresAt is the instant from which the token can no longer be used.
	ExpiresAt time.Time `gorm:"column:expires_at"`
	// UsedAt is when the token was consumed, or nil while unused.
	UsedAt *time.Time `gorm:"column:used_at"`
	// UsedSerial is the serial of the certificate issued with the token.
	UsedSerial string `gorm:"column:used_serial"`
}

// TableName returns the enrollment tokens table's name.
func (EnrollmentToken) TableName() string { return "enrollment_tokens" }

func (t *EnrollmentToken) normalize() {
	t.CreatedAt = utc(t.CreatedAt)
	t.ExpiresAt = utc(t.ExpiresAt)
	t.UsedAt = utcPtr(t.UsedAt)
}

// APIKey is a key for the administrative API (table api_keys). Only the
// hash of its secret is stored.
type APIKey struct {
	// ID is the public identifier part of the key.
	ID string `gorm:"column:id;primaryKey"`
	// SecretHash is the hex SHA-256 of the key's secret, never the secret.
	SecretHash string `gorm:"column:secret_hash"`
	// Name is a human-readable label.
	Name string `gorm:"column:name"`
	// Scopes is a space-separated list of scopes, such as "admin read".
	Scopes string `gorm:"column:scopes"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
	// ExpiresAt is when the key stops working, or nil for never.
	ExpiresAt *time.Time `gorm:"column:expires_at"`
	// RevokedAt is when the key was revoked, or nil.
	RevokedAt *time.Time `gorm:"column:revoked_at"`
	// LastUsedAt is when the key was last used, or nil.
	LastUsedAt *time.Time `gorm:"column:last_used_at"`
}

// TableName returns the API keys table's name.
func (APIKey) TableName() string { return "api_keys" }

func (k *APIKey) normalize() {
	k.CreatedAt = utc(k.CreatedAt)
	k.ExpiresAt = utcPtr(k.ExpiresAt)
	k.RevokedAt = utcPtr(k.RevokedAt)
	k.LastUsedAt = utcPtr(k.LastUsedAt)
}

// AuditEvent is one entry of the append-only audit log (table
// audit_events).
type AuditEvent struct {
	// ID is assigned by the database on insert.
	ID int64 `gorm:"column:id;primaryKey;autoIncrement"`
	// At is when the audited action happened.
	At time.Time `gorm:"column:at"`
	// Actor is who acted: "apikey:<id>", "token:<id>", "cli" or "system".
	Actor string `gorm:"column:actor"`
	// Action names what happened, such as "certificate.issued".
	Action string `gorm:"column:action"`
	// Target is what was acted on, such as a serial or key id.
	Target string `gorm:"column:target"`
	// Detail is JSON text with further detail.
	Detail string `gorm:"column:detail"`
}

// TableName returns the audit log table's name.
func (AuditEvent) TableName() string { return "audit_events" }

func (e *AuditEvent) normalize() {
	e.At = utc(e.At)
}

// utc returns t in UTC truncated to microseconds, the precision stored on
// both databases. Truncation, not rounding: PostgreSQL would round.
func utc(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}
