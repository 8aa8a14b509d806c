package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll/agent"
)

// devTrustDomain is the trust domain of `workerca dev` hierarchies.
const devTrustDomain = "dev.workerca.test"

func devCmd(e *env) *cobra.Command {
	var dir, httpsAddr, httpAddr, db, cpuProfile string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a development CA: creates a hierarchy and an SQLite ledger in --dir if missing, then serves",
		Long: `dev is the quickstart. On first run it creates, in --dir (default ./.workerca-dev),
a development root and intermediate, workerca.json with a pool "default" that
accepts enrollment tokens, an SQLite ledger, root.crt and admin.token (an API key
with scope admin, 0600). Then it serves HTTPS (certificate for localhost and
127.0.0.1) and plain HTTP, and prints an openssl + curl enrollment example.

DEV ONLY: the root key sits unencrypted next to the CA. Use 'workerca init' and
'workerca serve' for anything else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfgPath := filepath.Join(dir, fileConfigName)
			if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
				if err := runInit(ctx, e, initOptions{dir: dir, trustDomain: devTrustDomain, db: db, keyType: defaultKeyType, httpsAddr: defaultHTTPSAddr, httpAddr: defaultHTTPAddr}, io.Discard); err != nil {
					return err
				}
			}
			cfg, cdir, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			// A hierarchy made elsewhere (certs-dev/, or a ledger given with
			// --db) starts with an empty ledger: give it its admin key.
			if _, err := ensureAdminKey(ctx, storeConfig(cdir, cfg.Database, db), dir, time.Now()); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return withCPUProfile(cpuProfile, func() error {
				return serveInstance(ctx, e, cfg, cdir, serveOptions{https: httpsAddr, http: httpAddr, db: db}, func(https, http net.Addr) {
					printDevBanner(out, dir, https, http)
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".workerca-dev", "directory of the development CA")
	f.StringVar(&httpsAddr, "https-addr", defaultHTTPSAddr, "HTTPS listen address (all routes)")
	f.StringVar(&httpAddr, "http-addr", defaultHTTPAddr, "plain HTTP listen address (public read-only routes); empty to disable")
	f.StringVar(&db, "db", "", "ledger: PostgreSQL URL (postgres://...) or SQLite file (default <dir>/workerca.db)")
	addCPUProfileFlag(cmd, &cpuProfile)
	return cmd
}

// printDevBanner writes the banner in one write, so whoever reads the
// output (a person, a test waiting for the listeners) sees all of it or
// none of it.
func printDevBanner(out io.Writer, dir string, https, http net.Addr) {
	w := &strings.Builder{}
	root := filepath.Join(dir, fileRootCert)
	admin := filepath.Join(dir, fileAdminToken)
	base := "https://" + https.String()
	fmt.Fprintf(w, "workerca dev (DEV ONLY)\n")
	fmt.Fprintf(w, "  https: %s\n", base)
	if http != nil {
		fmt.Fprintf(w, "  http:  http://%s (public read-only routes)\n", http.String())
	}
	fmt.Fprintf(w, "  trust anchor: %s\n", root)
	if pin, err := rootPin(root); err == nil {
		fmt.Fprintf(w, "  root pin:     %s (enroll.sh and workerca-agent --ca-pin)\n", pin)
	}
	fmt.Fprintf(w, "  admin API key: %s\n\n", admin)
	example := `Enroll a host (copy and paste into another shell in this directory):

  TOKEN=$(curl -sS --cacert ROOT -H "Authorization: Bearer $(cat ADMIN)" \
      -H 'Content-Type: application/json' -d '{"pool":"default","worker_id":"host-01","ttl":"1h"}' \
      BASE/v1/admin/tokens | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout host-01.key -subj /CN=host-01 -out host-01.csr
  curl -sS --fail-with-body --cacert ROOT -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/pkcs10' --data-binary @host-01.csr \
      BASE/v1/enroll/token -o host-01.pem
  openssl verify -CAfile ROOT -untrusted host-01.pem host-01.pem
  openssl x509 -in host-01.pem -noout -subject -ext subjectAltName
`
	fmt.Fprintln(w, strings.NewReplacer("ROOT", root, "ADMIN", admin, "BASE", base).Replace(example))
	_, _ = io.WriteString(out, w.String())
}

// rootPin is the pin of the first certificate in the PEM file at path:
// "sha256:" and the lowercase hex SHA-256 of its SubjectPublicKeyInfo, as
// enroll.sh and workerca-agent take it.
func rootPin(path string) (string, error) {
	certs, err := ca.ReadCertificates(path)
	if err != nil {
		return "", err
	}
	return agent.SPKIPin(certs[0]), nil
}
