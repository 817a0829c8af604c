package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/kube"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/chartarchive"
	"github.com/helmops/helmops/internal/agent/helmaction"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/scheme"
	"github.com/helmops/helmops/internal/version"
)

// Options configure an agent.
type Options struct {
	// Upstream reaches the management cluster; Downstream the cluster the agent deploys to.
	Upstream, Downstream *rest.Config
	// ClusterName and Workspace name the agent's Cluster object on the management cluster.
	ClusterName, Workspace string
	// Registration, when set, registers the cluster with a ClusterRegistrationToken (or reuses
	// the credential an earlier registration kept downstream) instead of using Upstream,
	// ClusterName and Workspace.
	Registration *Registration
	// Register creates the Cluster with Labels when it does not exist.
	Register bool
	Labels   map[string]string
	// HeartbeatInterval is how often status.agent.lastSeen is written (default 15s).
	HeartbeatInterval time.Duration
	// DriftInterval is how often deployed releases are checked for drift (default 30s).
	DriftInterval time.Duration
	// Workers is how many BundleDeployments are reconciled at once (default DefaultWorkers).
	Workers int
	// ChartCacheDir keeps downloaded archives; default a new temporary folder.
	ChartCacheDir string
	// MetricsBindAddress serves Prometheus metrics; "0" turns the server off.
	MetricsBindAddress string
	// WaitStrategy is Helm's wait strategy when a BundleDeployment asks Helm to wait.
	WaitStrategy kube.WaitStrategy
	// Fetcher downloads chart archives.
	Fetcher ResolverFetcher
	// Limits bound downloaded archives.
	Limits chartarchive.Limits
	// Clock stamps heartbeats; default the real clock.
	Clock clock.WithTicker
	// Controller holds controller-runtime's defaults for the agent's controller. The zero value
	// suits one agent per process; a process that runs several agents (tests do) sets
	// SkipNameValidation, since controller names must otherwise be unique per process.
	Controller config.Controller
}

// Run registers (when asked), waits for the cluster namespace and runs the agent until ctx ends.
func Run(ctx context.Context, o Options) error {
	ctx, err := o.prepare(ctx)
	if err != nil {
		return err
	}
	s := scheme.New()
	direct, err := client.New(o.Upstream, client.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("creating the management cluster client: %w", err)
	}
	ns, err := ClusterNamespace(ctx, direct, o)
	if err != nil {
		return err
	}
	log := ctrl.LoggerFrom(ctx).WithValues("clusterNamespace", ns)
	ctx = ctrl.LoggerInto(ctx, log)
	log.Info("Starting agent")

	r, cleanup, err := o.reconciler(s, log)
	if err != nil {
		return err
	}
	defer cleanup()
	mgr, err := o.manager(s, log, ns)
	if err != nil {
		return err
	}
	r.Upstream = mgr.GetClient()
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	hb := &Heartbeat{Client: direct, Namespace: ns, Holder: o.ClusterName, Interval: o.HeartbeatInterval, Clock: o.Clock}
	if err := mgr.Add(hb); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// prepare registers (when asked), checks the options and fills in their defaults. The context
// it returns logs with the agent's Cluster.
func (o *Options) prepare(ctx context.Context) (context.Context, error) {
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("Cluster", klog.KRef(o.Workspace, o.ClusterName)))
	if o.Registration != nil {
		if err := o.register(ctx); err != nil {
			return ctx, err
		}
		ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("Cluster", klog.KRef(o.Workspace, o.ClusterName)))
	}
	if o.ClusterName == "" || o.Workspace == "" {
		return ctx, fmt.Errorf("the cluster name and workspace are required (--cluster-name, --workspace)")
	}
	if o.Fetcher.Resolver == nil {
		return ctx, fmt.Errorf("no chart fetcher configured")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 15 * time.Second
	}
	return ctx, nil
}

// reconciler is the BundleDeployment reconciler with its downstream client, Helm and chart
// cache (a temporary folder unless ChartCacheDir is set, removed by cleanup); its upstream client
// is the manager's.
func (o *Options) reconciler(s *runtime.Scheme, log logr.Logger) (r *Reconciler, cleanup func(), err error) {
	cleanup = func() {}
	downstream, err := client.New(o.Downstream, client.Options{Scheme: s})
	if err != nil {
		return nil, cleanup, fmt.Errorf("creating the downstream cluster client: %w", err)
	}
	helm, err := helmaction.New(o.Downstream, slog.New(logr.ToSlogHandler(log.WithName("helm").V(1))))
	if err != nil {
		return nil, cleanup, err
	}
	dir := o.ChartCacheDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "helmops-charts-"); err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	charts, err := chartarchive.NewCache(dir)
	if err != nil {
		return nil, cleanup, err
	}
	return &Reconciler{
		Downstream: downstream, Helm: helm, Fetcher: o.Fetcher, Cache: charts,
		Limits: o.Limits, WaitStrategy: o.WaitStrategy, DriftInterval: o.DriftInterval, Workers: o.Workers, Clock: o.Clock,
	}, cleanup, nil
}

