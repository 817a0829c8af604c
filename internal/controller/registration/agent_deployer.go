package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/go-logr/logr"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/helmaction"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/lifecycle"
)

const (
	// AgentDeploymentFinalizer holds a Cluster with spec.kubeConfigSecret until its agent was
	// uninstalled from the downstream cluster (bounded by uninstallGiveUp).
	AgentDeploymentFinalizer = "fleet.cattle.io/agent-deployment"
	// AgentReleaseName is the Helm release of a deployed agent.
	AgentReleaseName = "helmops-agent"
	// DefaultAgentNamespace is where a deployed agent runs when spec.agentNamespace is empty.
	DefaultAgentNamespace = "helmops-system"
	// agentUpstreamSecret is the downstream Secret holding the deployed agent's credential (the
	// format of --credential-secret).
	agentUpstreamSecret = "helmops-upstream"
	// uninstallGiveUp is how long a deleted Cluster waits for its downstream cluster to let the
	// agent be uninstalled before it lets go (the kubeconfig may be gone for good).
	uninstallGiveUp = 2 * time.Minute
	// retryUnreachable re-tries a deployment whose kubeconfig is missing.
	retryUnreachable = 30 * time.Second
)

// AgentDeployer installs and upgrades the agent of each Cluster with spec.kubeConfigSecret in
// its downstream cluster, with the Helm SDK and the agent chart, and a credential of the agent's
// own (the rights a registration grants). Raising spec.redeployAgentGeneration reinstalls it;
// deleting the Cluster uninstalls it.
type AgentDeployer struct {
	Client client.Client
	// Direct reads kubeconfig secrets and writes credentials without a cache.
	Direct   client.Client
	Tokens   kubernetes.Interface
	Server   Server
	Chart    *chart.Chart
	Image    AgentImage
	Recorder record.EventRecorder
	Clock    clock.PassiveClock
}

// AgentImage is the image deployed agents run.
type AgentImage struct{ Repository, Tag string }

// SetupWithManager watches Clusters that name a kubeconfig, or still hold the finalizer.
func (r *AgentDeployer) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("helmops-agent-deployer")
	}
	managed := predicate.NewPredicateFuncs(func(o client.Object) bool {
		c := o.(*v1alpha1.Cluster)
		return c.Spec.KubeConfigSecret != "" || controllerutil.ContainsFinalizer(c, AgentDeploymentFinalizer)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusteragent").
		For(&v1alpha1.Cluster{}, builder.WithPredicates(managed, predicate.Or(predicate.GenerationChangedPredicate{}, deleting()))).
		Complete(r)
}

func deleting() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return !o.GetDeletionTimestamp().IsZero() })
}

// Reconcile deploys or removes one Cluster's agent.
func (r *AgentDeployer) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &v1alpha1.Cluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() || c.Spec.KubeConfigSecret == "" {
		return r.remove(ctx, c)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, c, AgentDeploymentFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	downstream, err := r.downstream(ctx, c)
	if err != nil {
		var w *waiting
		if errors.As(err, &w) {
			r.Recorder.Event(c, corev1.EventTypeWarning, "AgentNotDeployed", w.msg)
			return ctrl.Result{RequeueAfter: retryUnreachable}, nil
		}
		return ctrl.Result{}, err
	}
	if err := r.deploy(ctx, c, downstream); err != nil {
		r.Recorder.Eventf(c, corev1.EventTypeWarning, "AgentNotDeployed", "Deploying the agent: %v", err)
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// waiting is a deployment that cannot start until someone fixes its input.
type waiting struct{ msg string }

func (w *waiting) Error() string { return w.msg }

// downstream reads the Cluster's kubeconfig. Only a Secret of the Cluster's own namespace is
// read: a workspace must not reach into another namespace's secrets through a Cluster.
func (r *AgentDeployer) downstream(ctx context.Context, c *v1alpha1.Cluster) (*rest.Config, error) {
	if ns := c.Spec.KubeConfigSecretNamespace; ns != "" && ns != c.Namespace {
		return nil, &waiting{fmt.Sprintf("spec.kubeConfigSecretNamespace %q: helmops only reads kubeconfig secrets from the Cluster's own namespace %q; move the secret there and clear the field", ns, c.Namespace)}
	}
	s := &corev1.Secret{}
	if err := r.Direct.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.KubeConfigSecret}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &waiting{fmt.Sprintf("secret %s/%s named by spec.kubeConfigSecret does not exist: create it with the downstream kubeconfig under key \"value\"", c.Namespace, c.Spec.KubeConfigSecret)}
		}
		return nil, fmt.Errorf("reading secret %s/%s named by spec.kubeConfigSecret: %w", c.Namespace, c.Spec.KubeConfigSecret, err)
	}
	raw := s.Data["value"]
	if len(raw) == 0 {
		raw = s.Data["kubeconfig"]
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil || len(raw) == 0 {
		return nil, &waiting{fmt.Sprintf("secret %s/%s named by spec.kubeConfigSecret holds no valid kubeconfig under key \"value\"", c.Namespace, c.Spec.KubeConfigSecret)}
	}
	return cfg, nil
}

