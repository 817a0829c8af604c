package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/charts"
	"github.com/helmops/helmops/internal/apiclient"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/controller/bundle"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/controller/helmop"
	"github.com/helmops/helmops/internal/controller/registration"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/notify"
	"github.com/helmops/helmops/internal/scheme"
	"github.com/helmops/helmops/internal/version"
)

type controllerFlags struct {
	kubeconfig     string
	metricsAddr    string
	probeAddr      string
	leaderElect    bool
	leaderNS       string
	shardID        string
	workers        int
	bootstrap      bool
	agentTimeout   time.Duration
	minRevalidate  time.Duration
	indexCacheSize int64
	maxIndexSize   int64
	maxFullParse   int64
	perHost        int
	maxSlow        int
	reconcileTO    time.Duration
	network        networkFlags
	kubeAPIQPS     float32
	kubeAPIBurst   int
	verbose        bool
	apiServerURL   string
	apiServerCA    string
	webhookAddr    string
	webhookSecret  string
	agentImage     string
	localAgentCred string
}

func newControllerCommand() *cobra.Command {
	f := &controllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the management-cluster controller: HelmOps, Bundles, Clusters and ClusterGroups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runController(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the management cluster; default $KUBECONFIG, ~/.kube/config, then in-cluster")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `address of the Prometheus metrics endpoint; "0" turns it off`)
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `address of /healthz and /readyz; "0" turns them off`)
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader through a Lease so that only one replica reconciles")
	fl.StringVar(&f.leaderNS, "leader-election-namespace", "", "namespace of the Lease; default the pod's namespace ($POD_NAMESPACE) or kube-system")
	fl.StringVar(&f.shardID, "shard-id", "", "handle only objects labelled fleet.cattle.io/shard-ref=ID; without it, only objects with no such label")
	fl.IntVar(&f.workers, "workers", 10, "concurrent reconciles of each of the HelmOp, Bundle and Cluster controllers")
	fl.BoolVar(&f.bootstrap, "bootstrap", true, `create namespace fleet-local, Cluster "local" and ClusterGroup "default" at start`)
	fl.DurationVar(&f.agentTimeout, "agent-timeout", cluster.DefaultAgentTimeout, "how long after its agent's last heartbeat a Cluster stays Ready")
	fl.DurationVar(&f.minRevalidate, "index-min-revalidate", 2*time.Second, "how long a fetched repository index is used before asking the server again (shared by every HelmOp; notifications and helmops reconcile ask at once)")
	fl.Int64Var(&f.indexCacheSize, "index-cache-bytes", 256<<20, "memory bound of the shared repository index cache")
	fl.Int64Var(&f.maxIndexSize, "max-index-bytes", 100<<20, "largest repository index downloaded")
	fl.StringVar(&f.apiServerURL, "api-server-url", "", "URL of the management cluster's API server as agents reach it, written into the kubeconfigs of registration tokens and registered agents; default the URL this controller uses")
	fl.StringVar(&f.apiServerCA, "api-server-ca-file", "", "PEM file of the CA agents verify --api-server-url with; default the CA this controller uses")
	fl.Int64Var(&f.maxFullParse, "max-full-parse-bytes", chartsource.DefaultMaxFullParseBytes, "largest repository index accepted in a layout only a full YAML parse reads (flow style, anchors); such a parse takes many times the index in memory")
	fl.IntVar(&f.perHost, "max-fetches-per-host", chartsource.DefaultMaxFetchesPerHost, "HelmOp reconciles that may wait on one repository host at a time; the others try again shortly, so a slow host cannot hold every worker")
	fl.IntVar(&f.maxSlow, "max-slow-fetches", chartsource.DefaultMaxSlowFetches, "HelmOp reconciles that may wait longer than one second on repositories at a time, whatever the hosts (below --workers); the others' requests are cancelled and tried again shortly, so many slow hosts cannot hold every worker")
	fl.DurationVar(&f.reconcileTO, "reconcile-timeout", helmop.DefaultReconcileTimeout, "deadline of one HelmOp reconcile, repository requests included")
	f.network.register(fl)
	fl.StringVar(&f.webhookAddr, "webhook-bind-address", ":8082", `address of the notification endpoint that registries and CI call when they publish a chart (see docs/notifications.md); "0" turns it off`)
	fl.StringVar(&f.webhookSecret, "webhook-secret", "helmops-webhook", `Secret with the notification endpoint's token (key "token"): NAME in the controller's namespace ($POD_NAMESPACE, else kube-system) or NAMESPACE/NAME`)
	fl.StringVar(&f.localAgentCred, "local-agent-credential-secret", "", `NAMESPACE/NAME of the Secret of this cluster the controller writes the credential of the local cluster's agent into (Cluster "local" in fleet-local), for an agent run with --credential-secret NAMESPACE/NAME; empty writes none`)
	fl.StringVar(&f.agentImage, "agent-image", "ghcr.io/helmops/helmops:"+version.Get().Version, "image of the agents the controller installs into clusters with spec.kubeConfigSecret")
	fl.Float32Var(&f.kubeAPIQPS, "kube-api-qps", apiclient.ControllerQPS, "requests per second to the Kubernetes API, per resource kind (client-side limit; the apiserver's own fairness protects it too)")
	fl.IntVar(&f.kubeAPIBurst, "kube-api-burst", apiclient.ControllerBurst, "requests above --kube-api-qps allowed in a burst, per resource kind")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logs")
	return cmd
}

