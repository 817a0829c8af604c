// Package agent is the helmops agent: it watches the BundleDeployments of one cluster namespace
// on the management cluster, downloads each chart itself, installs or upgrades it with the Helm
// SDK in the downstream cluster, reports status back, corrects drift and writes a heartbeat.
//
// The decision of what to do with a release is in package releasestate (pure); the Helm calls
// are in package helmaction (no decisions); this package is the glue.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/chartarchive"
	"github.com/helmops/helmops/internal/agent/helmaction"
	"github.com/helmops/helmops/internal/agent/releasestate"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/redact"
)

// DriftCorrections counts drift corrections by result ("success" or "failure").
var DriftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "helmops_agent_drift_corrections_total",
	Help: "Drift corrections the agent ran, by result.",
}, []string{"result"})

func init() {
	ctrlmetrics.Registry.MustRegister(DriftCorrections)
}

const secretNameIndex = "spec.helmChartOptions.helmOpSecretName"

// DefaultUninstallTimeout is how long a deleted BundleDeployment whose ServiceAccount is gone
// waits before it leaves its release in place, when UninstallTimeout is 0.
const DefaultUninstallTimeout = 10 * time.Minute

// saRetry re-checks a missing ServiceAccount (downstream ServiceAccounts are not watched).
const saRetry = 10 * time.Second

// Reconciler deploys the BundleDeployments of one cluster namespace.
type Reconciler struct {
	// Upstream reads BundleDeployments and copied Secrets and patches BundleDeployments.
	Upstream client.Client
	// Downstream reads valuesFrom sources and release resources and manages namespaces.
	Downstream client.Client
	// Helm runs the Helm actions in the downstream cluster.
	Helm *helmaction.Client
	// Fetcher downloads chart archives.
	Fetcher ResolverFetcher
	// Cache keeps downloaded archives.
	Cache *chartarchive.Cache
	// Limits bound downloaded archives.
	Limits chartarchive.Limits
	// WaitStrategy is used when Helm must wait (timeoutSeconds, waitForJobs or atomic set);
	// otherwise Helm only waits for hooks. Default kube.StatusWatcherStrategy.
	WaitStrategy kube.WaitStrategy
	// DriftInterval is how often a deployed release's resources are checked. Default 30s.
	DriftInterval time.Duration
	// Workers is how many BundleDeployments are reconciled at once; default DefaultWorkers.
	Workers int
	// Clock bounds the wait of a deletion that cannot succeed; default the real clock.
	Clock clock.PassiveClock
	// UninstallTimeout is how long a deleted BundleDeployment whose ServiceAccount is gone waits
	// for it before leaving the release in place; default DefaultUninstallTimeout.
	UninstallTimeout time.Duration
	// Recorder records events on BundleDeployments in the cluster namespace (a chart refused for
	// its content); SetupWithManager takes the manager's when nil.
	Recorder record.EventRecorder

	inflight   sync.Map // "namespace/name" of releases with an operation running
	asAccounts sync.Map // "namespace/name" of a ServiceAccount -> *helmaction.Client
	asClients  sync.Map // "namespace/name" of a ServiceAccount -> client.Client
}

// helmFor returns the Helm client to deploy a BundleDeployment with: the agent's own, or one
// impersonating the downstream ServiceAccount named by spec.options.serviceAccount in the release
// namespace.
func (r *Reconciler) helmFor(bd *v1alpha1.BundleDeployment, namespace string) *helmaction.Client {
	sa := bd.Spec.Options.ServiceAccount
	if sa == "" {
		return r.Helm
	}
	key := namespace + "/" + sa
	if c, ok := r.asAccounts.Load(key); ok {
		return c.(*helmaction.Client)
	}
	c, _ := r.asAccounts.LoadOrStore(key, r.Helm.Impersonating("system:serviceaccount:"+namespace+":"+sa))
	return c.(*helmaction.Client)
}

