package web_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/awsiid"
	"github.com/workerca/workerca/enroll/awsiid/awsiidtest"
	"github.com/workerca/workerca/enroll/azure"
	"github.com/workerca/workerca/enroll/azure/azuretest"
	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// The cloud fixture's configuration.
const (
	// cloudPublicURL is the CA's public URL as the gcp-iit attestor is
	// configured with it: workers ask Google for tokens whose audience is
	// cloudPublicURL + "/v1/enroll?nonce=" + nonce. Like a real
	// deployment's, it need not be the address the server listens on.
	cloudPublicURL = "https://ca.workers.example.com"
	// awsAccount is the one AWS account the aws-iid pools admit.
	awsAccount = "111122223333"
	// gcpProject is the one GCP project pool gce admits.
	gcpProject = gcpiittest.DefaultProjectID
	// azureSub is the one Azure subscription pool vms admits.
	azureSub = "00000000-1111-2222-3333-444444444444"
)

// cloudFixture is a fixture whose service also has the aws-iid, gcp-iit
// and azure attestors, each trusting a stand-in provider with locally
// generated keys, and these pools (P-256 and Ed25519 keys only):
//
//   - ec2: aws-iid, account awsAccount, region us-east-1, the default
//     policy (documents at most 10 minutes after pendingTime, one
//     enrollment per instance ever);
//   - ec2-small: aws-iid, account awsAccount, region eu-west-1, at most
//     one active worker;
//   - gce: gcp-iit, project gcpProject;
//   - vms: azure, subscription azureSub.
type cloudFixture struct {
	*fixture
	aws    *awsiidtest.Signer
	google *gcpiittest.Provider
	ms     *azuretest.Authority
}

