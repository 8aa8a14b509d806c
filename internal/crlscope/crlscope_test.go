package crlscope_test

import (
	"encoding/hex"
	"testing"

	"github.com/workerca/workerca/internal/crlscope"
)

// The IDPs as DER: built by hand from RFC 5280 §5.2.5's ASN.1 so each
// case names what it holds.
func TestParse(t *testing.T) {
	t.Parallel()
	const uri = "http://ca/crl/1.crl" // 19 bytes
	uriDER := "86" + "13" + hex.EncodeToString([]byte(uri))
	fullName := "a0" + "15" + uriDER // [0] GeneralNames
	dpName := "a0" + "17" + fullName // [0] DistributionPointName
	for _, tc := range []struct {
		name    string
		der     string
		want    crlscope.IDP
		wantErr bool
	}{
		{name: "ok/name-and-user-certs", der: "30" + "1c" + dpName + "8101ff", want: crlscope.IDP{HasName: true, URIs: []string{uri}}},
		{name: "ok/empty", der: "3000", want: crlscope.IDP{}},
		{name: "ok/only-ca-certs-is-partial", der: "3003" + "8201ff", want: crlscope.IDP{Partial: true}},
		{name: "ok/only-some-reasons-is-partial", der: "3004" + "83020560", want: crlscope.IDP{Partial: true}},
		{name: "ok/indirect-is-partial", der: "3003" + "8401ff", want: crlscope.IDP{Partial: true}},
		{name: "fail/not-a-sequence", der: "0400", wantErr: true},
		{name: "fail/trailing-data", der: "300000", wantErr: true},
		{name: "fail/boolean-two-bytes", der: "3004" + "8202ffff", wantErr: true},
		{name: "fail/truncated", der: "301c" + dpName, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := hex.DecodeString(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			got, err := crlscope.Parse(der)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.HasName != tc.want.HasName || got.Partial != tc.want.Partial || len(got.URIs) != len(tc.want.URIs) ||
				(len(got.URIs) == 1 && got.URIs[0] != tc.want.URIs[0]) {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}