// SetupWithManager registers the reconciler. The manager's cache must be restricted to the
// cluster namespace.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.DriftInterval <= 0 {
		r.DriftInterval = 30 * time.Second
	}
	if r.WaitStrategy == "" {
		r.WaitStrategy = kube.StatusWatcherStrategy
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.UninstallTimeout <= 0 {
		r.UninstallTimeout = DefaultUninstallTimeout
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("helmops-agent")
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.BundleDeployment{}, secretNameIndex, func(o client.Object) []string {
		bd := o.(*v1alpha1.BundleDeployment)
		if bd.Spec.HelmChartOptions == nil || bd.Spec.HelmChartOptions.SecretName == "" {
			return nil
		}
		return []string{bd.Spec.HelmChartOptions.SecretName}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("agent-bundledeployment").
		For(&v1alpha1.BundleDeployment{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.bundleDeploymentsForSecret)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return bundleDeploymentsOfCopy(o)
		})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: cmp.Or(r.Workers, DefaultWorkers),
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
}

// DefaultWorkers is how many BundleDeployments an agent reconciles at once by default.
const DefaultWorkers = 4

// deletionStarted admits the update that sets the deletion timestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func ptrTo[T any](v T) *T { return &v }

func (r *Reconciler) bundleDeploymentsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.BundleDeploymentList
	if err := r.Upstream.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretNameIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing BundleDeployments for a secret", "Secret", klog.KObj(o))
		return nil
	}
	out := bundleDeploymentsOfCopy(o)
	for _, bd := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bd)})
	}
	return out
}

// ReleaseName is the Helm release name of a BundleDeployment: helm.releaseName, else the
// HelmOp's name (label fleet.cattle.io/fleet-helm-name), else the BundleDeployment's name.
func ReleaseName(bd *v1alpha1.BundleDeployment) string {
	if n := bd.Spec.Options.HelmOrEmpty().ReleaseName; n != "" {
		return n
	}
	if n := bd.Labels[v1alpha1.HelmOpLabel]; n != "" {
		return n
	}
	return bd.Name
}

// ReleaseNamespace is namespace, else defaultNamespace, else "default".
func ReleaseNamespace(bd *v1alpha1.BundleDeployment) string {
	switch {
	case bd.Spec.Options.Namespace != "":
		return bd.Spec.Options.Namespace
	case bd.Spec.Options.DefaultNamespace != "":
		return bd.Spec.Options.DefaultNamespace
	}
	return "default"
}

// scope is one reconcile of one BundleDeployment.
type scope struct {
	bd       *v1alpha1.BundleDeployment
	name, ns string // the release
	// foreign says why the release is refused when another owner installed it, nil otherwise.
	foreign error
	facts
}

// Reconcile deploys one BundleDeployment.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	bd := &v1alpha1.BundleDeployment{}
	if err := r.Upstream.Get(ctx, req.NamespacedName, bd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !bd.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, bd)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Upstream, bd, v1alpha1.BundleDeploymentFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	patch := lifecycle.Snapshot(r.Upstream, bd)
	s := &scope{bd: bd, name: ReleaseName(bd), ns: ReleaseNamespace(bd)}
	defer func() {
		retErr = patch.Status(ctx, bd, retErr, func(err error) { setStatus(bd, &s.facts, err) })
	}()
	res, err := lifecycle.Run(ctx, s,
		lifecycle.Step[*scope]{Name: "move", Run: r.moveRelease},
		lifecycle.Step[*scope]{Name: "downstream", Run: r.copyDownstream},
		lifecycle.Step[*scope]{Name: "release", Run: r.converge},
	)
	// Readiness and drift checks wait behind the BundleDeployments that changed.
	return lifecycle.Periodic(res), err
}

