package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/helmops/helmops/internal/agent"
	"github.com/helmops/helmops/internal/apiclient"
	"github.com/helmops/helmops/internal/chartsource"
)

type agentFlags struct {
	upstreamKubeconfig, kubeconfig string
	registrationKubeconfig         string
	clientID, credentialSecret     string
	clusterName, workspace         string
	register                       bool
	labels                         string
	heartbeat, drift               time.Duration
	chartCacheDir                  string
	metricsAddr                    string
	workers                        int
	waitStrategy                   string
	maxArchiveBytes                int64
	network                        networkFlags
	upstreamQPS, downstreamQPS     float32
	upstreamBurst, downstreamBurst int
	verbose                        bool
}

func newAgentCommand() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent of one downstream cluster: download and install the charts its BundleDeployments name",
		Long:  agentHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			log := setLogger(cmd.ErrOrStderr(), f.verbose)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.Run(ctrl.LoggerInto(ctx, log), o)
		},
	}
	f.addFlags(cmd.Flags())
	return cmd
}

const agentHelp = `The agent watches its cluster's namespace on the management cluster (--upstream-kubeconfig),
downloads the chart of each BundleDeployment there itself, installs or upgrades it with the Helm
SDK in the downstream cluster (--kubeconfig, else $KUBECONFIG, else the in-cluster configuration),
writes the release's status back, corrects drift when asked and renews a heartbeat Lease in its
cluster namespace.

It reaches the management cluster one of three ways:
  --registration-kubeconfig  a ClusterRegistrationToken's kubeconfig: it registers the cluster and
                             keeps the credential it is granted in --credential-secret;
  --credential-secret alone  the credential the management cluster's controller writes there (the
                             agent of the local cluster; agents installed through a Cluster's
                             spec.kubeConfigSecret), waiting for it;
  --upstream-kubeconfig      a kubeconfig made by hand, with --cluster-name and --workspace
                             (--register creates the Cluster, with --labels, when it does not
                             exist: that needs create on clusters, which no credential helmops
                             grants has).
Either way it waits until the management cluster gave the Cluster a namespace (status.namespace).`

func (f *agentFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.upstreamKubeconfig, "upstream-kubeconfig", "", "kubeconfig of the management cluster, made by hand (instead of --registration-kubeconfig or --credential-secret)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the downstream cluster; default $KUBECONFIG, ~/.kube/config, then the in-cluster configuration")
	fl.StringVar(&f.registrationKubeconfig, "registration-kubeconfig", "", "kubeconfig of a ClusterRegistrationToken (its status.secretName, key kubeconfig): register this cluster and keep the granted credential in --credential-secret; replaces --upstream-kubeconfig and --cluster-name")
	fl.StringVar(&f.clientID, "client-id", "", "with --registration-kubeconfig: the ID of this cluster across registrations; default the UID of namespace kube-system")
	fl.StringVar(&f.credentialSecret, "credential-secret", "", "the downstream Secret (namespace/name) holding this agent's credential: with --registration-kubeconfig where the granted one is kept (default "+defaultCredentialSecret+"); alone, the one the management cluster's controller writes there")
	fl.StringVar(&f.clusterName, "cluster-name", "", "name of this cluster's Cluster on the management cluster (required)")
	fl.StringVar(&f.workspace, "workspace", "fleet-default", "namespace of the Cluster on the management cluster")
	fl.BoolVar(&f.register, "register", false, "with --upstream-kubeconfig: create the Cluster when it does not exist (needs create on clusters, which no credential helmops grants has)")
	fl.StringVar(&f.labels, "labels", "", "labels of a registered Cluster, k=v,k2=v2")
	fl.DurationVar(&f.heartbeat, "heartbeat-interval", 15*time.Second, "how often the heartbeat Lease (helmops-agent in the cluster namespace) is renewed")
	fl.DurationVar(&f.drift, "drift-interval", 30*time.Second, "how often deployed releases are checked for readiness and drift")
	fl.IntVar(&f.workers, "workers", agent.DefaultWorkers, "BundleDeployments reconciled at once (Helm installs, upgrades, readiness and drift checks)")
	fl.StringVar(&f.chartCacheDir, "chart-cache-dir", "", "folder for downloaded chart archives; default a temporary folder")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `address of the Prometheus metrics endpoint; "0" turns it off`)
	fl.StringVar(&f.waitStrategy, "helm-wait-strategy", string(kube.StatusWatcherStrategy), "how Helm waits when a BundleDeployment sets timeoutSeconds, waitForJobs or atomic: watcher, legacy or hookOnly")
	fl.Int64Var(&f.maxArchiveBytes, "max-chart-bytes", 20<<20, "largest chart archive accepted, in bytes (decompressed: 5 times this)")
	f.network.register(fl)
	fl.Float32Var(&f.upstreamQPS, "upstream-kube-api-qps", apiclient.AgentUpstreamQPS, "requests per second to the management cluster's API, per resource kind (every agent shares that apiserver)")
	fl.IntVar(&f.upstreamBurst, "upstream-kube-api-burst", apiclient.AgentUpstreamBurst, "requests above --upstream-kube-api-qps allowed in a burst")
	fl.Float32Var(&f.downstreamQPS, "downstream-kube-api-qps", apiclient.AgentDownstreamQPS, "requests per second to the downstream cluster's API (Helm installs and upgrades, drift checks)")
	fl.IntVar(&f.downstreamBurst, "downstream-kube-api-burst", apiclient.AgentDownstreamBurst, "requests above --downstream-kube-api-qps allowed in a burst")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log Helm's debug output too")
}

// defaultCredentialSecret keeps the credential a registration grants.
const defaultCredentialSecret = "helmops-system/helmops-agent-credential"

