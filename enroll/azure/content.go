package azure

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TimeLayout is the layout of timeStamp.createdOn and timeStamp.expiresOn
// in an attested document, e.g. "11/19/25 12:53:30 -0000" (two-digit
// year, month first, numeric zone; Azure always sends -0000).
const TimeLayout = "01/02/06 15:04:05 -0700"

// MaxLifetime is the longest validity (expiresOn - createdOn) accepted.
// Azure issues every document for exactly six hours. The bound matters
// because the chain is verified at createdOn: without it, whoever held the
// key of a signer certificate long expired could sign a document created
// inside that certificate's validity and expiring years later. With it,
// createdOn is never more than MaxLifetime before now.
const MaxLifetime = 6 * time.Hour

// content is the signed JSON of an attested document (Azure IMDS,
// /metadata/attested/document, api-version 2020-09-01 and later). Unknown
// fields are ignored: Azure adds fields over time and the whole document
// is covered by the signature.
type content struct {
	Nonce string `json:"nonce"`
	Plan  struct {
		Name      string `json:"name"`
		Product   string `json:"product"`
		Publisher string `json:"publisher"`
	} `json:"plan"`
	SKU            string `json:"sku"`
	SubscriptionID string `json:"subscriptionId"`
	TimeStamp      struct {
		CreatedOn string `json:"createdOn"`
		ExpiresOn string `json:"expiresOn"`
	} `json:"timeStamp"`
	VMID string `json:"vmId"`
}

// attested is the checked form of content.
type attested struct {
	content
	createdOn, expiresOn time.Time
}

// parseContent decodes the signed content. It requires a vmId and both
// timestamps, with expiresOn after createdOn by at most MaxLifetime;
// everything else may be
// empty (old documents carry no subscriptionId or sku).
func parseContent(b []byte) (*attested, error) {
	var c content
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("content is not JSON: %w", err)
	}
	if c.VMID == "" {
		return nil, errors.New("content has no vmId")
	}
	created, err := parseTime("timeStamp.createdOn", c.TimeStamp.CreatedOn)
	if err != nil {
		return nil, err
	}
	expires, err := parseTime("timeStamp.expiresOn", c.TimeStamp.ExpiresOn)
	if err != nil {
		return nil, err
	}
	if !expires.After(created) {
		return nil, fmt.Errorf("timeStamp.expiresOn %s is not after createdOn %s", expires.Format(time.RFC3339), created.Format(time.RFC3339))
	}
	if expires.Sub(created) > MaxLifetime {
		return nil, fmt.Errorf("document is valid for %s (createdOn %s, expiresOn %s); Azure issues them for %s",
			expires.Sub(created), created.Format(time.RFC3339), expires.Format(time.RFC3339), MaxLifetime)
	}
	return &attested{content: c, createdOn: created, expiresOn: expires}, nil
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("content has no %s", field)
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: %w", field, s, err)
	}
	return t.UTC(), nil
}
