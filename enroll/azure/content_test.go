package azure

import "testing"

func TestParseContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		wantErr bool
	}{
		{name: "ok/azure-zone-minus-zero", json: `{"vmId":"v","timeStamp":{"createdOn":"11/19/25 12:53:30 -0000","expiresOn":"11/19/25 18:53:30 -0000"}}`},
		{name: "ok/zone-plus-zero", json: `{"vmId":"v","timeStamp":{"createdOn":"11/19/25 12:53:30 +0000","expiresOn":"11/19/25 18:53:30 +0000"}}`},
		{name: "ok/unknown-fields-ignored", json: `{"vmId":"v","future":{"x":1},"timeStamp":{"createdOn":"11/19/25 12:53:30 -0000","expiresOn":"11/19/25 18:53:30 -0000"}}`},
		{name: "fail/missing-created-on", json: `{"vmId":"v","timeStamp":{"expiresOn":"11/19/25 18:53:30 -0000"}}`, wantErr: true},
		{name: "fail/missing-expires-on", json: `{"vmId":"v","timeStamp":{"createdOn":"11/19/25 12:53:30 -0000"}}`, wantErr: true},
		{name: "fail/day-first", json: `{"vmId":"v","timeStamp":{"createdOn":"19/11/25 12:53:30 -0000","expiresOn":"19/11/25 18:53:30 -0000"}}`, wantErr: true},
		{name: "fail/no-zone", json: `{"vmId":"v","timeStamp":{"createdOn":"11/19/25 12:53:30","expiresOn":"11/19/25 18:53:30"}}`, wantErr: true},
		{name: "fail/vmid-not-string", json: `{"vmId":7,"timeStamp":{"createdOn":"11/19/25 12:53:30 -0000","expiresOn":"11/19/25 18:53:30 -0000"}}`, wantErr: true},
		{name: "fail/json-array", json: `[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := parseContent([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseContent error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (a.createdOn.Location() != a.createdOn.UTC().Location() || a.createdOn.Hour() != 12) {
				t.Errorf("createdOn = %s, want 12:53:30 UTC", a.createdOn)
			}
		})
	}
}