func (f *agentFlags) options() (agent.Options, error) {
	if f.registrationKubeconfig != "" || (f.credentialSecret != "" && f.upstreamKubeconfig == "") {
		return f.registrationOptions()
	}
	if f.upstreamKubeconfig == "" {
		return agent.Options{}, fmt.Errorf("--upstream-kubeconfig is required: the kubeconfig that reaches the management cluster (or register with --registration-kubeconfig, or use the credential the controller writes with --credential-secret)")
	}
	if f.credentialSecret != "" {
		return agent.Options{}, fmt.Errorf("--credential-secret and --upstream-kubeconfig exclude each other: the credential secret holds the kubeconfig")
	}
	if f.clusterName == "" {
		return agent.Options{}, fmt.Errorf("--cluster-name is required: the name of this cluster's Cluster on the management cluster")
	}
	if f.heartbeat <= 0 || f.drift <= 0 {
		return agent.Options{}, fmt.Errorf("--heartbeat-interval and --drift-interval must be positive")
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return agent.Options{}, err
	}
	if len(labels) > 0 && !f.register {
		return agent.Options{}, fmt.Errorf("--labels only applies with --register")
	}
	upstream, err := restConfig(f.upstreamKubeconfig)
	if err != nil {
		return agent.Options{}, fmt.Errorf("--upstream-kubeconfig: %w", err)
	}
	downstream, err := restConfig(f.kubeconfig)
	if err != nil {
		return agent.Options{}, fmt.Errorf("--kubeconfig: %w", err)
	}
	o, err := f.common(downstream)
	o.Upstream, o.ClusterName, o.Workspace = apiclient.WithLimits(upstream, f.upstreamQPS, f.upstreamBurst), f.clusterName, f.workspace
	o.Register, o.Labels = f.register, labels
	return o, err
}

// registrationOptions are the options of an agent that registers with a token, or uses the
// credential the controller writes into its credential secret.
func (f *agentFlags) registrationOptions() (agent.Options, error) {
	if f.upstreamKubeconfig != "" || f.clusterName != "" || f.register {
		return agent.Options{}, fmt.Errorf("--registration-kubeconfig and --credential-secret replace --upstream-kubeconfig, --cluster-name and --register: the credential names the cluster")
	}
	secret := f.credentialSecret
	if secret == "" {
		secret = defaultCredentialSecret
	}
	if f.heartbeat <= 0 || f.drift <= 0 {
		return agent.Options{}, fmt.Errorf("--heartbeat-interval and --drift-interval must be positive")
	}
	ns, name, ok := strings.Cut(secret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return agent.Options{}, fmt.Errorf("--credential-secret %q: write it as namespace/name", secret)
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return agent.Options{}, err
	}
	var token *rest.Config
	if f.registrationKubeconfig != "" {
		if token, err = restConfig(f.registrationKubeconfig); err != nil {
			return agent.Options{}, fmt.Errorf("--registration-kubeconfig: %w", err)
		}
		token = apiclient.WithLimits(token, f.upstreamQPS, f.upstreamBurst)
	} else if len(labels) > 0 || f.clientID != "" {
		return agent.Options{}, fmt.Errorf("--labels and --client-id only apply with --register or --registration-kubeconfig")
	}
	downstream, err := restConfig(f.kubeconfig)
	if err != nil {
		return agent.Options{}, fmt.Errorf("--kubeconfig: %w", err)
	}
	o, err := f.common(downstream)
	o.Registration = &agent.Registration{
		Token: token, ClientID: f.clientID, Labels: labels, QPS: f.upstreamQPS, Burst: f.upstreamBurst,
		CredentialSecret: types.NamespacedName{Namespace: ns, Name: name},
	}
	return o, err
}

// common are the options every agent has, whatever reaches the management cluster.
func (f *agentFlags) common(downstream *rest.Config) (agent.Options, error) {
	if f.workers < 1 {
		return agent.Options{}, fmt.Errorf("--workers must be at least 1")
	}
	if f.upstreamQPS <= 0 || f.downstreamQPS <= 0 || f.upstreamBurst < 1 || f.downstreamBurst < 1 {
		return agent.Options{}, fmt.Errorf("--upstream-kube-api-qps and --downstream-kube-api-qps must be positive, their bursts at least 1")
	}
	var ws kube.WaitStrategy
	switch s := kube.WaitStrategy(f.waitStrategy); s {
	case kube.StatusWatcherStrategy, kube.LegacyStrategy, kube.HookOnlyStrategy:
		ws = s
	default:
		return agent.Options{}, fmt.Errorf("--helm-wait-strategy %q is not supported: use watcher, legacy or hookOnly", f.waitStrategy)
	}
	network, err := f.network.policy()
	if err != nil {
		return agent.Options{}, err
	}
	o := agent.Options{
		Downstream:        apiclient.WithLimits(downstream, f.downstreamQPS, f.downstreamBurst),
		HeartbeatInterval: f.heartbeat, DriftInterval: f.drift, Workers: f.workers,
		ChartCacheDir: f.chartCacheDir, MetricsBindAddress: f.metricsAddr,
		WaitStrategy: ws,
		Fetcher:      agent.ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{Network: network})},
	}
	o.Limits.MaxArchiveBytes = f.maxArchiveBytes
	o.Limits.MaxDecompressedBytes = 5 * f.maxArchiveBytes
	return o, nil
}

// parseLabels reads k=v,k2=v2.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("--labels: %q is not key=value", part)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("--labels: key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("--labels: value %q of %q: %s", v, k, strings.Join(errs, "; "))
		}
		out[k] = v
	}
	return out, nil
}
