package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/helmops/helmops/internal/testenv"
)

func runResolve(stdin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := NewRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"resolve"}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestResolveCommand(t *testing.T) {
	g := NewWithT(t)
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{TLS: true, Username: "ops", Password: "s3cret-pass"})
	g.Expect(err).NotTo(HaveOccurred())
	defer repo.Stop()
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0-rc.1"} {
		g.Expect(repo.Publish("alpine", v)).To(Succeed())
	}
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	defer reg.Stop()
	for _, v := range []string{"0.1.0", "0.2.0+up1.0"} {
		_, err := reg.Publish(context.Background(), "alpine", v)
		g.Expect(err).NotTo(HaveOccurred())
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	g.Expect(os.WriteFile(caFile, repo.CAPEM(), 0o600)).To(Succeed())
	creds := []string{"--repo", repo.URL, "--chart", "alpine", "--ca-file", caFile, "--username", "ops", "--password-stdin"}

	t.Run("text: the chosen version and why newer ones were not chosen", func(t *testing.T) {
		g := NewWithT(t)
		out, err := runResolve("s3cret-pass\n", append(creds, "--version", "0.1.x")...)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`Version:\s+0\.1\.0\n`))
		g.Expect(out).To(MatchRegexp(`Digest:\s+sha256:[0-9a-f]{64}\n`))
		g.Expect(out).To(MatchRegexp(`URL:\s+` + repo.URL + `/charts/alpine-0\.1\.0\.tgz\n`))
		g.Expect(out).To(MatchRegexp(`0\.3\.0-rc\.1\s+prerelease\n`))
		g.Expect(out).To(MatchRegexp(`0\.2\.0\s+outside constraint "0\.1\.x"`))
	})
	t.Run("json", func(t *testing.T) {
		g := NewWithT(t)
		out, err := runResolve("s3cret-pass", append(creds, "-o", "json")...)
		g.Expect(err).NotTo(HaveOccurred())
		var got struct {
			Version  string `json:"version"`
			Digest   string `json:"digest"`
			URL      string `json:"url"`
			Rejected []struct{ Version, Reason string }
		}
		g.Expect(json.Unmarshal([]byte(out), &got)).To(Succeed())
		g.Expect(got.Version).To(Equal("0.2.0"))
		g.Expect(got.Rejected).To(HaveLen(1))
		g.Expect(got.Rejected[0].Version).To(Equal("0.3.0-rc.1"))
		g.Expect(got.Rejected[0].Reason).To(Equal("prerelease"))
	})
	t.Run("no match exits with the descriptive error", func(t *testing.T) {
		g := NewWithT(t)
		_, err := runResolve("s3cret-pass", append(creds, "--version", "0.4.x")...)
		g.Expect(err).To(MatchError(`no version of chart "alpine" matches "0.4.x" in ` + repo.URL + `; newest: 0.3.0-rc.1, 0.2.0, 0.1.0`))
	})
	t.Run("wrong password", func(t *testing.T) {
		g := NewWithT(t)
		_, err := runResolve("not-the-pass", append(creds, "--version", "0.1.x")...)
		g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized")))
		g.Expect(err.Error()).NotTo(ContainSubstring("not-the-pass"))
	})
	t.Run("the server certificate is checked", func(t *testing.T) {
		g := NewWithT(t)
		_, err := runResolve("s3cret-pass", "--repo", repo.URL, "--chart", "alpine", "--username", "ops", "--password-stdin")
		g.Expect(err).To(MatchError(ContainSubstring("x509")))
		out, err := runResolve("s3cret-pass", "--repo", repo.URL, "--chart", "alpine", "--username", "ops", "--password-stdin", "--insecure-skip-tls-verify")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`Version:\s+0\.2\.0`))
	})
	t.Run("oci with build metadata", func(t *testing.T) {
		g := NewWithT(t)
		out, err := runResolve("", "--repo", reg.URL("alpine"), "--version", "0.2.x", "--plain-http")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`Version:\s+0\.2\.0\+up1\.0\n`))
		g.Expect(out).To(MatchRegexp(`URL:\s+` + reg.URL("alpine") + `:0\.2\.0_up1\.0\n`))
	})
	t.Run("fields that do not go together name the flags", func(t *testing.T) {
		g := NewWithT(t)
		_, err := runResolve("", "--repo", reg.URL("alpine"), "--chart", "alpine")
		g.Expect(err).To(MatchError(HavePrefix("--chart: must be empty when --repo is an oci://")))
		_, err = runResolve("", "--username", "x")
		g.Expect(err).To(MatchError(ContainSubstring("--username and --password-stdin go together")))
	})
}