// moveRelease uninstalls the release recorded in the status when the spec moved it to another
// name or namespace (unless paused).
func (r *Reconciler) moveRelease(ctx context.Context, s *scope) (ctrl.Result, error) {
	bd, name, ns := s.bd, s.name, s.ns
	old := bd.Status.Release
	if old == nil || old.Name == "" || (old.Name == name && old.Namespace == ns) || bd.Spec.Paused {
		return ctrl.Result{}, nil
	}
	opts := bd.Spec.Options
	hc := r.helmFor(bd, old.Namespace)
	hist, err := hc.History(ctx, old.Name, old.Namespace)
	if err != nil {
		s.deployErr, s.deployReason = err, v1alpha1.ReasonUpgradeFailed
		return ctrl.Result{}, err
	}
	if last := newest(hist); last != nil && !owns(bd, last) {
		ctrl.LoggerFrom(ctx).Info("Leaving the release it moves from in place: another BundleDeployment installed it", "release", klog.KRef(old.Namespace, old.Name))
	} else if !opts.KeepResources && last != nil {
		ctrl.LoggerFrom(ctx).Info("Removing the release before it moves", "release", klog.KRef(old.Namespace, old.Name), "to", klog.KRef(ns, name))
		if err := hc.Uninstall(ctx, old.Name, old.Namespace, helmTimeout(opts.HelmOrEmpty())); err != nil {
			s.deployErr, s.deployReason = fmt.Errorf("uninstalling release %s/%s before it moves to %s/%s: %w", old.Namespace, old.Name, ns, name, err), v1alpha1.ReasonUpgradeFailed
			return ctrl.Result{}, s.deployErr
		}
		if old.Namespace != ns {
			dc, err := r.downstreamFor(bd, old.Namespace)
			if err != nil {
				return ctrl.Result{}, err
			}
			if err := r.pruneCopies(ctx, dc, bd, old.Namespace, nil); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	bd.Status.Release = nil
	bd.Status.AppliedDeploymentID = ""
	return ctrl.Result{}, nil
}

// converge observes the release and acts on the release state machine's decision until it is
// in sync. Four passes at most: e.g. recover a pending revision, upgrade, then observe the
// result. Each action runs at most once per reconcile, so drift that a correction cannot undo (a
// field another controller keeps rewriting) costs one revision per interval, not a loop.
func (r *Reconciler) converge(ctx context.Context, s *scope) (ctrl.Result, error) {
	hc := r.helmFor(s.bd, s.ns)
	done := map[releasestate.Action]bool{}
	for range 4 {
		res, finished, err := r.pass(ctx, s, hc, done)
		if err != nil || finished {
			return res, err
		}
	}
	return ctrl.Result{RequeueAfter: r.DriftInterval}, nil
}

// pass observes the release once and runs the action decided for it; finished is true when
// nothing more is to be done in this reconcile.
func (r *Reconciler) pass(ctx context.Context, s *scope, hc *helmaction.Client, done map[releasestate.Action]bool) (_ ctrl.Result, finished bool, _ error) {
	bd := s.bd
	last, d, err := r.observe(ctx, s, hc)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	inSync := d.Phase == releasestate.InSync || d.Phase == releasestate.Drifted
	switch {
	case d.Action == releasestate.Refuse:
		// Nothing is changed; the BundleDeployment tries again later, in case the release goes.
		s.deployErr, s.deployReason = s.foreign, v1alpha1.ReasonReleaseConflict
		return ctrl.Result{RequeueAfter: r.DriftInterval}, true, nil
	case bd.Spec.Paused:
		s.paused, s.deployed = true, inSync
		return ctrl.Result{RequeueAfter: r.DriftInterval}, true, nil
	case done[d.Action]:
		s.deployed = inSync
		return ctrl.Result{RequeueAfter: r.DriftInterval}, true, nil
	}
	done[d.Action] = true
	switch d.Action {
	case releasestate.None:
		s.deployed = true
		if err := r.ensureNamespaceMetadata(ctx, bd, s.ns); err != nil {
			s.deployErr, s.deployReason = err, v1alpha1.ReasonInstallFailed
			return ctrl.Result{}, true, err
		}
		return ctrl.Result{RequeueAfter: r.monitorInterval(&s.facts)}, true, nil
	case releasestate.Wait:
		s.waiting = d.Reason
		return ctrl.Result{RequeueAfter: 5 * time.Second}, true, nil
	}
	return ctrl.Result{}, false, r.act(ctx, s, hc, d, last)
}

// observe reads the release's history, records the newest revision and its resources' state, and
// asks the release state machine what to do.
func (r *Reconciler) observe(ctx context.Context, s *scope, hc *helmaction.Client) (*release.Release, releasestate.Decision, error) {
	bd, opts := s.bd, s.bd.Spec.Options
	hist, err := hc.History(ctx, s.name, s.ns)
	if err != nil {
		s.deployErr, s.deployReason = err, v1alpha1.ReasonInstallFailed
		return nil, releasestate.Decision{}, err
	}
	last := newest(hist)
	s.releaseStatus, s.foreign = "", nil
	s.deployedBefore = deployedBefore(hist)
	switch {
	case last != nil && !owns(bd, last):
		// Someone else's release: neither recorded nor monitored as this BundleDeployment's.
		s.releaseStatus = last.Info.Status.String()
		s.foreign = r.foreignRelease(ctx, bd, last)
		bd.Status.Release, bd.Status.Resources = nil, nil
	case last != nil:
		s.releaseStatus = last.Info.Status.String()
		r.recordRelease(bd, last)
	default:
		bd.Status.Release, bd.Status.Resources = nil, nil
	}
	drifted := false
	if last != nil && s.foreign == nil && last.Info.Status == rcommon.StatusDeployed {
		drifted = r.monitor(ctx, bd, last, &s.facts)
	}
	return last, releasestate.Decide(releasestate.Facts{
		Foreign:           s.foreign != nil,
		LastStatus:        s.releaseStatus,
		OperationInFlight: r.isInFlight(s.ns, s.name),
		DesiredID:         bd.Spec.DeploymentID,
		AppliedID:         bd.Status.AppliedDeploymentID,
		Drifted:           drifted,
		CorrectDrift:      opts.CorrectDrift != nil && opts.CorrectDrift.Enabled,
	}), nil
}

// act runs one Helm action decided by the release state machine.
func (r *Reconciler) act(ctx context.Context, s *scope, hc *helmaction.Client, d releasestate.Decision, last *release.Release) error {
	log := ctrl.LoggerFrom(ctx)
	bd, name, ns := s.bd, s.name, s.ns
	switch d.Action {
	case releasestate.Recover:
		log.Info("Marking an interrupted release operation failed", "release", klog.KRef(ns, name), "revision", last.Version, "status", s.releaseStatus)
		if err := hc.SetStatus(ctx, last, rcommon.StatusFailed, "interrupted ("+s.releaseStatus+"); marked failed by the helmops agent"); err != nil {
			return fmt.Errorf("recovering release %s/%s from %s: %w", ns, name, s.releaseStatus, err)
		}
	case releasestate.Install, releasestate.Upgrade:
		log.Info("Deploying chart", "action", d.Action, "reason", d.Reason, "release", klog.KRef(ns, name), "version", bd.Spec.Options.HelmOrEmpty().Version)
		if err := r.deploy(ctx, hc, bd, &s.facts, d.Action, name, ns); err != nil {
			return err
		}
		bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
	case releasestate.CorrectDrift:
		log.Info("Correcting drift", "release", klog.KRef(ns, name), "modified", deploystate.ModifiedMessage(s.modified))
		return r.correctDrift(ctx, hc, bd, &s.facts, last)
	default:
		return fmt.Errorf("unexpected action %s for release %s/%s", d.Action, ns, name)
	}
	return nil
}

// ensureNamespaceMetadata adds namespaceLabels and namespaceAnnotations to the release namespace;
// labels and annotations it already has and that are not named stay.
func (r *Reconciler) ensureNamespaceMetadata(ctx context.Context, bd *v1alpha1.BundleDeployment, ns string) error {
	opts := bd.Spec.Options
	if len(opts.NamespaceLabels) == 0 && len(opts.NamespaceAnnotations) == 0 {
		return nil
	}
	n := &corev1.Namespace{}
	if err := r.Downstream.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		return fmt.Errorf("reading release namespace %s to set namespaceLabels and namespaceAnnotations: %w", ns, err)
	}
	before := n.DeepCopy()
	n.Labels = withEntries(n.Labels, opts.NamespaceLabels)
	n.Annotations = withEntries(n.Annotations, opts.NamespaceAnnotations)
	if equality.Semantic.DeepEqual(before.ObjectMeta, n.ObjectMeta) {
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Setting labels and annotations of the release namespace", "namespace", ns)
	if err := r.Downstream.Patch(ctx, n, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("setting namespaceLabels and namespaceAnnotations on release namespace %s: %w", ns, err)
	}
	return nil
}

func withEntries(m, add map[string]string) map[string]string {
	if len(add) == 0 {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range add {
		m[k] = v
	}
	return m
}

// deployedBefore tells whether any revision of hist was ever deployed: until then a retried
// install, which Helm runs as an upgrade, is still an install for the user.
func deployedBefore(hist []*release.Release) bool {
	for _, rel := range hist {
		if st := rel.Info.Status; st == rcommon.StatusDeployed || st == rcommon.StatusSuperseded {
			return true
		}
	}
	return false
}

func newest(hist []*release.Release) *release.Release {
	if len(hist) == 0 {
		return nil
	}
	return hist[len(hist)-1]
}

func (r *Reconciler) recordRelease(bd *v1alpha1.BundleDeployment, rel *release.Release) {
	info := &v1alpha1.ReleaseInfo{Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Status: rel.Info.Status.String()}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		info.ChartVersion = rel.Chart.Metadata.Version
	}
	bd.Status.Release = info
}

// monitor reads the release's resources, records readiness and drift, and reports whether
// anything drifted.
func (r *Reconciler) monitor(ctx context.Context, bd *v1alpha1.BundleDeployment, rel *release.Release, f *facts) bool {
	objs, err := manifestObjects(rel.Manifest, rel.Namespace, r.Helm.RESTMapper())
	if err != nil {
		f.monitored, f.monitorErr = false, err
		return false
	}
	o, err := observe(ctx, r.Downstream, objs, bd.Spec.Options)
	bd.Status.Resources = o.resources
	if err != nil {
		f.monitored, f.monitorErr = false, err
		return false
	}
	f.monitored, f.monitorErr = true, nil
	f.nonReady, f.modified = o.nonReady, o.modified
	return len(o.modified) > 0
}

func (r *Reconciler) isInFlight(ns, name string) bool {
	_, ok := r.inflight.Load(ns + "/" + name)
	return ok
}

func helmTimeout(h v1alpha1.HelmOptions) time.Duration {
	if h.TimeoutSeconds > 0 {
		return time.Duration(h.TimeoutSeconds) * time.Second
	}
	return v1alpha1.DefaultTimeout
}

func (r *Reconciler) helmOptions(bd *v1alpha1.BundleDeployment) helmaction.Options {
	h := bd.Spec.Options.HelmOrEmpty()
	o := helmaction.Options{
		Timeout:              helmTimeout(h),
		Wait:                 kube.HookOnlyStrategy,
		WaitForJobs:          h.WaitForJobs,
		Atomic:               h.Atomic,
		Force:                h.Force,
		TakeOwnership:        h.TakeOwnership,
		MaxHistory:           h.MaxHistory,
		SkipSchemaValidation: h.SkipSchemaValidation,
		EnableDNS:            !h.DisableDNS,
		KeepCRDs:             !bd.Spec.Options.DeleteCRDResources,
		Description:          "deploymentID " + bd.Spec.DeploymentID,
	}
	if h.TimeoutSeconds > 0 || h.WaitForJobs || h.Atomic {
		o.Wait = r.WaitStrategy
	}
	if o.MaxHistory <= 0 {
		o.MaxHistory = v1alpha1.DefaultMaxHistory
	}
	// Charts arrive packaged with their dependencies; updating them would reach repositories
	// the BundleDeployment never named, so dependencies are never updated here
	// (disableDependencyUpdate is therefore always honoured).
	return o
}

// deploy downloads the chart, computes the values and installs or upgrades the release.
func (r *Reconciler) deploy(ctx context.Context, hc *helmaction.Client, bd *v1alpha1.BundleDeployment, f *facts, action releasestate.Action, name, ns string) error {
	h := bd.Spec.Options.HelmOrEmpty()
	// A retry of an install that never succeeded is an upgrade for Helm, an install for the user.
	reason := v1alpha1.ReasonUpgradeFailed
	if action == releasestate.Install || !f.deployedBefore {
		reason = v1alpha1.ReasonInstallFailed
	}
	ch, err := r.chart(ctx, bd)
	if err != nil {
		f.downloadErr = err
		r.recordRefusal(bd, err)
		var ie *chartarchive.InvalidArchiveError
		if errors.As(err, &ie) {
			return reconcile.TerminalError(err)
		}
		return err
	}
	values, err := releaseValues(ctx, r.Downstream, h, ns)
	if err != nil {
		f.deployErr, f.deployReason = err, reason
		return err
	}
	if err := r.createReleaseNamespace(ctx, bd, ns); err != nil {
		f.deployErr, f.deployReason = err, reason
		return err
	}
	markOwner(ch, bd)
	if err := r.runHelm(ctx, hc, bd, action, ch, values, name, ns); err != nil {
		f.deployErr, f.deployReason = fmt.Errorf("helm %s of release %s/%s (chart %s %s): %w", actionVerb(action), ns, name, ch.Metadata.Name, ch.Metadata.Version, err), reason
		return f.deployErr
	}
	ctrl.LoggerFrom(ctx).Info("Deployed chart", "release", klog.KRef(ns, name), "chart", ch.Metadata.Name, "version", ch.Metadata.Version)
	return nil
}

// runHelm installs or upgrades the release, marked in flight meanwhile; a failure says what is
// not ready and why (explainFailure).
func (r *Reconciler) runHelm(ctx context.Context, hc *helmaction.Client, bd *v1alpha1.BundleDeployment, action releasestate.Action, ch *chart.Chart, values map[string]any, name, ns string) error {
	o := r.helmOptions(bd)
	key := ns + "/" + name
	r.inflight.Store(key, struct{}{})
	defer r.inflight.Delete(key)
	var rel *release.Release
	var err error
	if action == releasestate.Install {
		rel, err = hc.Install(ctx, name, ns, ch, values, o)
	} else {
		rel, err = hc.Upgrade(ctx, name, ns, ch, values, o)
	}
	if err != nil {
		return r.explainFailure(ctx, rel, bd.Spec.Options.HelmOrEmpty(), o.Timeout, err)
	}
	return nil
}

// createReleaseNamespace creates the release namespace unless the options say not to.
func (r *Reconciler) createReleaseNamespace(ctx context.Context, bd *v1alpha1.BundleDeployment, ns string) error {
	if !bd.Spec.Options.CreatesNamespace() {
		return nil
	}
	err := r.Downstream.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s in the downstream cluster: %w", ns, err)
	}
	return nil
}

func actionVerb(a releasestate.Action) string {
	if a == releasestate.Install {
		return "install"
	}
	return "upgrade"
}

// correctDrift re-applies the current revision's chart and values, taking back fields another
// manager changed (and with force when asked).
func (r *Reconciler) correctDrift(ctx context.Context, hc *helmaction.Client, bd *v1alpha1.BundleDeployment, f *facts, last *release.Release) error {
	cd := bd.Spec.Options.CorrectDrift
	o := r.helmOptions(bd)
	o.Force = cd.Force
	o.ForceConflicts = true
	o.Description = "drift correction of revision " + fmt.Sprint(last.Version)
	key := last.Namespace + "/" + last.Name
	markOwner(last.Chart, bd) // an adopted release gets its marks with its first correction
	r.inflight.Store(key, struct{}{})
	_, err := hc.Upgrade(ctx, last.Name, last.Namespace, last.Chart, last.Config, o)
	r.inflight.Delete(key)
	if err != nil {
		DriftCorrections.WithLabelValues("failure").Inc()
		if !cd.KeepFailHistory {
			if hist, herr := hc.History(ctx, last.Name, last.Namespace); herr == nil {
				for _, rel := range hist {
					if rel.Version > last.Version && rel.Info.Status == rcommon.StatusFailed {
						_ = hc.DeleteRevision(ctx, rel.Name, rel.Namespace, rel.Version)
					}
				}
			}
		}
		f.deployErr, f.deployReason = fmt.Errorf("correcting drift of release %s/%s: %w", last.Namespace, last.Name, err), v1alpha1.ReasonUpgradeFailed
		return f.deployErr
	}
	DriftCorrections.WithLabelValues("success").Inc()
	return nil
}

// reconcileDelete uninstalls the release (unless keepResources), deletes the namespace when
// asked, then lets the BundleDeployment go.
func (r *Reconciler) reconcileDelete(ctx context.Context, bd *v1alpha1.BundleDeployment) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(bd, v1alpha1.BundleDeploymentFinalizer) {
		return ctrl.Result{}, nil
	}
	name, ns := ReleaseName(bd), ReleaseNamespace(bd)
	if rel := bd.Status.Release; rel != nil && rel.Name != "" {
		name, ns = rel.Name, rel.Namespace
	}
	wait, err := r.removeRelease(ctx, bd, name, ns)
	switch {
	case err != nil:
		return r.uninstallBlocked(ctx, bd, ns, err)
	case wait:
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if !bd.Spec.Options.KeepResources {
		if err := r.removeCopies(ctx, bd, ns); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.deleteReleaseNamespace(ctx, bd, ns); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Upstream, bd, v1alpha1.BundleDeploymentFinalizer)
}

// removeRelease uninstalls the release, or with keepResources forgets its records; wait is true
// while an operation this process started still runs.
func (r *Reconciler) removeRelease(ctx context.Context, bd *v1alpha1.BundleDeployment, name, ns string) (wait bool, _ error) {
	log := ctrl.LoggerFrom(ctx)
	opts := bd.Spec.Options
	hc := r.helmFor(bd, ns)
	hist, err := hc.History(ctx, name, ns)
	if err != nil {
		return false, fmt.Errorf("reading the history of release %s/%s of BundleDeployment %s: %w", ns, name, klog.KObj(bd), err)
	}
	status, foreign := "", false
	if last := newest(hist); last != nil {
		status, foreign = last.Info.Status.String(), !owns(bd, last)
	}
	d := releasestate.Decide(releasestate.Facts{Deleting: true, LastStatus: status, Foreign: foreign, OperationInFlight: r.isInFlight(ns, name), KeepResources: opts.KeepResources})
	switch d.Action {
	case releasestate.Finalize:
		if foreign {
			log.Info("Leaving the release in place: this BundleDeployment did not install it", "release", klog.KRef(ns, name))
		}
	case releasestate.Wait:
		return true, nil
	case releasestate.Uninstall:
		log.Info("Uninstalling release", "release", klog.KRef(ns, name))
		if err := hc.Uninstall(ctx, name, ns, helmTimeout(opts.HelmOrEmpty())); err != nil {
			return false, fmt.Errorf("uninstalling release %s/%s of BundleDeployment %s: %w", ns, name, klog.KObj(bd), err)
		}
	case releasestate.Forget:
		log.Info("Removing the release records, keeping its resources", "release", klog.KRef(ns, name))
		for _, rel := range hist {
			if err := hc.DeleteRevision(ctx, rel.Name, rel.Namespace, rel.Version); err != nil {
				return false, fmt.Errorf("removing revision %d of release %s/%s: %w", rel.Version, ns, name, err)
			}
		}
	}
	return false, nil
}

// uninstallBlocked handles a release that could not be removed. When the BundleDeployment
// deploys as a ServiceAccount that no longer exists, nothing will ever succeed: the Ready
// condition says so and, once the BundleDeployment has been deleting for UninstallTimeout, the
// release is left in place and the BundleDeployment lets go. Any other error is retried.
func (r *Reconciler) uninstallBlocked(ctx context.Context, bd *v1alpha1.BundleDeployment, ns string, cause error) (ctrl.Result, error) {
	sa := bd.Spec.Options.ServiceAccount
	if sa == "" {
		return ctrl.Result{}, cause
	}
	err := r.Downstream.Get(ctx, client.ObjectKey{Namespace: ns, Name: sa}, &corev1.ServiceAccount{})
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, cause // the account exists (or cannot be read): retry
	}
	waited := r.Clock.Since(bd.DeletionTimestamp.Time)
	if waited >= r.UninstallTimeout {
		ctrl.LoggerFrom(ctx).Info("Leaving the release in place: its ServiceAccount is gone",
			"BundleDeployment", klog.KObj(bd), "serviceAccount", klog.KRef(ns, sa), "waited", waited.Round(time.Second), "error", cause.Error())
		return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Upstream, bd, v1alpha1.BundleDeploymentFinalizer)
	}
	patch := lifecycle.Snapshot(r.Upstream, bd)
	setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonDeleting, fmt.Sprintf(
		"cannot uninstall: ServiceAccount %s/%s named by spec.options.serviceAccount does not exist; create it again, or the release is left in place %s after the deletion",
		ns, sa, r.UninstallTimeout))
	return ctrl.Result{RequeueAfter: min(r.UninstallTimeout-waited, saRetry)}, patch.Status(ctx, bd, nil, func(error) {})
}