func agentNamespace(c *v1alpha1.Cluster) string {
	if c.Spec.AgentNamespace != "" {
		return c.Spec.AgentNamespace
	}
	return DefaultAgentNamespace
}

// AgentCredentialSecret is the secret, in the Cluster's workspace, holding the credential the
// controller minted for the agent of a Cluster it hands one to (spec.kubeConfigSecret, the
// local cluster).
func AgentCredentialSecret(clusterName string) string { return clusterName + "-agent-credential" }

// agentCredential grants the Cluster's agent its ServiceAccount and keeps a kubeconfig for it in
// AgentCredentialSecret, in the format an agent reads with --credential-secret. It returns the
// secret's data and when to renew it.
func agentCredential(ctx context.Context, direct client.Client, tokens kubernetes.Interface, server Server, c *v1alpha1.Cluster, now time.Time) (map[string][]byte, time.Time, error) {
	sa := cluster.AgentServiceAccount(c.Name)
	if err := ensureAccount(ctx, direct, c, c.Namespace, sa, AgentWorkspaceRules(c.Name)); err != nil {
		return nil, time.Time{}, err
	}
	name := AgentCredentialSecret(c.Name)
	renew, err := ensureKubeconfigSecret(ctx, direct, tokens, server, c, kubeconfigSecret{
		namespace: c.Namespace, name: name, account: sa, lifetime: credentialLifetime, now: now,
		secretType: v1alpha1.RegistrationSecretType, extra: credentialNames(c),
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	cred := &corev1.Secret{}
	if err := direct.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, cred); err != nil {
		return nil, time.Time{}, fmt.Errorf("reading the agent credential %s/%s: %w", c.Namespace, name, err)
	}
	return cred.Data, renew, nil
}

// credentialNames are the keys besides the kubeconfig that tell an agent which Cluster it is.
func credentialNames(c *v1alpha1.Cluster) map[string]string {
	return map[string]string{
		v1alpha1.CredentialClusterNameKey:      c.Name,
		v1alpha1.CredentialWorkspaceKey:        c.Namespace,
		v1alpha1.CredentialClusterNamespaceKey: cluster.NamespaceName(c.Namespace, c.Name),
	}
}

// deliverCredential writes the agent's credential into the Secret key of the cluster c reaches
// (the downstream cluster, or the management cluster for the local agent), creating its
// namespace when missing.
func deliverCredential(ctx context.Context, c client.Client, key client.ObjectKey, data map[string][]byte) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the agent's credential: %w", key.Namespace, err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, s, func() error {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[v1alpha1.ManagedLabel] = "true"
		s.Data = map[string][]byte{}
		for _, k := range []string{v1alpha1.RegistrationKubeconfigKey, v1alpha1.CredentialClusterNameKey, v1alpha1.CredentialWorkspaceKey, v1alpha1.CredentialClusterNamespaceKey} {
			s.Data[k] = data[k]
		}
		return nil
	}); err != nil {
		return fmt.Errorf("writing the agent's credential into secret %s: %w", key, err)
	}
	return nil
}

// deploy grants the agent its credential, puts it downstream and installs or upgrades the chart.
func (r *AgentDeployer) deploy(ctx context.Context, c *v1alpha1.Cluster, cfg *rest.Config) error {
	ns := agentNamespace(c)
	if err := r.sendCredential(ctx, c, cfg, ns); err != nil {
		return err
	}
	redeploy := c.Status.AgentDeployedGeneration == nil || *c.Status.AgentDeployedGeneration != c.Spec.RedeployAgentGeneration
	if err := r.applyRelease(ctx, c, cfg, ns, redeploy); err != nil {
		return err
	}
	if !redeploy {
		return nil
	}
	patch := client.MergeFrom(c.DeepCopy())
	gen := c.Spec.RedeployAgentGeneration
	c.Status.AgentDeployedGeneration = &gen
	if err := r.Client.Status().Patch(ctx, c, patch); err != nil {
		return fmt.Errorf("recording the deployed agent generation: %w", err)
	}
	r.Recorder.Eventf(c, corev1.EventTypeNormal, "AgentDeployed", "Deployed the agent into namespace %s of the downstream cluster", ns)
	return nil
}

// sendCredential writes the agent's credential for the upstream cluster into namespace ns
// of the downstream cluster.
func (r *AgentDeployer) sendCredential(ctx context.Context, c *v1alpha1.Cluster, cfg *rest.Config, ns string) error {
	cred, _, err := agentCredential(ctx, r.Direct, r.Tokens, r.Server, c, r.Clock.Now())
	if err != nil {
		return err
	}
	down, err := client.New(cfg, client.Options{Scheme: r.Direct.Scheme()})
	if err != nil {
		return fmt.Errorf("reaching the downstream cluster: %w", err)
	}
	if err := deliverCredential(ctx, down, client.ObjectKey{Namespace: ns, Name: agentUpstreamSecret}, cred); err != nil {
		return fmt.Errorf("downstream: %w", err)
	}
	return nil
}

