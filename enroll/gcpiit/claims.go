package gcpiit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// claims is the payload of a Compute Engine identity token (format=full),
// per https://cloud.google.com/compute/docs/instances/verifying-instance-identity#payload.
type claims struct {
	Issuer    string          `json:"iss"`
	Audience  json.RawMessage `json:"aud"`
	Subject   string          `json:"sub"`
	Email     string          `json:"email"`
	IssuedAt  *numericDate    `json:"iat"`
	Expiry    *numericDate    `json:"exp"`
	NotBefore *numericDate    `json:"nbf"`
	Google    *struct {
		ComputeEngine *computeEngine `json:"compute_engine"`
	} `json:"google"`
}

// computeEngine is the google.compute_engine claim.
type computeEngine struct {
	ProjectID                 string       `json:"project_id"`
	ProjectNumber             int64        `json:"project_number"`
	Zone                      string       `json:"zone"`
	InstanceID                string       `json:"instance_id"`
	InstanceName              string       `json:"instance_name"`
	InstanceCreationTimestamp *numericDate `json:"instance_creation_timestamp"`
}

func decodeClaims(payload []byte) (*claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if c.IssuedAt == nil || c.Expiry == nil {
		return nil, fmt.Errorf("%w: claims lack iat or exp", ErrMalformed)
	}
	return &c, nil
}

// computeEngine returns the google.compute_engine claim after checking
// the fields the Identity relies on.
func (c *claims) computeEngine() (*computeEngine, error) {
	if c.Google == nil || c.Google.ComputeEngine == nil {
		return nil, fmt.Errorf("%w (request the token with format=full from a Compute Engine instance)", ErrNotComputeEngine)
	}
	ce := c.Google.ComputeEngine
	switch {
	case !isDigits(ce.InstanceID):
		return nil, fmt.Errorf("%w: google.compute_engine.instance_id %q is not a decimal ID", ErrMalformed, ce.InstanceID)
	case ce.ProjectID == "":
		return nil, fmt.Errorf("%w: google.compute_engine.project_id is empty", ErrMalformed)
	case ce.InstanceCreationTimestamp == nil:
		return nil, fmt.Errorf("%w: google.compute_engine.instance_creation_timestamp is missing", ErrMalformed)
	}
	return ce, nil
}

// audience returns aud when it is a single string.
func (c *claims) audience() (string, bool) {
	var s string
	if err := json.Unmarshal(c.Audience, &s); err != nil {
		return "", false
	}
	return s, true
}

// isDigits reports whether s is a non-empty string of ASCII digits (the
// form of instance IDs and project numbers).
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numericDate is a JWT NumericDate (RFC 7519 §2): seconds since the
// epoch, possibly fractional.
type numericDate struct{ time.Time }

// maxNumericDate bounds NumericDates to the year 5138, far inside
// time.Time's range.
const maxNumericDate = 1e11

// UnmarshalJSON implements json.Unmarshaler.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] == '"' {
		return fmt.Errorf("NumericDate %s is not a number", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil {
		return fmt.Errorf("NumericDate %s: %v", b, err)
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i < 0 || i > maxNumericDate {
			return fmt.Errorf("NumericDate %d out of range", i)
		}
		d.Time = time.Unix(i, 0).UTC()
		return nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return fmt.Errorf("NumericDate %s out of range", n)
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}
