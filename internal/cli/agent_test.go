package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/kube"

	"github.com/helmops/helmops/internal/agent"
)

func TestParseLabels(t *testing.T) {
	cases := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"env=prod", map[string]string{"env": "prod"}, ""},
		{"env=prod, region=eu ,example.com/tier=web", map[string]string{"env": "prod", "region": "eu", "example.com/tier": "web"}, ""},
		{"env=", map[string]string{"env": ""}, ""},
		{"env", nil, `"env" is not key=value`},
		{"bad key=x", nil, `key "bad key"`},
		{"env=not valid", nil, `value "not valid"`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			g := NewWithT(t)
			got, err := parseLabels(tc.in)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`

// writeKubeconfig writes testKubeconfig to a file of the test's and returns its path.
func writeKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// baseAgentFlags are valid flags of an agent whose kubeconfig is kubeconfig, with client limits
// the cases can recognise in the options; they name neither an upstream nor a credential.
func baseAgentFlags(kubeconfig string) *agentFlags {
	return &agentFlags{kubeconfig: kubeconfig, workspace: "fleet-default", heartbeat: 15 * time.Second, drift: 30 * time.Second,
		waitStrategy: "watcher", maxArchiveBytes: 1 << 20, upstreamQPS: 7, upstreamBurst: 9, downstreamQPS: 11, downstreamBurst: 13, workers: 4}
}

// checkAgentFlags runs a case of a flag table: the flags that base returns, changed by change,
// give an error containing wantErr or, when wantErr is empty, options that pass check.
func checkAgentFlags(t *testing.T, base func() *agentFlags, change func(*agentFlags), wantErr string, check func(Gomega, agent.Options)) {
	g := NewWithT(t)
	f := base()
	change(f)
	o, err := f.options()
	if wantErr != "" {
		g.Expect(err).To(MatchError(ContainSubstring(wantErr)))
		return
	}
	g.Expect(err).NotTo(HaveOccurred())
	check(g, o)
}

func TestAgentFlags(t *testing.T) {
	kubeconfig := writeKubeconfig(t)
	base := func() *agentFlags {
		f := baseAgentFlags(kubeconfig)
		f.upstreamKubeconfig, f.clusterName = kubeconfig, "dev"
		return f
	}
	cases := []struct {
		name    string
		change  func(*agentFlags)
		wantErr string
	}{
		{"valid", func(*agentFlags) {}, ""},
		{"register with labels", func(f *agentFlags) { f.register, f.labels = true, "env=dev" }, ""},
		{"no upstream", func(f *agentFlags) { f.upstreamKubeconfig = "" }, "--upstream-kubeconfig is required"},
		{"no cluster name", func(f *agentFlags) { f.clusterName = "" }, "--cluster-name is required"},
		{"labels without register", func(f *agentFlags) { f.labels = "env=dev" }, "--labels only applies with --register"},
		{"unknown wait strategy", func(f *agentFlags) { f.waitStrategy = "forever" }, `--helm-wait-strategy "forever"`},
		{"zero heartbeat", func(f *agentFlags) { f.heartbeat = 0 }, "must be positive"},
		{"zero upstream qps", func(f *agentFlags) { f.upstreamQPS = 0 }, "--upstream-kube-api-qps"},
		{"zero downstream burst", func(f *agentFlags) { f.downstreamBurst = 0 }, "--downstream-kube-api-qps"},
		{"no workers", func(f *agentFlags) { f.workers = 0 }, "--workers must be at least 1"},
		{"missing kubeconfig file", func(f *agentFlags) { f.upstreamKubeconfig = filepath.Join(t.TempDir(), "nope") }, "--upstream-kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkAgentFlags(t, base, tc.change, tc.wantErr, func(g Gomega, o agent.Options) {
				g.Expect(o.ClusterName).To(Equal("dev"))
				g.Expect(o.WaitStrategy).To(Equal(kube.StatusWatcherStrategy))
				g.Expect(o.Upstream.Host).To(Equal("https://127.0.0.1:6443"))
				g.Expect(o.Fetcher).NotTo(BeNil())
				g.Expect(o.Limits.MaxArchiveBytes).To(Equal(int64(1 << 20)))
				g.Expect([]any{o.Upstream.QPS, o.Upstream.Burst, o.Downstream.QPS, o.Downstream.Burst}).To(Equal([]any{float32(7), 9, float32(11), 13}))
			})
		})
	}
}

func TestAgentCommandIsRegistered(t *testing.T) {
	g := NewWithT(t)
	cmd, _, err := NewRootCommand().Find([]string{"agent"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Name()).To(Equal("agent"))
	for _, flag := range []string{"upstream-kubeconfig", "kubeconfig", "cluster-name", "workspace", "register", "labels",
		"heartbeat-interval", "drift-interval", "chart-cache-dir", "metrics-bind-address", "helm-wait-strategy", "workers"} {
		g.Expect(cmd.Flags().Lookup(flag)).NotTo(BeNil(), flag)
	}
	// The shipped client limits, not client-go's 5 requests/s.
	for flag, want := range map[string]string{
		"upstream-kube-api-qps": "50", "upstream-kube-api-burst": "100",
		"downstream-kube-api-qps": "100", "downstream-kube-api-burst": "200",
	} {
		g.Expect(cmd.Flags().Lookup(flag).DefValue).To(Equal(want), flag)
	}
}

func TestControllerClientLimitFlags(t *testing.T) {
	g := NewWithT(t)
	cmd, _, err := NewRootCommand().Find([]string{"controller"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Flags().Lookup("kube-api-qps").DefValue).To(Equal("200"))
	g.Expect(cmd.Flags().Lookup("kube-api-burst").DefValue).To(Equal("400"))
	err = runController(t.Context(), &controllerFlags{workers: 1, kubeAPIQPS: 0, kubeAPIBurst: 10})
	g.Expect(err).To(MatchError(ContainSubstring("--kube-api-qps must be positive")))
	g.Expect(cmd.Flags().Lookup("max-slow-fetches").DefValue).To(Equal("4"))
	err = runController(t.Context(), &controllerFlags{workers: 4, maxSlow: 4, kubeAPIQPS: 200, kubeAPIBurst: 400})
	g.Expect(err).To(MatchError(ContainSubstring("--max-slow-fetches is 4: it must be at least 1 and below --workers (4)")))
}

func TestAgentCredentialSecretFlags(t *testing.T) {
	kubeconfig := writeKubeconfig(t)
	base := func() *agentFlags { return baseAgentFlags(kubeconfig) }
	cases := []struct {
		name       string
		change     func(*agentFlags)
		wantSecret string
		wantToken  bool
		wantErr    string
	}{
		{"the credential the controller writes", func(f *agentFlags) { f.credentialSecret = "helmops-system/local" }, "helmops-system/local", false, ""},
		{"a registration keeps it by default", func(f *agentFlags) { f.registrationKubeconfig = kubeconfig }, defaultCredentialSecret, true, ""},
		{"both kubeconfigs", func(f *agentFlags) { f.credentialSecret, f.upstreamKubeconfig = "a/b", kubeconfig }, "", false, "exclude each other"},
		{"a cluster name with a credential", func(f *agentFlags) { f.credentialSecret, f.clusterName = "a/b", "dev" }, "", false, "the credential names the cluster"},
		{"labels without a registration", func(f *agentFlags) { f.credentialSecret, f.labels = "a/b", "env=dev" }, "", false, "--labels and --client-id only apply"},
		{"not namespace/name", func(f *agentFlags) { f.credentialSecret = "just-a-name" }, "", false, `--credential-secret "just-a-name": write it as namespace/name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkAgentFlags(t, base, tc.change, tc.wantErr, func(g Gomega, o agent.Options) {
				g.Expect(o.Registration).NotTo(BeNil())
				g.Expect(o.Registration.CredentialSecret.String()).To(Equal(tc.wantSecret))
				g.Expect(o.Registration.Token != nil).To(Equal(tc.wantToken))
				g.Expect([]any{o.Registration.QPS, o.Registration.Burst}).To(Equal([]any{float32(7), 9}), "the upstream limits reach the granted credential")
			})
		})
	}
}
