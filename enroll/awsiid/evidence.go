package awsiid

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Limits on what Verify will decode, far above anything IMDS returns.
const (
	maxDocumentBytes = 16 << 10
	maxPKCS7Bytes    = 64 << 10
)

// Evidence is what a worker sends for the enrollment method "aws-iid"
// (JSON). It carries the instance identity document and exactly one of
// its signatures: Signature (IMDS /signature) or PKCS7 (IMDS /rsa2048 or
// the legacy /pkcs7).
type Evidence struct {
	// Document is the identity document exactly as IMDS returned it
	// (/latest/dynamic/instance-identity/document). Signatures cover these
	// bytes; never re-serialize the JSON. With PKCS7 it may be left empty:
	// the document is then the PKCS#7's signed content.
	Document string `json:"document"`
	// Signature is the base64 RSA-SHA256 signature over Document from
	// IMDS /signature. Line breaks and spaces are ignored.
	Signature string `json:"signature,omitempty"`
	// PKCS7 is the base64 PKCS#7 SignedData from IMDS /rsa2048 or /pkcs7,
	// with or without "-----BEGIN PKCS7-----" armor; line breaks are
	// ignored. Its content must be exactly Document when both are given.
	PKCS7 string `json:"pkcs7,omitempty"`
}

// DecodeEvidence decodes the JSON evidence of method "aws-iid" strictly:
// unknown fields and trailing data are ErrMalformed.
func DecodeEvidence(raw []byte) (Evidence, error) {
	var ev Evidence
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return Evidence{}, fmt.Errorf("%w: evidence: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Evidence{}, fmt.Errorf("%w: evidence: data after the JSON object", ErrMalformed)
	}
	return ev, nil
}

// Document is a verified instance identity document.
type Document struct {
	// AccountID is the AWS account that owns the instance (accountId).
	AccountID string
	// Region is the instance's region, e.g. "us-east-1" (region).
	Region string
	// InstanceID is the instance's ID, e.g. "i-0123456789abcdef0"
	// (instanceId).
	InstanceID string
	// ImageID is the AMI the instance was launched from (imageId).
	ImageID string
	// InstanceType is e.g. "t3.micro" (instanceType).
	InstanceType string
	// AvailabilityZone is e.g. "us-east-1a" (availabilityZone).
	AvailabilityZone string
	// PrivateIP is the instance's primary private IPv4 address (privateIp).
	PrivateIP string
	// Architecture is e.g. "x86_64" or "arm64" (architecture).
	Architecture string
	// PendingTime is when the instance last entered the pending state,
	// i.e. was launched or started (pendingTime).
	PendingTime time.Time
	// Form is the signature form that verified: FormSignature,
	// FormRSA2048 or FormPKCS7DSA.
	Form string
	// Raw is the exact signed document bytes.
	Raw []byte
}

// documentJSON is the part of the document this package reads. AWS adds
// fields over time; unknown ones are ignored.
type documentJSON struct {
	AccountID        string `json:"accountId"`
	Region           string `json:"region"`
	InstanceID       string `json:"instanceId"`
	ImageID          string `json:"imageId"`
	InstanceType     string `json:"instanceType"`
	AvailabilityZone string `json:"availabilityZone"`
	PrivateIP        string `json:"privateIp"`
	Architecture     string `json:"architecture"`
	PendingTime      string `json:"pendingTime"`
}

// parseDocument reads the fields of a (not yet verified) document.
// accountId, region, instanceId and pendingTime are required.
func parseDocument(raw []byte) (*Document, error) {
	var dj documentJSON
	if err := json.Unmarshal(raw, &dj); err != nil {
		return nil, fmt.Errorf("%w: document is not a JSON object: %v", ErrMalformed, err)
	}
	for _, f := range []struct{ name, value string }{
		{"accountId", dj.AccountID},
		{"region", dj.Region},
		{"instanceId", dj.InstanceID},
		{"pendingTime", dj.PendingTime},
	} {
		if f.value == "" {
			return nil, fmt.Errorf("%w: document has no %s", ErrMalformed, f.name)
		}
	}
	pending, err := time.Parse(time.RFC3339, dj.PendingTime)
	if err != nil {
		return nil, fmt.Errorf("%w: document pendingTime: %v", ErrMalformed, err)
	}
	return &Document{
		AccountID:        dj.AccountID,
		Region:           dj.Region,
		InstanceID:       dj.InstanceID,
		ImageID:          dj.ImageID,
		InstanceType:     dj.InstanceType,
		AvailabilityZone: dj.AvailabilityZone,
		PrivateIP:        dj.PrivateIP,
		Architecture:     dj.Architecture,
		PendingTime:      pending.UTC(),
		Raw:              raw,
	}, nil
}

// decodeBase64 decodes standard base64, ignoring ASCII whitespace and any
// "-----BEGIN ...-----" / "-----END ...-----" armor lines.
func decodeBase64(s string, limit int) ([]byte, error) {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-----") {
			continue
		}
		b.WriteString(strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' {
				return -1
			}
			return r
		}, line))
	}
	text := b.String()
	if text == "" {
		return nil, fmt.Errorf("empty")
	}
	if base64.StdEncoding.DecodedLen(len(text)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return base64.StdEncoding.DecodeString(text)
}