func runController(ctx context.Context, f *controllerFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	log := setLogger(os.Stderr, f.verbose)
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg = apiclient.WithLimits(cfg, f.kubeAPIQPS, f.kubeAPIBurst)
	mgr, err := newControllerManager(cfg, f)
	if err != nil {
		return err
	}
	if err := setupControllers(mgr, cfg, f); err != nil {
		return err
	}
	if f.bootstrap {
		if err := bootstrap(ctx, cfg); err != nil {
			return err
		}
	}
	log.Info("Starting the helmops controller", "shard", f.shardID, "leaderElection", f.leaderElect)
	return mgr.Start(ctx)
}

// validate checks the flags that restConfig and the manager do not.
func (f *controllerFlags) validate() error {
	if f.workers < 1 {
		return fmt.Errorf("--workers must be at least 1")
	}
	if f.kubeAPIQPS <= 0 || f.kubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-qps must be positive and --kube-api-burst at least 1")
	}
	if f.maxSlow < 1 || f.maxSlow >= f.workers {
		return fmt.Errorf("--max-slow-fetches is %d: it must be at least 1 and below --workers (%d), so that slow repositories cannot hold every worker", f.maxSlow, f.workers)
	}
	return nil
}

// setLogger makes a text logger to w, debug logs with verbose, the logger of controller-runtime
// and klog.
func setLogger(w io.Writer, verbose bool) logr.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := logr.FromSlogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	return log
}

// newControllerManager makes the manager: the leader election Lease of the shard, the caches
// of the shard's objects, and the health checks.
func newControllerManager(cfg *rest.Config, f *controllerFlags) (ctrl.Manager, error) {
	leaderNS := cmp.Or(f.leaderNS, os.Getenv("POD_NAMESPACE"), "kube-system")
	leaseName := "helmops-controller"
	if f.shardID != "" {
		leaseName += "-" + f.shardID
	}
	// Each shard caches only its own objects.
	shardSel := shard.Selector(f.shardID)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              leaseName,
		LeaderElectionNamespace:       leaderNS,
		LeaderElectionReleaseOnCancel: true,
		// Objects the controller reads seldom and by name are read from the API server: caching
		// them would need list and watch on every one of the cluster, which the chart does not
		// grant (get is enough).
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
			&rbacv1.Role{}, &rbacv1.RoleBinding{}, &corev1.ServiceAccount{},
			&admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
		}}},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.HelmOp{}: {Label: shardSel},
			&v1alpha1.Bundle{}: {Label: shardSel},
			// Only the agents' heartbeat Leases (the controller creates them with this label).
			&coordinationv1.Lease{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedLabel: "true"})},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setupControllers adds the HelmOp, notification, Bundle and Cluster controllers and, on the
// default shard, the registration ones.
func setupControllers(mgr ctrl.Manager, cfg *rest.Config, f *controllerFlags) error {
	network, err := f.network.policy()
	if err != nil {
		return err
	}
	resolver := chartsource.NewResolver(chartsource.Options{
		CacheBytes: f.indexCacheSize, MaxIndexBytes: f.maxIndexSize, MinRevalidate: f.minRevalidate,
		MaxFullParseBytes: f.maxFullParse, MaxFetchesPerHost: f.perHost, MaxSlowFetches: f.maxSlow, Network: network,
	})
	if err := (&helmop.Reconciler{Client: mgr.GetClient(), Resolver: resolver, ShardID: f.shardID, Workers: f.workers, ReconcileTimeout: f.reconcileTO}).SetupWithManager(mgr); err != nil {
		return err
	}
	if f.webhookAddr != "0" {
		secret, err := webhookSecretKey(f.webhookSecret)
		if err != nil {
			return err
		}
		if _, err := notify.Setup(mgr, notify.Options{Addr: f.webhookAddr, Secret: secret, ShardID: f.shardID}); err != nil {
			return err
		}
	}
	if err := (&bundle.Reconciler{Client: mgr.GetClient(), ShardID: f.shardID, Workers: f.workers}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&cluster.Reconciler{Client: mgr.GetClient(), ShardID: f.shardID, AgentTimeout: f.agentTimeout, Workers: f.workers}).SetupWithManager(mgr); err != nil {
		return err
	}
	if f.shardID != "" {
		return nil
	}
	// Registrations are not sharded: the controller of the default shard grants them.
	return setupRegistration(mgr, cfg, f)
}