// deleteReleaseNamespace deletes the release namespace when deleteNamespace asks for it.
func (r *Reconciler) deleteReleaseNamespace(ctx context.Context, bd *v1alpha1.BundleDeployment, ns string) error {
	opts := bd.Spec.Options
	if !opts.DeleteNamespace || opts.KeepResources || protectedNamespace(ns) {
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting the release namespace", "namespace", ns)
	err := r.Downstream.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s (deleteNamespace) of BundleDeployment %s: %w", ns, klog.KObj(bd), err)
	}
	return nil
}

func protectedNamespace(ns string) bool {
	switch ns {
	case "default", "kube-system", "kube-public", "kube-node-lease":
		return true
	}
	return false
}

// chart returns the chart of a BundleDeployment, from the cache or downloaded.
func (r *Reconciler) chart(ctx context.Context, bd *v1alpha1.BundleDeployment) (*chart.Chart, error) {
	h := bd.Spec.Options.HelmOrEmpty()
	req, err := r.chartRequest(ctx, bd)
	if err != nil {
		return nil, err
	}
	limits := r.Limits.Defaulted()
	key := cacheKey(req)
	data, ok := []byte(nil), false
	if r.Cache != nil {
		data, ok = r.Cache.Get(key)
	}
	if !ok {
		if data, err = r.download(ctx, h, req, limits); err != nil {
			return nil, err
		}
	}
	ch, err := chartarchive.Load(data, limits)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chartName(h), err)
	}
	if !ok && r.Cache != nil {
		if err := r.Cache.Put(key, data); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Caching the chart archive")
		}
	}
	return ch, nil
}