func startCloud(t *testing.T, st *store.Store) *cloudFixture {
	t.Helper()
	c := &cloudFixture{aws: awsiidtest.NewSigner(t), ms: azuretest.NewAuthority(t)}
	c.fixture = start(t, st, func(f *fixture, ec *enroll.Config, _ *web.Config) {
		c.google = gcpiittest.NewProvider(t, gcpiittest.WithClock(f.clock.Now))
		awsV, err := awsiid.New(awsiid.Config{Certificates: []*x509.Certificate{c.aws.Certificate()}, Clock: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		gcpV, err := gcpiit.New(c.google.Config(f.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		azureV, err := azure.New(azure.Config{Roots: c.ms.Roots(), Intermediates: c.ms.Intermediates(), Clock: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		awsA, err := enroll.NewAWSAttestor(enroll.AWSConfig{Verifier: awsV, Pools: []enroll.AWSPool{
			{Pool: "ec2", Policy: awsiid.Policy{Accounts: []string{awsAccount}, Regions: []string{"us-east-1"}}},
			{Pool: "ec2-small", Policy: awsiid.Policy{Accounts: []string{awsAccount}, Regions: []string{"eu-west-1"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		gcpA, err := enroll.NewGCPAttestor(enroll.GCPConfig{Verifier: gcpV, PublicURL: cloudPublicURL, Pools: []enroll.GCPPool{
			{Pool: "gce", Projects: []string{gcpProject}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		azureA, err := enroll.NewAzureAttestor(enroll.AzureConfig{Verifier: azureV, Pools: []enroll.AzurePool{
			{Pool: "vms", Subscriptions: []string{azureSub}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		ec.Attestors = append(ec.Attestors, awsA, gcpA, azureA)
		ec.Pools = append(ec.Pools,
			methodPool(t, "ec2", 0, enroll.MethodAWS), methodPool(t, "ec2-small", 1, enroll.MethodAWS),
			methodPool(t, "gce", 0, enroll.MethodGCP), methodPool(t, "vms", 0, enroll.MethodAzure))
	})
	return c
}

// methodPool is pool(t, name, maxWorkers) accepting only method.
func methodPool(t *testing.T, name string, maxWorkers int, method string) enroll.Pool {
	t.Helper()
	p := pool(t, name, maxWorkers)
	p.Methods = []string{method}
	return p
}

// enrollBody is the JSON body of POST /v1/enroll.
type enrollBody struct {
	Method   string          `json:"method"`
	CSR      string          `json:"csr"`
	Nonce    string          `json:"nonce,omitempty"`
	Pool     string          `json:"pool,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// newNonce gets a nonce from POST /v1/enroll/challenge and checks the
// answer.
func (c *cloudFixture) newNonce(t *testing.T) string {
	t.Helper()
	r := c.do(t, request{method: http.MethodPost, path: "/v1/enroll/challenge"})
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/enroll/challenge: %d %s", r.status, r.body)
	}
	var ch struct {
		Nonce     string    `json:"nonce"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	decode(t, r, &ch)
	if len(ch.Nonce) != enroll.NonceLength || !ch.ExpiresAt.Equal(c.clock.Now().Add(enroll.ChallengeTTL)) || ch.ExpiresAt.Location() != time.UTC {
		t.Fatalf("challenge answer %s", r.body)
	}
	return ch.Nonce
}

// postEnroll sends b to POST /v1/enroll.
func (c *cloudFixture) postEnroll(t *testing.T, b enrollBody) response {
	t.Helper()
	return c.postJSON(t, "/v1/enroll", "", b)
}

// mustEnrollCloud sends b and wants a certificate.
func (c *cloudFixture) mustEnrollCloud(t *testing.T, b enrollBody) web.EnrollResponse {
	t.Helper()
	r := c.postEnroll(t, b)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/enroll %s: %d %s", b.Method, r.status, r.body)
	}
	var a web.EnrollResponse
	decode(t, r, &a)
	return a
}

// awsIID signs d in form with the stand-in AWS key. Fields left zero are
// those pool ec2 admits: account awsAccount, region us-east-1, launched
// two minutes ago.
func (c *cloudFixture) awsIID(t *testing.T, d awsiidtest.Document, form string) awsiid.Evidence {
	t.Helper()
	if d.AccountID == "" {
		d.AccountID = awsAccount
	}
	if d.Region == "" {
		d.Region = "us-east-1"
	}
	if d.PendingTime.IsZero() {
		d.PendingTime = c.clock.Now().Add(-2 * time.Minute)
	}
	return c.aws.Evidence(t, d, form)
}

// gcpIIT mints an identity token with the stand-in Google key. Its
// audience carries nonce and it is issued now, unless cl says otherwise;
// the project is gcpProject unless cl names one.
func (c *cloudFixture) gcpIIT(t *testing.T, nonce string, cl gcpiittest.Claims) gcpiit.Evidence {
	t.Helper()
	if cl.Audience == "" {
		cl.Audience = cloudPublicURL + "/v1/enroll?nonce=" + nonce
	}
	if cl.IssuedAt.IsZero() {
		cl.IssuedAt = c.clock.Now()
	}
	return gcpiit.Evidence{Token: c.google.Token(t, cl)}
}

// azureDoc signs an attested document carrying nonce with the stand-in
// Microsoft hierarchy. Fields left zero are a VM of subscription azureSub
// whose document was created a minute ago.
func (c *cloudFixture) azureDoc(t *testing.T, nonce string, ct azuretest.Content) azure.Evidence {
	t.Helper()
	ct.Nonce = nonce
	if ct.VMID == "" {
		ct.VMID = azureVM(0)
	}
	if ct.SubscriptionID == "" {
		ct.SubscriptionID = azureSub
	}
	if ct.CreatedOn.IsZero() {
		ct.CreatedOn = c.clock.Now().Add(-time.Minute)
	}
	return c.ms.Document(t, ct)
}

// awsInstance, gcpInstance and azureVM are distinct, well-formed worker
// IDs of each cloud.
func awsInstance(n int) string { return fmt.Sprintf("i-0%016x", n) }
func gcpInstance(n int) string { return fmt.Sprintf("%019d", 4000000000000000000+n) }
func azureVM(n int) string     { return fmt.Sprintf("6f1c2b9e-4a1d-4d3e-9b7a-%012d", n) }

func evidenceJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// otherDigit is a digit that is not b ('0' or '1'): a one-byte change that
// keeps base64, base64url, hex and JSON strings well-formed.
func otherDigit(b byte) byte {
	if b == '0' {
		return '1'
	}
	return '0'
}

// changeByte returns s with the byte at i changed by otherDigit.
func changeByte(s string, i int) string {
	b := []byte(s)
	b[i] = otherDigit(b[i])
	return string(b)
}

// base64DER decodes standard base64 with line breaks, as IMDS sends it.
func base64DER(t *testing.T, s string) []byte {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// nonceHash is how the store keys a challenge: the hex SHA-256 of the
// nonce (store.Challenge.NonceHash).
func nonceHash(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// cloudState is what an enrollment would change: the fixture's ledger
// state (certificate.issued events, the default pools), the active
// workers of the cloud pools, and the presented nonce's state.
type cloudState struct {
	ledger ledgerState
	active map[string]int
	nonce  string
}

func (c *cloudFixture) state(t *testing.T, nonce string) cloudState {
	t.Helper()
	ctx := context.Background()
	s := cloudState{ledger: c.ledger(t, ""), active: map[string]int{}, nonce: "none presented"}
	for _, p := range []string{"ec2", "ec2-small", "gce", "vms"} {
		n, err := c.st.CountActiveWorkers(ctx, p, c.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.active[p] = n
	}
	if nonce != "" {
		s.nonce = c.nonceState(t, nonce)
	}
	return s
}

func (s cloudState) equal(o cloudState) bool {
	return s.ledger.equal(o.ledger) && maps.Equal(s.active, o.active) && s.nonce == o.nonce
}

// nonceState is "unused", "used" or "never issued".
func (c *cloudFixture) nonceState(t *testing.T, nonce string) string {
	t.Helper()
	ch, err := c.st.Challenge(context.Background(), nonceHash(nonce))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "never issued"
	case err != nil:
		t.Fatal(err)
	case ch.UsedAt == nil:
		return "unused"
	}
	return "used"
}

// certificatesOf returns the serials of the ledger rows of worker in pool,
// found through the certificate.issued audit events, which are written in
// the same transaction as the rows.
func (c *cloudFixture) certificatesOf(t *testing.T, pool, worker string) []string {
	t.Helper()
	ctx := context.Background()
	events, err := c.st.AuditEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, e := range events {
		if e.Action != "certificate.issued" {
			continue
		}
		row, err := c.st.Certificate(ctx, e.Target)
		if err != nil {
			t.Fatalf("certificate.issued %s: %v", e.Target, err)
		}
		if row.Pool == pool && row.WorkerID == worker {
			serials = append(serials, row.Serial)
		}
	}
	return serials
}

// TestCloudEnrollOverHTTPS walks each cloud method end to end over real
// TLS: a worker takes a challenge, sends evidence from the stand-in
// provider with its CSR, and gets a JSON answer whose chain verifies to
// the root and names the attested instance; the ledger row is readable by
// serial and records the method, the instance and the evidence summary;
// the nonce is spent.
func TestCloudEnrollOverHTTPS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		c := startCloud(t, st)

		tests := []struct {
			name   string
			method string
			key    crypto.Signer
			// noNonce sends no nonce (aws-iid documents are not bound to
			// one).
			noNonce      bool
			evidence     func(t *testing.T, nonce string) json.RawMessage
			pool, worker string
			subject      string
			// summary are fields of the ledger row's evidence.
			summary map[string]string
		}{
			{
				name: "ok/aws-iid-rsa2048-p256", method: enroll.MethodAWS, key: catest.Key(t, ca.KeyP256),
				evidence: func(t *testing.T, _ string) json.RawMessage {
					return evidenceJSON(t, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(1)}, awsiid.FormRSA2048))
				},
				pool: "ec2", worker: awsInstance(1), subject: "aws:" + awsAccount + ":" + awsInstance(1),
				summary: map[string]string{"account_id": awsAccount, "region": "us-east-1", "instance_id": awsInstance(1), "form": awsiid.FormRSA2048},
			},
			{
				name: "ok/aws-iid-signature-ed25519", method: enroll.MethodAWS, key: catest.Key(t, ca.KeyEd25519),
				evidence: func(t *testing.T, _ string) json.RawMessage {
					return evidenceJSON(t, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(2)}, awsiid.FormSignature))
				},
				pool: "ec2", worker: awsInstance(2), subject: "aws:" + awsAccount + ":" + awsInstance(2),
				summary: map[string]string{"account_id": awsAccount, "instance_id": awsInstance(2), "form": awsiid.FormSignature},
			},
			{
				name: "ok/aws-iid-without-nonce", method: enroll.MethodAWS, key: catest.Key(t, ca.KeyP256), noNonce: true,
				evidence: func(t *testing.T, _ string) json.RawMessage {
					return evidenceJSON(t, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(3)}, awsiid.FormRSA2048))
				},
				pool: "ec2", worker: awsInstance(3), subject: "aws:" + awsAccount + ":" + awsInstance(3),
				summary: map[string]string{"instance_id": awsInstance(3)},
			},
			{
				name: "ok/aws-iid-region-picks-the-pool", method: enroll.MethodAWS, key: catest.Key(t, ca.KeyP256),
				evidence: func(t *testing.T, _ string) json.RawMessage {
					return evidenceJSON(t, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(4), Region: "eu-west-1"}, awsiid.FormRSA2048))
				},
				pool: "ec2-small", worker: awsInstance(4), subject: "aws:" + awsAccount + ":" + awsInstance(4),
				summary: map[string]string{"region": "eu-west-1", "instance_id": awsInstance(4)},
			},
			{
				name: "ok/gcp-iit-p256", method: enroll.MethodGCP, key: catest.Key(t, ca.KeyP256),
				evidence: func(t *testing.T, nonce string) json.RawMessage {
					return evidenceJSON(t, c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(1), InstanceName: "builder-1"}))
				},
				pool: "gce", worker: gcpInstance(1), subject: "gcp:" + gcpProject + ":" + gcpInstance(1),
				summary: map[string]string{"project_id": gcpProject, "instance_id": gcpInstance(1), "instance_name": "builder-1", "zone": gcpiittest.DefaultZone},
			},
			{
				name: "ok/gcp-iit-ed25519", method: enroll.MethodGCP, key: catest.Key(t, ca.KeyEd25519),
				evidence: func(t *testing.T, nonce string) json.RawMessage {
					return evidenceJSON(t, c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(2)}))
				},
				pool: "gce", worker: gcpInstance(2), subject: "gcp:" + gcpProject + ":" + gcpInstance(2),
				summary: map[string]string{"instance_id": gcpInstance(2), "service_account": gcpiittest.DefaultEmail},
			},
			{
				name: "ok/azure-signature-field-ed25519", method: enroll.MethodAzure, key: catest.Key(t, ca.KeyEd25519),
				evidence: func(t *testing.T, nonce string) json.RawMessage {
					return evidenceJSON(t, c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(1), SKU: "22_04-lts-gen2"}))
				},
				pool: "vms", worker: azureVM(1), subject: "azure:" + azureSub + ":" + azureVM(1),
				summary: map[string]string{"vm_id": azureVM(1), "subscription_id": azureSub, "sku": "22_04-lts-gen2"},
			},
			{
				name: "ok/azure-whole-imds-answer-uppercase-vm-id", method: enroll.MethodAzure, key: catest.Key(t, ca.KeyP256),
				evidence: func(t *testing.T, nonce string) json.RawMessage {
					return evidenceJSON(t, c.ms.Answer(t, azuretest.Content{Nonce: nonce, VMID: strings.ToUpper(azureVM(2)), SubscriptionID: azureSub,
						CreatedOn: c.clock.Now().Add(-time.Minute)}))
				},
				pool: "vms", worker: azureVM(2), subject: "azure:" + azureSub + ":" + azureVM(2),
				summary: map[string]string{"vm_id": azureVM(2)},
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				nonce := ""
				if !tc.noNonce {
					nonce = c.newNonce(t)
				}
				r := c.postEnroll(t, enrollBody{Method: tc.method, CSR: string(csrPEM(t, tc.key)), Nonce: nonce, Evidence: tc.evidence(t, nonce)})
				if r.status != http.StatusCreated {
					t.Fatalf("POST /v1/enroll: %d %s", r.status, r.body)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var a web.EnrollResponse
				decode(t, r, &a)

				certs := parseChain(t, []byte(a.Certificate))
				chain := parseChain(t, []byte(a.Chain))
				if len(certs) != 1 || len(chain) != 2 || !chain[0].Equal(certs[0]) || !chain[1].Equal(c.h.Intermediate) {
					t.Fatalf("certificate is %d certificates and chain %d, want the leaf, then the leaf and the intermediate", len(certs), len(chain))
				}
				leaf := chain[0]
				inter := x509.NewCertPool()
				inter.AddCert(chain[1])
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.h.Roots(), Intermediates: inter, CurrentTime: c.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Fatalf("leaf does not verify to the root: %v", err)
				}
				wantID := "spiffe://" + trustDomain + "/worker/" + tc.pool + "/" + tc.worker
				if a.SPIFFEID != wantID || len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID {
					t.Fatalf("spiffe_id %q, URI SANs %v; want only %s", a.SPIFFEID, leaf.URIs, wantID)
				}
				if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 || leaf.Subject.CommonName != tc.worker {
					t.Fatalf("identity came from the CSR: CN=%q DNS=%v", leaf.Subject.CommonName, leaf.DNSNames)
				}
				if !tc.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
					t.Fatal("leaf does not certify the CSR's key")
				}
				serial := ca.SerialHex(leaf.SerialNumber)
				if a.Serial != serial || r.header.Get("Workerca-Serial") != serial {
					t.Fatalf("serial %q, Workerca-Serial %q; want %q", a.Serial, r.header.Get("Workerca-Serial"), serial)
				}
				if !a.NotAfter.Equal(leaf.NotAfter) || a.NotAfter.Location() != time.UTC ||
					!a.RenewAfter.Equal(enroll.RenewAfter(leaf.NotBefore, leaf.NotAfter)) || a.RenewAfter.Location() != time.UTC {
					t.Fatalf("not_after %s, renew_after %s; leaf valid %s to %s", a.NotAfter, a.RenewAfter, leaf.NotBefore, leaf.NotAfter)
				}

				r = c.do(t, request{method: http.MethodGet, path: "/v1/admin/certificates/" + serial, auth: c.admin})
				if r.status != http.StatusOK {
					t.Fatalf("GET certificate %s: %d %s", serial, r.status, r.body)
				}
				var row certificateAnswer
				decode(t, r, &row)
				block, rest := pem.Decode([]byte(row.CertificatePEM))
				if block == nil || len(rest) != 0 || !bytes.Equal(block.Bytes, leaf.Raw) {
					t.Fatal("certificate_pem is not the issued certificate")
				}
				if row.Serial != serial || row.WorkerID != tc.worker || row.Pool != tc.pool || row.SPIFFEID != wantID ||
					row.Method != tc.method || row.EnrollmentID != tc.worker || row.AttestationSubject != tc.subject ||
					row.SPKISHA256 != ca.SPKISHA256(leaf) || !row.NotAfter.Equal(leaf.NotAfter) || !row.IssuedAt.Equal(c.clock.Now()) ||
					row.RevokedAt != nil || row.ParentSerial != "" {
					t.Fatalf("ledger row does not match the certificate: %+v", row)
				}
				var ev map[string]any
				if err := json.Unmarshal(row.Evidence, &ev); err != nil {
					t.Fatalf("evidence %s: %v", row.Evidence, err)
				}
				for k, want := range tc.summary {
					if ev[k] != want {
						t.Errorf("evidence %s = %v, want %q (evidence %s)", k, ev[k], want, row.Evidence)
					}
				}
				if nonce != "" {
					if got := c.nonceState(t, nonce); got != "used" {
						t.Errorf("nonce after the enrollment: %s, want used", got)
					}
				}
			})
		}
	})
}

// TestCloudEnrollRefusals sends each kind of bad cloud enrollment and
// checks its exact status and error code, and that it left no trace: no
// certificate, no audit event of one, no active worker, and the presented
// nonce in the state it was (a refusal never spends a nonce).
func TestCloudEnrollRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		c := startCloud(t, st)
		csr := func(t *testing.T, kt ca.KeyType) string { return string(csrPEM(t, catest.Key(t, kt))) }
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048) // RSA-2048: a key workerca knows, not one the pools allow
		if err != nil {
			t.Fatal(err)
		}
		aws := func(t *testing.T, nonce string, ev any) enrollBody {
			return enrollBody{Method: enroll.MethodAWS, CSR: csr(t, ca.KeyP256), Nonce: nonce, Evidence: evidenceJSON(t, ev)}
		}
		gcp := func(t *testing.T, nonce string, ev any) enrollBody {
			return enrollBody{Method: enroll.MethodGCP, CSR: csr(t, ca.KeyP256), Nonce: nonce, Evidence: evidenceJSON(t, ev)}
		}
		az := func(t *testing.T, nonce string, ev any) enrollBody {
			return enrollBody{Method: enroll.MethodAzure, CSR: csr(t, ca.KeyP256), Nonce: nonce, Evidence: evidenceJSON(t, ev)}
		}
		raw := func(s string) json.RawMessage { return json.RawMessage(s) }
		// later moves the clock by d for the rest of the subtest, less than
		// a nonce's life.
		later := func(t *testing.T, d time.Duration) {
			c.clock.Add(d)
			t.Cleanup(func() { c.clock.Add(-d) })
		}
		// neverIssued has the shape of a nonce but was never handed out.
		const neverIssued = "0123456789abcdefghijklmnopqrstuv"

		tests := []struct {
			name   string
			req    func(t *testing.T) enrollBody
			status int
			code   string
		}{
			// aws-iid.
			{"fail/aws-iid/document-tampered", func(t *testing.T) enrollBody {
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x101)}, awsiid.FormSignature)
				ev.Document = changeByte(ev.Document, strings.Index(ev.Document, awsInstance(0x101))+len(awsInstance(0x101))-1)
				return aws(t, c.newNonce(t), ev)
			}, 401, "attestation_invalid"},
			{"fail/aws-iid/pkcs7-signature-tampered", func(t *testing.T) enrollBody {
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x102)}, awsiid.FormRSA2048)
				der := base64DER(t, ev.PKCS7)
				der[len(der)-1] ^= 0x01 // the last byte of the SignerInfo's signature
				ev.PKCS7 = base64.StdEncoding.EncodeToString(der)
				return aws(t, c.newNonce(t), ev)
			}, 401, "attestation_invalid"},
			// With the PKCS#7 form the document must be the signed content
			// byte for byte (awsiid.Evidence.PKCS7); a document that is not
			// is refused as malformed before any signature is checked.
			{"fail/aws-iid/document-differs-from-pkcs7-content", func(t *testing.T) enrollBody {
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x103)}, awsiid.FormRSA2048)
				ev.Document = changeByte(ev.Document, strings.Index(ev.Document, awsInstance(0x103))+len(awsInstance(0x103))-1)
				return aws(t, c.newNonce(t), ev)
			}, 400, "evidence_malformed"},
			{"fail/aws-iid/signer-not-trusted", func(t *testing.T) enrollBody {
				ev := awsiidtest.NewSigner(t).Evidence(t, awsiidtest.Document{AccountID: awsAccount, Region: "us-east-1", InstanceID: awsInstance(0x104),
					PendingTime: c.clock.Now().Add(-time.Minute)}, awsiid.FormSignature)
				return aws(t, c.newNonce(t), ev)
			}, 401, "attestation_invalid"},
			{"fail/aws-iid/account-not-allowed", func(t *testing.T) enrollBody {
				return aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{AccountID: "999988887777", InstanceID: awsInstance(0x105)}, awsiid.FormRSA2048))
			}, 403, "attestation_not_allowed"},
			{"fail/aws-iid/region-not-allowed", func(t *testing.T) enrollBody {
				return aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{Region: "ap-south-1", InstanceID: awsInstance(0x106)}, awsiid.FormRSA2048))
			}, 403, "attestation_not_allowed"},
			{"fail/aws-iid/too-old", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x107), PendingTime: c.clock.Now().Add(-9 * time.Minute)}, awsiid.FormRSA2048)
				later(t, 2*time.Minute) // 11 minutes after pendingTime, over the default 10
				return aws(t, nonce, ev)
			}, 401, "attestation_expired"},
			{"fail/aws-iid/document-replayed-with-fresh-nonce", func(t *testing.T) enrollBody {
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x108)}, awsiid.FormRSA2048)
				c.mustEnrollCloud(t, aws(t, c.newNonce(t), ev))
				return aws(t, c.newNonce(t), ev)
			}, 409, "attestation_replayed"},
			{"fail/aws-iid/instance-again-in-other-signature-form", func(t *testing.T) enrollBody {
				c.mustEnrollCloud(t, aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x109)}, awsiid.FormRSA2048)))
				return aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x109)}, awsiid.FormSignature))
			}, 409, "attestation_replayed"},
			{"fail/aws-iid/nonce-reused", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				c.mustEnrollCloud(t, aws(t, nonce, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10a)}, awsiid.FormRSA2048)))
				return aws(t, nonce, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10b)}, awsiid.FormRSA2048))
			}, 401, "nonce_used"},
			{"fail/aws-iid/nonce-never-issued", func(t *testing.T) enrollBody {
				return aws(t, neverIssued, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10c)}, awsiid.FormRSA2048))
			}, 401, "nonce_invalid"},
			{"fail/aws-iid/nonce-malformed", func(t *testing.T) enrollBody {
				return aws(t, "not-a-nonce", c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10d)}, awsiid.FormRSA2048))
			}, 401, "nonce_invalid"},
			{"fail/aws-iid/nonce-expired", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				later(t, enroll.ChallengeTTL) // expiry is exclusive
				return aws(t, nonce, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10e)}, awsiid.FormRSA2048))
			}, 401, "nonce_expired"},
			{"fail/aws-iid/key-p384", func(t *testing.T) enrollBody {
				b := aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x10f)}, awsiid.FormRSA2048))
				b.CSR = csr(t, ca.KeyP384)
				return b
			}, 400, "key_not_allowed"},
			{"fail/aws-iid/evidence-not-an-object", func(t *testing.T) enrollBody {
				return aws(t, c.newNonce(t), raw(`["document","signature"]`))
			}, 400, "evidence_malformed"},
			{"fail/aws-iid/evidence-unknown-field", func(t *testing.T) enrollBody {
				ev := c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x110)}, awsiid.FormSignature)
				return aws(t, c.newNonce(t), map[string]string{"document": ev.Document, "sig": ev.Signature})
			}, 400, "evidence_malformed"},
			{"fail/aws-iid/evidence-missing", func(t *testing.T) enrollBody {
				b := aws(t, c.newNonce(t), nil)
				b.Evidence = nil
				return b
			}, 400, "evidence_malformed"},
			{"fail/aws-iid/pool-full", func(t *testing.T) enrollBody {
				c.mustEnrollCloud(t, aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{Region: "eu-west-1", InstanceID: awsInstance(0x111)}, awsiid.FormRSA2048)))
				return aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{Region: "eu-west-1", InstanceID: awsInstance(0x112)}, awsiid.FormRSA2048))
			}, 409, "pool_full"},
			{"fail/aws-iid/pool-without-aws-policy", func(t *testing.T) enrollBody {
				b := aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x113)}, awsiid.FormRSA2048))
				b.Pool = "default"
				return b
			}, 403, "method_not_allowed_for_pool"},

			// gcp-iit.
			{"fail/gcp-iit/token-tampered", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x201)})
				payload := strings.Split(ev.Token, ".")[1]
				ev.Token = changeByte(ev.Token, strings.Index(ev.Token, ".")+1+len(payload)/2)
				return gcp(t, nonce, ev)
			}, 401, "attestation_invalid"},
			{"fail/gcp-iit/signed-by-unpublished-key", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				tok := c.google.SignedToken(t, gcpiittest.Claims{Audience: cloudPublicURL + "/v1/enroll?nonce=" + nonce, IssuedAt: c.clock.Now(),
					InstanceID: gcpInstance(0x202)}, gcpiittest.WrongKey)
				return gcp(t, nonce, gcpiit.Evidence{Token: tok})
			}, 401, "attestation_invalid"},
			{"fail/gcp-iit/audience-another-ca", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				return gcp(t, nonce, c.gcpIIT(t, nonce, gcpiittest.Claims{Audience: "https://other-ca.example.com/v1/enroll?nonce=" + nonce, InstanceID: gcpInstance(0x203)}))
			}, 401, "attestation_invalid"},
			{"fail/gcp-iit/project-not-allowed", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				return gcp(t, nonce, c.gcpIIT(t, nonce, gcpiittest.Claims{ProjectID: "evil-project", InstanceID: gcpInstance(0x204)}))
			}, 403, "attestation_not_allowed"},
			{"fail/gcp-iit/token-expired", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.gcpIIT(t, nonce, gcpiittest.Claims{IssuedAt: c.clock.Now().Add(-gcpiittest.DefaultLifetime + 30*time.Second), InstanceID: gcpInstance(0x205)})
				later(t, 2*time.Minute) // exp plus gcpiit.Leeway has passed; the nonce lives on
				return gcp(t, nonce, ev)
			}, 401, "attestation_expired"},
			// The audience names the nonce the token was minted for, so a
			// token sent with any other nonce does not verify: a
			// sequential replay never gets as far as the replay check.
			{"fail/gcp-iit/token-replayed-with-fresh-nonce", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x206)})
				c.mustEnrollCloud(t, gcp(t, nonce, ev))
				return gcp(t, c.newNonce(t), ev)
			}, 401, "attestation_invalid"},
			{"fail/gcp-iit/token-replayed-with-its-nonce", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x207)})
				c.mustEnrollCloud(t, gcp(t, nonce, ev))
				return gcp(t, nonce, ev)
			}, 401, "nonce_used"},
			{"fail/gcp-iit/nonce-never-issued", func(t *testing.T) enrollBody {
				return gcp(t, neverIssued, c.gcpIIT(t, neverIssued, gcpiittest.Claims{InstanceID: gcpInstance(0x208)}))
			}, 401, "nonce_invalid"},
			{"fail/gcp-iit/nonce-missing", func(t *testing.T) enrollBody {
				return gcp(t, "", c.gcpIIT(t, c.newNonce(t), gcpiittest.Claims{InstanceID: gcpInstance(0x209)}))
			}, 400, "nonce_required"},
			{"fail/gcp-iit/key-rsa", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				b := gcp(t, nonce, c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x20a)}))
				b.CSR = string(csrPEM(t, rsaKey))
				return b
			}, 400, "key_not_allowed"},
			{"fail/gcp-iit/evidence-unknown-field", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				return gcp(t, nonce, map[string]string{"jwt": c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x20b)}).Token})
			}, 400, "evidence_malformed"},
			{"fail/gcp-iit/evidence-not-a-jwt", func(t *testing.T) enrollBody {
				return gcp(t, c.newNonce(t), gcpiit.Evidence{Token: "not-a-jwt"})
			}, 400, "evidence_malformed"},
			{"fail/gcp-iit/evidence-a-string", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				return gcp(t, nonce, c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x20c)}).Token)
			}, 400, "evidence_malformed"},

			// azure.
			{"fail/azure/document-tampered", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x301)})
				der := base64DER(t, ev.Document)
				i := bytes.Index(der, []byte(azureVM(0x301))) + len(azureVM(0x301)) - 1 // the VM ID's last digit, in the signed content
				der[i] = otherDigit(der[i])
				return az(t, nonce, azure.Evidence{Document: base64.StdEncoding.EncodeToString(der)})
			}, 401, "attestation_invalid"},
			{"fail/azure/signer-not-trusted", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := azuretest.NewAuthority(t).Document(t, azuretest.Content{Nonce: nonce, VMID: azureVM(0x302), SubscriptionID: azureSub,
					CreatedOn: c.clock.Now().Add(-time.Minute)})
				return az(t, nonce, ev)
			}, 401, "attestation_invalid"},
			{"fail/azure/subscription-not-allowed", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				return az(t, nonce, c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x303), SubscriptionID: "99999999-1111-2222-3333-444444444444"}))
			}, 403, "attestation_not_allowed"},
			{"fail/azure/document-expired", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x304), CreatedOn: c.clock.Now().Add(-azuretest.DocumentLifetime + 30*time.Second)})
				later(t, 2*time.Minute) // past expiresOn; the nonce lives on
				return az(t, nonce, ev)
			}, 401, "attestation_expired"},
			// The document carries the nonce it was requested with; see
			// gcp-iit/token-replayed-with-fresh-nonce.
			{"fail/azure/document-replayed-with-fresh-nonce", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x305)})
				c.mustEnrollCloud(t, az(t, nonce, ev))
				return az(t, c.newNonce(t), ev)
			}, 401, "attestation_invalid"},
			{"fail/azure/document-replayed-with-its-nonce", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x306)})
				c.mustEnrollCloud(t, az(t, nonce, ev))
				return az(t, nonce, ev)
			}, 401, "nonce_used"},
			{"fail/azure/nonce-never-issued", func(t *testing.T) enrollBody {
				return az(t, neverIssued, c.azureDoc(t, neverIssued, azuretest.Content{VMID: azureVM(0x307)}))
			}, 401, "nonce_invalid"},
			{"fail/azure/nonce-missing", func(t *testing.T) enrollBody {
				return az(t, "", c.azureDoc(t, c.newNonce(t), azuretest.Content{VMID: azureVM(0x308)}))
			}, 400, "nonce_required"},
			{"fail/azure/nonce-expired", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				ev := c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x309)})
				later(t, enroll.ChallengeTTL)
				return az(t, nonce, ev)
			}, 401, "nonce_expired"},
			{"fail/azure/key-p384", func(t *testing.T) enrollBody {
				nonce := c.newNonce(t)
				b := az(t, nonce, c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x30a)}))
				b.CSR = csr(t, ca.KeyP384)
				return b
			}, 400, "key_not_allowed"},
			{"fail/azure/evidence-wrong-type", func(t *testing.T) enrollBody {
				return az(t, c.newNonce(t), raw(`{"document":42}`))
			}, 400, "evidence_malformed"},
			{"fail/azure/document-not-pkcs7", func(t *testing.T) enrollBody {
				return az(t, c.newNonce(t), azure.Evidence{Document: base64.StdEncoding.EncodeToString([]byte("not a PKCS#7"))})
			}, 400, "evidence_malformed"},

			// Any method.
			{"fail/unknown-method", func(t *testing.T) enrollBody {
				b := aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x401)}, awsiid.FormRSA2048))
				b.Method = "oracle-oci"
				return b
			}, 400, "unknown_method"},
			{"fail/unknown-pool", func(t *testing.T) enrollBody {
				b := aws(t, c.newNonce(t), c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x402)}, awsiid.FormRSA2048))
				b.Pool = "nope"
				return b
			}, 400, "unknown_pool"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body := tc.req(t)
				before := c.state(t, body.Nonce)
				r := c.postEnroll(t, body)
				if r.status == http.StatusCreated {
					t.Fatalf("got a certificate (serial %s), want %d %s", r.header.Get("Workerca-Serial"), tc.status, tc.code)
				}
				wantError(t, r, tc.status, tc.code)
				if after := c.state(t, body.Nonce); !after.equal(before) {
					t.Fatalf("the refusal changed the ledger:\nbefore %+v\nafter  %+v", before, after)
				}
			})
		}
		if r := c.do(t, request{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("GET /healthz after the refusals: %d", r.status)
		}
	})
}