// bootstrap creates namespace fleet-local, Cluster "local", ClusterGroup "default" and the
// registration admission policy.
func bootstrap(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	if err := cluster.Bootstrap(ctx, c); err != nil {
		return fmt.Errorf("bootstrapping fleet-local: %w", err)
	}
	if err := registration.EnsureAdmissionPolicy(ctx, c); err != nil {
		return fmt.Errorf("bootstrapping the registration admission policy: %w", err)
	}
	return nil
}

// setupRegistration runs the ClusterRegistrationToken and ClusterRegistration controllers.
func setupRegistration(mgr ctrl.Manager, cfg *rest.Config, f *controllerFlags) error {
	server, err := f.registrationServer(cfg)
	if err != nil {
		return err
	}
	tokens, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	if err := (&registration.TokenReconciler{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&registration.Reconciler{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server}).SetupWithManager(mgr); err != nil {
		return err
	}
	ch, err := charts.AgentChart()
	if err != nil {
		return err
	}
	if f.localAgentCred != "" {
		if err := setupLocalAgent(mgr, cfg, direct, tokens, f.localAgentCred); err != nil {
			return err
		}
	}
	repo, tag, ok := strings.Cut(f.agentImage, ":")
	if !ok || repo == "" || tag == "" || strings.Contains(tag, "/") {
		return fmt.Errorf("--agent-image %q: write it as repository:tag", f.agentImage)
	}
	return (&registration.AgentDeployer{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server, Chart: ch,
		Image: registration.AgentImage{Repository: repo, Tag: tag}}).SetupWithManager(mgr)
}

// registrationServer is the API server as registered agents reach it: --api-server-url and
// --api-server-ca-file, by default as the controller reaches it.
func (f *controllerFlags) registrationServer(cfg *rest.Config) (registration.Server, error) {
	server := registration.Server{URL: cmp.Or(f.apiServerURL, cfg.Host), CAData: cfg.CAData}
	ca := f.apiServerCA
	if ca == "" && len(server.CAData) == 0 {
		ca = cfg.CAFile
	}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return server, fmt.Errorf("--api-server-ca-file: %w", err)
		}
		server.CAData = b
	}
	return server, nil
}

// setupLocalAgent runs the controller that writes the credential of the local cluster's agent
// into the Secret secret (NAMESPACE/NAME) of this cluster.
func setupLocalAgent(mgr ctrl.Manager, cfg *rest.Config, direct client.Client, tokens kubernetes.Interface, secret string) error {
	ns, name, ok := strings.Cut(secret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("--local-agent-credential-secret %q: write it as NAMESPACE/NAME", secret)
	}
	local, err := localServer(cfg)
	if err != nil {
		return err
	}
	return (&registration.LocalAgent{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: local,
		Secret: client.ObjectKey{Namespace: ns, Name: name}}).SetupWithManager(mgr)
}

// localServer is how the local agent reaches this cluster's API server: as the controller does.
func localServer(cfg *rest.Config) (registration.Server, error) {
	s := registration.Server{URL: cfg.Host, CAData: cfg.CAData}
	if len(s.CAData) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return s, fmt.Errorf("reading the CA of the controller's own configuration for the local agent: %w", err)
		}
		s.CAData = b
	}
	return s, nil
}

// webhookSecretKey reads --webhook-secret: NAMESPACE/NAME, or NAME in the controller's namespace.
func webhookSecretKey(v string) (client.ObjectKey, error) {
	ns, name, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		ns, name = os.Getenv("POD_NAMESPACE"), ns
		if ns == "" {
			ns = "kube-system"
		}
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return client.ObjectKey{}, fmt.Errorf("--webhook-secret %q: give NAME or NAMESPACE/NAME of the Secret with the notification token, or turn the endpoint off with --webhook-bind-address=0", v)
	}
	return client.ObjectKey{Namespace: ns, Name: name}, nil
}
