package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
)

func intermediateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "intermediate", Short: "Manage the online intermediate"}
	var dir, certFile, rootFile string
	imp := &cobra.Command{
		Use:   "import --dir D --cert F --root-cert F",
		Short: "Install an intermediate certificate signed by an offline root",
		Long: `import checks that the certificate holds the key of <dir>/intermediate.key (made by
'workerca init --offline-root'), is a CA with path length 0 and keyCertSign, and chains
to the root; then it writes <dir>/intermediate.crt and <dir>/root.crt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || certFile == "" || rootFile == "" {
				return usageError{"import needs --dir, --cert and --root-cert"}
			}
			cfg, cdir, err := loadConfig(filepath.Join(dir, fileConfigName))
			if err != nil {
				return err
			}
			certs, err := ca.ReadCertificates(certFile)
			if err != nil {
				return err
			}
			roots, err := ca.ReadCertificates(rootFile)
			if err != nil {
				return err
			}
			pass, err := optionalPassword(resolve(cdir, cfg.IntermediateKeyPasswordFile))
			if err != nil {
				return err
			}
			key, err := ca.LoadSigner(cmd.Context(), resolve(cdir, cfg.IntermediateKey), pass)
			if err != nil {
				return err
			}
			if err := ca.CheckIntermediate(certs[0], roots[0], key.Public(), time.Now()); err != nil {
				return err
			}
			for _, f := range []string{cfg.IntermediateCert, cfg.RootCert} {
				if _, err := os.Stat(resolve(cdir, f)); err == nil {
					return fmt.Errorf("%s already exists: remove it first to replace it", resolve(cdir, f))
				}
			}
			if err := ca.WriteCertificates(resolve(cdir, cfg.RootCert), roots[0]); err != nil {
				return err
			}
			if err := ca.WriteCertificates(resolve(cdir, cfg.IntermediateCert), certs[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s (valid until %s)\n", resolve(cdir, cfg.IntermediateCert), certs[0].NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	imp.Flags().StringVar(&dir, "dir", "", "the CA directory made by init --offline-root")
	imp.Flags().StringVar(&certFile, "cert", "", "the signed intermediate certificate (PEM)")
	imp.Flags().StringVar(&rootFile, "root-cert", "", "the root that signed it (PEM)")
	cmd.AddCommand(imp)
	return cmd
}