// chartRequest is what to download for a BundleDeployment, with the copied repository secret.
func (r *Reconciler) chartRequest(ctx context.Context, bd *v1alpha1.BundleDeployment) (ChartRequest, error) {
	h := bd.Spec.Options.HelmOrEmpty()
	req := ChartRequest{Repo: h.Repo, Chart: h.Chart, Version: h.Version}
	o := bd.Spec.HelmChartOptions
	if o == nil {
		return req, nil
	}
	req.InsecureSkipTLSVerify, req.CABundle, req.Digest = o.InsecureSkipTLSVerify, o.CABundle, o.ChartDigest
	if o.SecretName == "" {
		return req, nil
	}
	s := &corev1.Secret{}
	if err := r.Upstream.Get(ctx, client.ObjectKey{Namespace: bd.Namespace, Name: o.SecretName}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return req, fmt.Errorf("secret %s/%s named by spec.helmChartOptions.helmOpSecretName does not exist yet; the controller copies it from the HelmOp's helmSecretName", bd.Namespace, o.SecretName)
		}
		return req, fmt.Errorf("reading secret %s/%s named by spec.helmChartOptions.helmOpSecretName: %w", bd.Namespace, o.SecretName, err)
	}
	req.Secret = s
	return req, nil
}

// download fetches the archive of req and refuses one whose digest is not the pinned one.
func (r *Reconciler) download(ctx context.Context, h v1alpha1.HelmOptions, req ChartRequest, limits chartarchive.Limits) ([]byte, error) {
	ctrl.LoggerFrom(ctx).Info("Downloading chart", "repo", redact.URL(h.Repo), "chart", redact.URL(h.Chart), "version", h.Version)
	data, got, err := r.Fetcher.Fetch(ctx, req, limits.MaxArchiveBytes)
	if err != nil {
		return nil, fmt.Errorf("downloading chart %s: %w", chartName(h), err)
	}
	if req.Digest != "" && !strings.EqualFold(got, req.Digest) {
		ctrl.LoggerFrom(ctx).Info("Refusing a chart whose content changed under the same version",
			"chart", chartName(h), "expected", req.Digest, "actual", got)
		return nil, &DigestMismatchError{Chart: chartName(h), Expected: req.Digest, Actual: got}
	}
	return data, nil
}

// recordRefusal records a Warning event on a BundleDeployment whose chart was refused for its
// content, once per refusal: not again while its Installed condition already says the same.
func (r *Reconciler) recordRefusal(bd *v1alpha1.BundleDeployment, err error) {
	var dm *DigestMismatchError
	if r.Recorder == nil || !errors.As(err, &dm) {
		return
	}
	msg := redact.Message(err.Error())
	if c := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.InstalledCondition); c != nil &&
		c.Reason == v1alpha1.ReasonChartDigestMismatch && c.Message == msg {
		return
	}
	r.Recorder.Event(bd, corev1.EventTypeWarning, v1alpha1.ReasonChartDigestMismatch, msg)
}

func chartName(h v1alpha1.HelmOptions) string {
	switch {
	case h.Repo != "" && h.Chart != "":
		return fmt.Sprintf("%q version %q from %s", h.Chart, h.Version, redact.URL(h.Repo))
	case h.Repo != "":
		return fmt.Sprintf("%s version %q", redact.URL(h.Repo), h.Version)
	}
	return redact.URL(h.Chart)
}
