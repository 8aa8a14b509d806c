package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/workerca/workerca/enroll/agent"
)

// registerTPMDevice adds --tpm-device.
func registerTPMDevice(f *pflag.FlagSet, device *string) {
	f.StringVar(device, "tpm-device", "", "the TPM (method tpm): the UNIX socket of a software TPM (swtpm, the reference simulator); default: this host's TPM (Linux: the first under /sys/class/tpm, through its resource manager /dev/tpmrmN)")
}

func tpmCmd(stdout io.Writer, openTPM agent.TPMOpener) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tpm",
		Short: "Look at this host's TPM",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(tpmEKCmd(stdout, openTPM))
	return cmd
}

// ekInfo is what 'tpm ek --json' prints.
type ekInfo struct {
	SHA256      string `json:"ek_sha256"`
	Certificate bool   `json:"ek_certificate"`
	Issuer      string `json:"ek_certificate_issuer,omitempty"`
}

func tpmEKCmd(stdout io.Writer, openTPM agent.TPMOpener) *cobra.Command {
	var (
		device string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ek [--tpm-device PATH] [--json]",
		Short: "Print the SHA-256 of the TPM's endorsement key, and whether the TPM holds an EK certificate",
		Long: `ek reads the TPM's RSA endorsement key (the one enrollment uses) and prints
the lowercase hex SHA-256 of its public key (PKIX DER) and whether the TPM
holds an EK certificate in its NV memory.

A TPM without an EK certificate enrolls only once an operator registered
that hash:
  workerca tpm register --ek-sha256 HASH --pool POOL [--worker-id W]
(or give 'enroll --ek-certificate FILE' when the platform ships the EK
certificate as a file). Nothing is written and nothing is sent anywhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ek, err := agent.ReadEndorsementKey(cmd.Context(), agent.TPM{Device: device, Open: openTPM})
			if err != nil {
				return err
			}
			info := ekInfo{SHA256: ek.SHA256, Certificate: ek.Certificate != nil}
			if ek.Certificate != nil {
				info.Issuer = ek.Certificate.Issuer.String()
			}
			if asJSON {
				b, err := json.Marshal(info)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(stdout, "%s\n", b)
				return err
			}
			fmt.Fprintf(stdout, "ek-sha256 %s\n", info.SHA256)
			if info.Certificate {
				fmt.Fprintf(stdout, "ek-certificate present (issuer %s)\n", info.Issuer)
			} else {
				fmt.Fprintf(stdout, "ek-certificate absent: an operator must register this TPM:\n  workerca tpm register --ek-sha256 %s --pool POOL\n", info.SHA256)
			}
			return nil
		},
	}
	registerTPMDevice(cmd.Flags(), &device)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"ek_sha256": ..., "ek_certificate": true|false, "ek_certificate_issuer": ...}`)
	return cmd
}
