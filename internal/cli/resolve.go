package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/startgc"
)

type resolveOptions struct {
	repo, chart, version string
	username             string
	passwordStdin        bool
	caFile               string
	certFile, keyFile    string
	insecure, plainHTTP  bool
	output               string
}

func newResolveCommand() *cobra.Command {
	o := &resolveOptions{}
	cmd := &cobra.Command{
		Use:   "resolve",
		Short: "Resolve a chart version as the controller would, and explain the choice",
		Long: `Resolve a chart version from a Helm repository, an OCI registry or a chart URL, exactly as
the controller resolves a HelmOp's helm block, and print the chosen version, its digest and URL,
and every newer version with the reason it was not chosen.

  helmops resolve --repo https://charts.example.com --chart alpine --version 0.2.x
  helmops resolve --repo oci://registry.example.com/charts/alpine --version '>= 1.0'
  helmops resolve --chart https://example.com/alpine-0.1.0.tgz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", "", "Helm repository URL (https://…) or OCI chart reference (oci://registry/path/chart)")
	f.StringVar(&o.chart, "chart", "", "chart name in the Helm repository, or a chart archive URL ending in .tgz")
	f.StringVar(&o.version, "version", "", "exact version or semantic version constraint (default: newest stable version)")
	f.StringVar(&o.username, "username", "", "username for the repository or registry")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's")
	f.StringVar(&o.certFile, "cert-file", "", "PEM client certificate for mutual TLS")
	f.StringVar(&o.keyFile, "key-file", "", "PEM private key of --cert-file")
	f.BoolVar(&o.insecure, "insecure-skip-tls-verify", false, "accept any server certificate")
	f.BoolVar(&o.plainHTTP, "plain-http", false, "talk to the OCI registry over http://")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (o *resolveOptions) auth(stdin io.Reader) (chartsource.Auth, error) {
	a := chartsource.Auth{Username: o.username, InsecureSkipTLSVerify: o.insecure, PlainHTTP: o.plainHTTP}
	if o.passwordStdin {
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return a, fmt.Errorf("reading the password from standard input: %w", err)
		}
		a.Password = strings.TrimRight(string(b), "\r\n")
	}
	if (a.Username == "") != (a.Password == "") {
		return a, errors.New("--username and --password-stdin go together: give both or neither")
	}
	read := func(flag, path string) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		return b, nil
	}
	var err error
	if a.CAFile, err = read("ca-file", o.caFile); err != nil {
		return a, err
	}
	if a.CertPEM, err = read("cert-file", o.certFile); err != nil {
		return a, err
	}
	if a.KeyPEM, err = read("key-file", o.keyFile); err != nil {
		return a, err
	}
	if (a.CertPEM == nil) != (a.KeyPEM == nil) {
		return a, errors.New("--cert-file and --key-file go together: give both or neither")
	}
	return a, nil
}

// resolveOutput is what `helmops resolve -o json` prints.
type resolveOutput struct {
	Source     string `json:"source"`
	Chart      string `json:"chart,omitempty"`
	Constraint string `json:"constraint"`
	*chartsource.Resolution
}

func (o *resolveOptions) run(cmd *cobra.Command, stdin io.Reader, out io.Writer) error {
	startgc.Restore()
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output must be text or json, not %q", o.output)
	}
	auth, err := o.auth(stdin)
	if err != nil {
		return err
	}
	ref := chartsource.Ref{Repo: o.repo, Chart: o.chart, Version: o.version}
	if err := classify(ref); err != nil {
		return err
	}
	res, err := chartsource.NewResolver(chartsource.Options{Network: chartsource.AllowAll, StreamIndexes: true}).Resolve(cmd.Context(), ref, auth)
	if err != nil {
		return err
	}
	constraint := o.version
	if constraint == "" {
		constraint = "*"
	}
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(resolveOutput{Source: o.repo, Chart: o.chart, Constraint: constraint, Resolution: res})
	}
	return printResolution(out, res, constraint)
}

// classify checks the flags as the controller checks a HelmOp's helm block, naming the flags.
func classify(ref chartsource.Ref) error {
	_, err := chartsource.Classify(ref)
	var fe *chartsource.FieldError
	if errors.As(err, &fe) {
		flag := "--" + strings.TrimPrefix(fe.Field, "helm.")
		return fmt.Errorf("%s: %s", flag, strings.NewReplacer("helm.repo", "--repo", "helm.chart", "--chart", "helm.version", "--version", "the helm block", "resolve").Replace(fe.Message))
	}
	return err
}

// printResolution writes the chosen version and why each newer one was not chosen.
func printResolution(out io.Writer, res *chartsource.Resolution, constraint string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if res.Kind == chartsource.KindTarball {
		fmt.Fprintf(tw, "Chart:\t%s\n", res.URL)
		fmt.Fprintf(tw, "Version:\t(the archive's own; a chart URL is not resolved)\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "Version:\t%s\n", res.Version)
	if res.Digest != "" {
		fmt.Fprintf(tw, "Digest:\t%s\n", res.Digest)
	}
	fmt.Fprintf(tw, "URL:\t%s\n", res.URL)
	if !res.Created.IsZero() {
		fmt.Fprintf(tw, "Created:\t%s\n", res.Created.UTC().Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(tw, "Constraint:\t%s\n", constraint)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Rejected) == 0 {
		fmt.Fprintln(out, "No newer versions.")
		return nil
	}
	fmt.Fprintln(out, "Newer versions not chosen:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, rj := range res.Rejected {
		fmt.Fprintf(tw, "  %s\t%s\n", rj.Version, rj.Reason)
	}
	return tw.Flush()
}
