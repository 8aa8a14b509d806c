package agent_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/sharedtestdata"
)

func readShared(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedtestdata.Attestation(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nonceRE is what POST /v1/enroll/challenge hands out.
var nonceRE = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

// TestEnrollAWS enrolls end to end with a real EC2 identity document
// (teleport's, us-west-2, 2021) served by a stand-in IMDSv2 that refuses
// requests without its session token. The pool admits the document's
// account and, since the document is years old, a long max_age.
func TestEnrollAWS(t *testing.T) {
	t.Parallel()
	const dir = "aws-iid/teleport-rsa2048-us-west-2-2021/"
	doc, sig := readShared(t, dir+"document.json"), readShared(t, dir+"rsa2048.pkcs7.b64")
	ca := devca.Start(t, workercaBin, func(pool map[string]any) {
		pool["methods"] = []string{"token", "aws-iid"}
		pool["aws"] = map[string]any{"accounts": []string{"278576220453"}, "max_age": "1000000h"}
	})
	const session = "imds-session-token"
	var mu sync.Mutex
	var seen []string
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "missing ttl", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(session))
			return
		}
		if r.Method != http.MethodGet || r.Header.Get("X-aws-ec2-metadata-token") != session {
			http.Error(w, "IMDSv2 token required", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/latest/dynamic/instance-identity/document":
			_, _ = w.Write(doc)
		case "/latest/dynamic/instance-identity/rsa2048":
			_, _ = w.Write(sig)
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()

	cfg := agent.Config{Pin: agent.SPKIPin(ca.Root), Method: agent.MethodAWS, Metadata: agent.Metadata{AWS: imds.URL}}
	cert, err := newAgent(t, ca, cfg).Enroll(t.Context())
	if err != nil {
		t.Fatalf("Enroll aws-iid: %v (IMDS saw %v)", err, seen)
	}
	if got, want := cert.SPIFFEID(), "spiffe://dev.workerca.test/worker/default/i-078517ca8a70a1dde"; got != want {
		t.Errorf("SPIFFE ID %q, want %q", got, want)
	}
	want := []string{"PUT /latest/api/token", "GET /latest/dynamic/instance-identity/document", "GET /latest/dynamic/instance-identity/rsa2048"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("IMDS requests %v, want %v", seen, want)
	}
	// The same document again: trust on first use refuses it, for good.
	_, err = newAgent(t, ca, cfg).Enroll(t.Context())
	var se *agent.ServerError
	if !errors.As(err, &se) || se.Code != "attestation_replayed" || !errors.Is(err, agent.ErrPermanent) {
		t.Fatalf("replayed document: %v, want permanent attestation_replayed", err)
	}
}

// TestCloudEvidenceRequests checks how the agent asks GCP's and Azure's
// metadata services for evidence bound to the CA's nonce. The real
// evidence served cannot carry this run's nonce, so the CA refuses it:
// the flow up to the CA's verdict is what is tested here.
func TestCloudEvidenceRequests(t *testing.T) {
	t.Parallel()
	ca := devca.Start(t, workercaBin, nil)
	pin := agent.SPKIPin(ca.Root)

	t.Run("gcp-iit/audience-carries-nonce", func(t *testing.T) {
		t.Parallel()
		token := strings.TrimSpace(string(readShared(t, "gcp-iit/infisical-sdk-us-central1-2024/token.jwt")))
		var got *http.Request
		md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/identity" {
				http.Error(w, "bad request", http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte(token))
		}))
		defer md.Close()
		_, err := newAgent(t, ca, agent.Config{Pin: pin, Method: agent.MethodGCP, Metadata: agent.Metadata{GCP: md.URL}}).Enroll(t.Context())
		var se *agent.ServerError
		if !errors.As(err, &se) || se.Op != "enroll" {
			t.Fatalf("Enroll: %v, want the CA's refusal of old evidence", err)
		}
		if got == nil {
			t.Fatal("the metadata server was not asked")
		}
		q := got.URL.Query()
		aud, ok := strings.CutPrefix(q.Get("audience"), ca.URL+"/v1/enroll?nonce=")
		if !ok || !nonceRE.MatchString(aud) || q.Get("format") != "full" {
			t.Errorf("identity request %s: want audience %s/v1/enroll?nonce=<nonce> and format=full", got.URL, ca.URL)
		}
	})

	t.Run("azure/document-carries-nonce", func(t *testing.T) {
		t.Parallel()
		sig := strings.TrimSpace(string(readShared(t, "azure-imds/taskcluster-2026-07-28-ms-tls-g2-ocsp02/attested.p7.b64")))
		var got *http.Request
		md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/attested/document" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"encoding": "pkcs7", "signature": sig})
		}))
		defer md.Close()
		_, err := newAgent(t, ca, agent.Config{Pin: pin, Method: agent.MethodAzure, Metadata: agent.Metadata{Azure: md.URL}}).Enroll(t.Context())
		var se *agent.ServerError
		if !errors.As(err, &se) || se.Op != "enroll" {
			t.Fatalf("Enroll: %v, want the CA's refusal of old evidence", err)
		}
		if got == nil {
			t.Fatal("IMDS was not asked")
		}
		if q := got.URL.Query(); !nonceRE.MatchString(q.Get("nonce")) || q.Get("api-version") == "" {
			t.Errorf("attested document request %s: want nonce=<nonce> and an api-version", got.URL)
		}
	})

	t.Run("fail/metadata-unreachable", func(t *testing.T) {
		t.Parallel()
		md := httptest.NewServer(http.NotFoundHandler())
		md.Close()
		_, err := newAgent(t, ca, agent.Config{Pin: pin, Method: agent.MethodAWS, Metadata: agent.Metadata{AWS: md.URL}}).Enroll(t.Context())
		if !errors.Is(err, agent.ErrMetadata) {
			t.Fatalf("Enroll with no IMDS: %v, want ErrMetadata", err)
		}
	})
}