// manager is the agent's manager on the management cluster, caching only the cluster namespace.
func (o *Options) manager(s *runtime.Scheme, log logr.Logger, ns string) (manager.Manager, error) {
	metricsAddr := o.MetricsBindAddress
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	mgr, err := ctrl.NewManager(o.Upstream, manager.Options{
		Scheme:                 s,
		Logger:                 log,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: "0",
		Controller:             o.Controller,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	return mgr, nil
}

// register swaps the token for the agent's own credential.
func (o *Options) register(ctx context.Context) error {
	downstream, err := client.New(o.Downstream, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("creating the downstream cluster client: %w", err)
	}
	cred, err := Register(ctx, downstream, *o.Registration)
	if err != nil {
		return err
	}
	cred.Upstream.QPS, cred.Upstream.Burst = o.Registration.QPS, o.Registration.Burst
	o.Upstream, o.ClusterName, o.Workspace = cred.Upstream, cred.ClusterName, cred.Workspace
	return nil
}

// ClusterNamespace creates the Cluster when asked and waits until the management cluster gave
// it a namespace (status.namespace), then returns that namespace.
func ClusterNamespace(ctx context.Context, c client.Client, o Options) (string, error) {
	log := ctrl.LoggerFrom(ctx)
	key := types.NamespacedName{Namespace: o.Workspace, Name: o.ClusterName}
	delay := 500 * time.Millisecond
	for {
		cl := &v1alpha1.Cluster{}
		err := c.Get(ctx, key, cl)
		switch {
		case apierrors.IsNotFound(err) && o.Register:
			log.Info("Registering cluster", "labels", o.Labels)
			cl = &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: o.ClusterName, Namespace: o.Workspace, Labels: o.Labels}}
			if err := c.Create(ctx, cl); err != nil && !apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("registering Cluster %s: %w", key, err)
			}
		case apierrors.IsNotFound(err):
			log.Info("Waiting for the Cluster to exist (start with --register to create it)")
		case err != nil:
			log.Error(err, "Reading the Cluster")
		case cl.Status.Namespace != "":
			return cl.Status.Namespace, nil
		default:
			log.Info("Waiting for the Cluster's namespace (status.namespace)")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// Heartbeat renews the agent's Lease (clusterns.AgentLease) in its cluster namespace at every
// interval: renewTime, and the agent's version in an annotation. The cluster controller reads it
// for the Cluster's Ready condition and status.agent; the agent writes nothing on its Cluster.
type Heartbeat struct {
	Client client.Client
	// Namespace is the cluster namespace.
	Namespace string
	// Holder is written as the Lease's holderIdentity (the Cluster's name).
	Holder   string
	Interval time.Duration
	Clock    clock.WithTicker
}

// NeedLeaderElection: every agent beats, there is no election.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

// Start beats until ctx ends.
func (h *Heartbeat) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx)
	t := h.Clock.NewTicker(h.Interval)
	defer t.Stop()
	for {
		if err := h.Beat(ctx); err != nil {
			log.Error(err, "Writing the heartbeat")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Beat renews the Lease once.
func (h *Heartbeat) Beat(ctx context.Context) error {
	lease := &coordinationv1.Lease{}
	key := types.NamespacedName{Namespace: h.Namespace, Name: clusterns.AgentLease}
	if err := h.Client.Get(ctx, key, lease); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("the heartbeat Lease %s does not exist yet; the management cluster's controller creates it with the cluster namespace", key)
		}
		return fmt.Errorf("reading the heartbeat Lease %s: %w", key, err)
	}
	now := metav1.NewMicroTime(h.Clock.Now().UTC())
	holder := h.Holder
	secs := int32(max(1, (3 * h.Interval).Seconds()))
	lease.Spec.HolderIdentity, lease.Spec.RenewTime, lease.Spec.LeaseDurationSeconds = &holder, &now, &secs
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[clusterns.AgentVersionAnnotation] = version.Get().Version
	if err := h.Client.Update(ctx, lease); err != nil {
		return fmt.Errorf("renewing the heartbeat Lease %s: %w", key, err)
	}
	return nil
}