// TestCloudEnrollReplayUnderConcurrency sends one piece of evidence in
// many simultaneous requests over HTTPS, each with its own CSR: exactly
// one gets a certificate, every other one a stable refusal (never a 5xx),
// and the ledger holds one certificate for the worker. aws-iid requests
// each carry a fresh nonce, so only the evidence repeats; gcp-iit and
// azure evidence is bound to one nonce, which all of them carry.
func TestCloudEnrollReplayUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		c := startCloud(t, st)
		const n = 16
		// bodies makes n requests with the same evidence; nonce gives the
		// i-th request's nonce.
		bodies := func(t *testing.T, method string, nonce func(i int) string, evidence json.RawMessage) []enrollBody {
			out := make([]enrollBody, n)
			for i := range out {
				out[i] = enrollBody{Method: method, CSR: string(csrPEM(t, catest.Key(t, ca.KeyP256))), Nonce: nonce(i), Evidence: evidence}
			}
			return out
		}
		replayed, nonceUsed := "attestation_replayed", "nonce_used"

		tests := []struct {
			name         string
			pool, worker string
			req          func(t *testing.T) []enrollBody
			// refusals are the codes the losers may get, with their status.
			refusals map[string]int
		}{
			{"aws-iid/same-document-fresh-nonces", "ec2", awsInstance(0x501), func(t *testing.T) []enrollBody {
				nonces := make([]string, n)
				for i := range nonces {
					nonces[i] = c.newNonce(t)
				}
				ev := evidenceJSON(t, c.awsIID(t, awsiidtest.Document{InstanceID: awsInstance(0x501)}, awsiid.FormRSA2048))
				return bodies(t, enroll.MethodAWS, func(i int) string { return nonces[i] }, ev)
			}, map[string]int{replayed: http.StatusConflict}},
			{"gcp-iit/same-token-same-nonce", "gce", gcpInstance(0x501), func(t *testing.T) []enrollBody {
				nonce := c.newNonce(t)
				ev := evidenceJSON(t, c.gcpIIT(t, nonce, gcpiittest.Claims{InstanceID: gcpInstance(0x501)}))
				return bodies(t, enroll.MethodGCP, func(int) string { return nonce }, ev)
			}, map[string]int{replayed: http.StatusConflict, nonceUsed: http.StatusUnauthorized}},
			{"azure/same-document-same-nonce", "vms", azureVM(0x501), func(t *testing.T) []enrollBody {
				nonce := c.newNonce(t)
				ev := evidenceJSON(t, c.azureDoc(t, nonce, azuretest.Content{VMID: azureVM(0x501)}))
				return bodies(t, enroll.MethodAzure, func(int) string { return nonce }, ev)
			}, map[string]int{replayed: http.StatusConflict, nonceUsed: http.StatusUnauthorized}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				reqs := tc.req(t)
				answers := c.postConcurrently(t, reqs)
				var won []string
				for i, r := range answers {
					if r.status == http.StatusCreated {
						var a web.EnrollResponse
						decode(t, r, &a)
						won = append(won, a.Serial)
						continue
					}
					code := answerCode(r)
					status, ok := tc.refusals[code]
					if !ok {
						t.Errorf("request %d: %d %s, want 201 or one of %v", i, r.status, r.body, tc.refusals)
						continue
					}
					wantError(t, r, status, code)
				}
				if len(won) != 1 {
					t.Fatalf("%d of %d requests got a certificate, want exactly 1", len(won), n)
				}
				if got := c.certificatesOf(t, tc.pool, tc.worker); len(got) != 1 || got[0] != won[0] {
					t.Fatalf("ledger rows of %s/%s: %v, want only %s", tc.pool, tc.worker, got, won[0])
				}
				if active, err := st.CountActiveWorkers(context.Background(), tc.pool, c.clock.Now()); err != nil || active != 1 {
					t.Fatalf("CountActiveWorkers(%s) = %d, %v; want 1", tc.pool, active, err)
				}
				nonces := map[string]bool{}
				for _, b := range reqs {
					nonces[b.Nonce] = true
				}
				used := 0
				for nonce := range nonces {
					if c.nonceState(t, nonce) == "used" {
						used++
					}
				}
				if used != 1 {
					t.Fatalf("%d nonces spent, want 1: a refusal must not spend its nonce", used)
				}
			})
		}
	})
}

// postConcurrently sends the bodies to POST /v1/enroll all at once, one
// goroutine each, and returns the answers in order.
func (c *cloudFixture) postConcurrently(t *testing.T, bodies []enrollBody) []response {
	t.Helper()
	payloads := make([][]byte, len(bodies))
	for i, b := range bodies {
		p, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = p
	}
	answers := make([]response, len(bodies))
	errs := make([]error, len(bodies))
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range payloads {
		wg.Go(func() {
			<-ready
			answers[i], errs[i] = c.send(payloads[i])
		})
	}
	close(ready)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return answers
}

// send posts a JSON body to /v1/enroll; unlike fixture.do it reports
// errors instead of failing the test, so goroutines may call it.
func (c *cloudFixture) send(body []byte) (response, error) {
	req, err := http.NewRequest(http.MethodPost, c.httpsURL+"/v1/enroll", bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, tls: resp.TLS}, nil
}

// answerCode is the error code of an error answer, or "".
func answerCode(r response) string {
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &body)
	return body.Error.Code
}