// applyRelease installs the agent's release downstream, reinstalls it when redeploy is asked
// for, and upgrades it when its values or chart version differ; otherwise it leaves it.
func (r *AgentDeployer) applyRelease(ctx context.Context, c *v1alpha1.Cluster, cfg *rest.Config, ns string, redeploy bool) error {
	log := ctrl.LoggerFrom(ctx).WithValues("Cluster", klog.KObj(c))
	hc, err := helmaction.New(cfg, slog.New(logr.ToSlogHandler(log.WithName("helm").V(1))))
	if err != nil {
		return err
	}
	values := r.agentValues(c)
	hist, err := hc.History(ctx, AgentReleaseName, ns)
	if err != nil {
		return fmt.Errorf("reading the agent release downstream: %w", err)
	}
	opts := helmaction.Options{Wait: kube.HookOnlyStrategy, Timeout: time.Minute, MaxHistory: 5}
	switch last := newest(hist); {
	case last == nil:
		log.Info("Installing the agent downstream", "namespace", ns)
		_, err = hc.Install(ctx, AgentReleaseName, ns, r.Chart, values, opts)
	case redeploy:
		// A redeploy is a reinstall: everything the chart made is created anew.
		log.Info("Reinstalling the agent downstream", "namespace", ns, "redeployAgentGeneration", c.Spec.RedeployAgentGeneration)
		if err = hc.Uninstall(ctx, AgentReleaseName, ns, time.Minute); err == nil {
			_, err = hc.Install(ctx, AgentReleaseName, ns, r.Chart, values, opts)
		}
	case !reflect.DeepEqual(last.Config, values) || last.Chart.Metadata.Version != r.Chart.Metadata.Version:
		log.Info("Upgrading the agent downstream", "namespace", ns)
		_, err = hc.Upgrade(ctx, AgentReleaseName, ns, r.Chart, values, opts)
	}
	if err != nil {
		return fmt.Errorf("installing chart helmops-agent downstream: %w", err)
	}
	return nil
}

// agentValues are the agent chart's values for Cluster c: it does not register, it reads its
// upstream kubeconfig from the delivered secret.
func (r *AgentDeployer) agentValues(c *v1alpha1.Cluster) map[string]any {
	return map[string]any{
		"clusterName": c.Name, "workspace": c.Namespace, "register": false,
		"image":    map[string]any{"repository": r.Image.Repository, "tag": r.Image.Tag},
		"upstream": map[string]any{"kubeconfigSecret": agentUpstreamSecret, "key": v1alpha1.RegistrationKubeconfigKey},
	}
}

// remove uninstalls the agent of a deleted Cluster (or one that no longer names a kubeconfig)
// and lets the Cluster go; when the downstream cluster cannot be reached for uninstallGiveUp, it
// lets go anyway and says so.
func (r *AgentDeployer) remove(ctx context.Context, c *v1alpha1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, AgentDeploymentFinalizer) {
		return ctrl.Result{}, nil
	}
	if c.DeletionTimestamp.IsZero() {
		// spec.kubeConfigSecret was cleared: the agent stays, now managed by hand.
		return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Client, c, AgentDeploymentFinalizer)
	}
	err := r.uninstall(ctx, c)
	if err != nil {
		if r.Clock.Since(c.DeletionTimestamp.Time) < uninstallGiveUp {
			r.Recorder.Eventf(c, corev1.EventTypeWarning, "AgentNotRemoved", "Uninstalling the agent downstream (retrying): %v", err)
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		r.Recorder.Eventf(c, corev1.EventTypeWarning, "AgentLeftBehind", "Gave up uninstalling the agent downstream after %s: %v", uninstallGiveUp, err)
	}
	return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Client, c, AgentDeploymentFinalizer)
}

func (r *AgentDeployer) uninstall(ctx context.Context, c *v1alpha1.Cluster) error {
	cfg, err := r.downstream(ctx, c)
	if err != nil {
		return err
	}
	hc, err := helmaction.New(cfg, nil)
	if err != nil {
		return err
	}
	ns := agentNamespace(c)
	if err := hc.Uninstall(ctx, AgentReleaseName, ns, time.Minute); err != nil {
		return err
	}
	down, err := client.New(cfg, client.Options{Scheme: r.Direct.Scheme()})
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: agentUpstreamSecret}}
	if err := down.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the agent's credential downstream: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("Uninstalled the agent downstream", "Cluster", klog.KObj(c))
	return nil
}

func newest(hist []*release.Release) *release.Release {
	var out *release.Release
	for _, r := range hist {
		if out == nil || r.Version > out.Version {
			out = r
		}
	}
	return out
}
