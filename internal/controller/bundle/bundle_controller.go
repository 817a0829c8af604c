// Package bundle fans a Bundle out to one BundleDeployment per targeted cluster, copies the
// repository secret into each targeted cluster's namespace, and rolls the BundleDeployments'
// status up into the Bundle's.
//
// BundleDeployments live in cluster namespaces, so they cannot be owned by their Bundle (owner
// references do not cross namespaces). They carry the labels fleet.cattle.io/bundle-name and
// fleet.cattle.io/bundle-namespace instead, and this reconciler deletes them: when their cluster
// stops being targeted, when the Bundle is deleted (the finalizer fleet.cattle.io/bundle-finalizer
// holds the Bundle until its deployments are gone, for at most UninstallTimeout), and when it
// finds deployments whose Bundle no longer exists.
package bundle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/downstreamres"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/targeting"
)

const (
	// Finalizer holds a Bundle until its BundleDeployments are gone (their agents uninstalled), for
	// at most the reconciler's UninstallTimeout.
	Finalizer = v1alpha1.BundleFinalizer

	// SourceSecretTypeAnnotation on a copied secret records the type of the source secret
	// (copies all have the type fleet.cattle.io/bundle-helmops-access/v1alpha1), so a reader can
	// tell a kubernetes.io/dockerconfigjson or kubernetes.io/tls source apart.
	SourceSecretTypeAnnotation = "fleet.cattle.io/source-secret-type"
	// sourceVersionAnnotation on a copied secret is the resourceVersion of the source it was
	// copied from; a new source version rewrites the copy.
	sourceVersionAnnotation = "fleet.cattle.io/source-resource-version"

	// secretNameIndex indexes Bundles by spec.helmOpOptions.helmOpSecretName.
	secretNameIndex = "bundle.spec.helmOpOptions.helmOpSecretName"
	// bundleIndex indexes BundleDeployments by "<bundle namespace>/<bundle name>" from their labels.
	bundleIndex = "bundledeployment.bundle"

	// pendingRetry re-checks clusters that have no namespace yet (their status change also
	// triggers a reconcile; this is a safety net).
	pendingRetry = 30 * time.Second
	// conflictRetry re-checks a copy blocked by a secret helmops does not manage.
	conflictRetry = time.Minute

	// DefaultUninstallTimeout is how long a deleted Bundle waits for the agents to uninstall
	// when UninstallTimeout is 0.
	DefaultUninstallTimeout = 10 * time.Minute
)

// Reconciler reconciles Bundles into BundleDeployments.
type Reconciler struct {
	Client client.Client
	// ShardID is the shard this controller handles ("" for objects without a shard label).
	ShardID string
	// Clock bounds the wait for the agents' uninstall; default the real clock.
	Clock clock.PassiveClock
	// UninstallTimeout is how long a deleted Bundle waits for its BundleDeployments to be
	// uninstalled and gone; default DefaultUninstallTimeout.
	UninstallTimeout time.Duration
	// Recorder records events (a halted rollout); SetupWithManager takes the manager's when nil.
	Recorder record.EventRecorder
	// Workers is the number of concurrent reconciles (Bundles); default 1.
	Workers int

	// reader reads source secrets from the API server, so Secrets are never cached whole.
	reader client.Reader
	// halted remembers, per Bundle, whether its rollout was halted at the last reconcile.
	halted sync.Map
}

// SetupWithManager registers the indexes and watches: Bundles; BundleDeployments, mapped back
// to their Bundle by labels; Clusters and ClusterGroups, mapped to every Bundle of their
// namespace; Secrets (metadata only), mapped to the Bundles that name them and, for copies, to
// the Bundles of the BundleDeployments that own them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	r.reader = mgr.GetAPIReader()
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("helmops-controller")
	}
	if err := indexFields(mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bundle").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&v1alpha1.Bundle{}, builder.WithPredicates(shard.Predicate(r.ShardID), bundleChanged())).
		Watches(&v1alpha1.BundleDeployment{}, lifecycle.Batched(lifecycle.SummaryDelay, r.bundleOfDeployment)).
		Watches(&v1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.bundlesInNamespace),
			builder.WithPredicates(clusterChanged())).
		Watches(&v1alpha1.ClusterGroup{}, handler.EnqueueRequestsFromMapFunc(r.bundlesInNamespace),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.bundlesForSource(downstreamres.KindSecret))).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.bundlesForSource(downstreamres.KindConfigMap))).
		Complete(r)
}

// indexFields registers the field indexes the reverse watches and the reconciler look up.
func indexFields(indexer client.FieldIndexer) error {
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&v1alpha1.Bundle{}, dependsOnIndex, func(o client.Object) []string {
			if len(o.(*v1alpha1.Bundle).Spec.DependsOn) > 0 {
				return []string{"true"}
			}
			return nil
		}},
		{&v1alpha1.Bundle{}, secretNameIndex, func(o client.Object) []string {
			if n := secretName(o.(*v1alpha1.Bundle)); n != "" {
				return []string{n}
			}
			return nil
		}},
		{&v1alpha1.Bundle{}, downstreamIndex, func(o client.Object) []string {
			return downstreamKeys(o.(*v1alpha1.Bundle))
		}},
		{&v1alpha1.BundleDeployment{}, bundleIndex, func(o client.Object) []string {
			if k, ok := bundleKeyOf(o); ok {
				return []string{k.String()}
			}
			return nil
		}},
	}
	for _, ix := range indexes {
		if err := indexer.IndexField(context.Background(), ix.obj, ix.field, ix.extract); err != nil {
			return err
		}
	}
	return nil
}

func secretName(b *v1alpha1.Bundle) string {
	if b.Spec.HelmOpOptions == nil {
		return ""
	}
	return b.Spec.HelmOpOptions.SecretName
}

func bundleKeyOf(o client.Object) (types.NamespacedName, bool) {
	l := o.GetLabels()
	name, ns := l[v1alpha1.BundleNameLabel], l[v1alpha1.BundleNamespaceLabel]
	if name == "" || ns == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// bundleChanged admits spec, label and deletion changes, not the status writes of this
// reconciler.
func bundleChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() || !maps.Equal(o.GetLabels(), n.GetLabels()) ||
			o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero() ||
			!slices.Equal(o.GetFinalizers(), n.GetFinalizers())
	}}
}

// clusterChanged admits what changes targeting or values (labels, annotations, spec, the cluster
// namespace, deletion), not the agent's heartbeats.
func clusterChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.Cluster)
		n, ok2 := e.ObjectNew.(*v1alpha1.Cluster)
		if !ok1 || !ok2 {
			return true
		}
		return o.Generation != n.Generation || !maps.Equal(o.Labels, n.Labels) || !maps.Equal(o.Annotations, n.Annotations) ||
			o.Status.Namespace != n.Status.Namespace ||
			o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	}}
}

// bundleOfDeployment maps a BundleDeployment to its Bundle and to the Bundles of the same
// namespace that declare dependsOn, which may be waiting for it.
func (r *Reconciler) bundleOfDeployment(ctx context.Context, o client.Object) []reconcile.Request {
	k, ok := bundleKeyOf(o)
	if !ok {
		return nil
	}
	out := []reconcile.Request{{NamespacedName: k}}
	dependents := &v1alpha1.BundleList{}
	if err := r.Client.List(ctx, dependents, client.InNamespace(k.Namespace), client.MatchingFields{dependsOnIndex: "true"}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing Bundles with dependsOn", "namespace", k.Namespace)
		return out
	}
	for _, req := range r.requests(dependents.Items) {
		if req.NamespacedName != k {
			out = append(out, req)
		}
	}
	return out
}

func (r *Reconciler) bundlesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.BundleList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing Bundles to reconcile", "namespace", o.GetNamespace())
		return nil
	}
	return r.requests(list.Items)
}

func (r *Reconciler) requests(bundles []v1alpha1.Bundle) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(bundles))
	for i := range bundles {
		if shard.Matches(&bundles[i], r.ShardID) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bundles[i])})
		}
	}
	return out
}

// scope is one reconcile of one Bundle: what the steps found, and the facts.
type scope struct {
	b        *v1alpha1.Bundle
	existing []v1alpha1.BundleDeployment
	// byNamespace indexes existing by cluster namespace.
	byNamespace map[string]*v1alpha1.BundleDeployment
	placements  []targeting.Placement
	// groups are the ClusterGroups of the namespace.
	groups []v1alpha1.ClusterGroup
	// source is the repository secret, nil when none is named or it is missing.
	source *corev1.Secret
	// sources are the downstreamResources entries read so far.
	sources map[downstreamres.Ref]source
	// keep are the cluster namespaces whose deployments stay.
	keep map[string]bool
	// clusterNS is the cluster namespace of each placed Cluster (by workspace/name) that the
	// cluster controller created; nsWaiting says why a placed Cluster has none yet.
	clusterNS map[types.NamespacedName]string
	nsWaiting map[types.NamespacedName]string
	facts
}

// namespaceOf is the cluster namespace deployments of p are written to, "" while there is none.
func (s *scope) namespaceOf(p targeting.Placement) string {
	return s.clusterNS[types.NamespacedName{Namespace: p.Cluster.Namespace, Name: p.Cluster.Name}]
}

// Reconcile computes the BundleDeployments of one Bundle, writes the differences, copies the
// repository secret and rolls the deployments' status up.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	r.defaults()
	b := &v1alpha1.Bundle{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			// The Bundle is gone (its finalizer was removed by hand, or it never had one):
			// delete the deployments that still point at it.
			r.deleteRolloutMetrics(req.Namespace, req.Name)
			return ctrl.Result{}, r.deleteDeployments(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !shard.Matches(b, r.ShardID) {
		return ctrl.Result{}, nil
	}
	if !b.DeletionTimestamp.IsZero() {
		r.deleteRolloutMetrics(b.Namespace, b.Name)
		return r.finalize(ctx, b)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, b, Finalizer); err != nil {
		return ctrl.Result{}, err
	}

	patch := lifecycle.Snapshot(r.Client, b)
	s := &scope{b: b, keep: map[string]bool{}, sources: map[downstreamres.Ref]source{}, facts: facts{paused: b.Spec.Paused, now: r.Clock.Now()}}
	wasHalted := isHalted(b)
	defer func() {
		retErr = patch.Status(ctx, b, retErr, func(err error) { setStatus(b, &s.facts, err) })
		r.recordHalt(b, wasHalted, &s.facts)
	}()
	ctrl.LoggerFrom(ctx).V(1).Info("Computing BundleDeployments", "Bundle", klog.KObj(b))
	return lifecycle.Run(ctx, s,
		lifecycle.Step[*scope]{Name: "deployments", Run: r.readDeployments},
		lifecycle.Step[*scope]{Name: "targets", Run: r.place},
		lifecycle.Step[*scope]{Name: "namespaces", Run: r.clusterNamespaces},
		lifecycle.Step[*scope]{Name: "secret", Run: r.readSecret},
		lifecycle.Step[*scope]{Name: "rollout", Run: r.planRollout},
		lifecycle.Step[*scope]{Name: "apply", Run: r.applyDeployments},
		lifecycle.Step[*scope]{Name: "prune", Run: r.prune},
	)
}

func (r *Reconciler) defaults() {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.UninstallTimeout <= 0 {
		r.UninstallTimeout = DefaultUninstallTimeout
	}
}

// finalize deletes the Bundle's deployments and releases its secret copies, then waits for the
// agents to uninstall (each BundleDeployment stays until its agent removes its own finalizer),
// saying so in the Ready condition. After UninstallTimeout it stops waiting, says which clusters
// it gave up on, and removes the finalizer.
func (r *Reconciler) finalize(ctx context.Context, b *v1alpha1.Bundle) (_ ctrl.Result, retErr error) {
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(b)
	bds, err := r.deployments(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.deleteDeploymentsExcept(ctx, bds, nil); err != nil {
		return ctrl.Result{}, err
	}
	waited := r.Clock.Since(b.DeletionTimestamp.Time)
	if len(bds) > 0 && waited < r.UninstallTimeout {
		patch := lifecycle.Snapshot(r.Client, b)
		msg := "waiting for the agents to uninstall on " + clusterList(bds)
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonDeleting, msg, r.Clock.Now())
		return ctrl.Result{RequeueAfter: r.UninstallTimeout - waited}, patch.Status(ctx, b, nil, func(error) {})
	}
	if len(bds) > 0 {
		ctrl.LoggerFrom(ctx).Info("Giving up waiting for the agents to uninstall", "Bundle", klog.KObj(b),
			"waited", waited.Round(time.Second), "clusters", clusterList(bds))
	}
	return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Client, b, Finalizer)
}

// clusterList names the clusters of the deployments, at most ten.
func clusterList(bds []v1alpha1.BundleDeployment) string {
	names := make([]string, 0, len(bds))
	for i := range bds {
		names = append(names, bds[i].Labels[v1alpha1.ClusterLabel])
	}
	slices.Sort(names)
	if len(names) > maxNonReady {
		return strings.Join(names[:maxNonReady], ", ") + fmt.Sprintf(" and %d more", len(names)-maxNonReady)
	}
	return strings.Join(names, ", ")
}

// deleteDeployments deletes every BundleDeployment of the Bundle and releases its secret copies.
func (r *Reconciler) deleteDeployments(ctx context.Context, key types.NamespacedName) error {
	bds, err := r.deployments(ctx, key)
	if err != nil {
		return err
	}
	return r.deleteDeploymentsExcept(ctx, bds, nil)
}

func (r *Reconciler) deleteDeployment(ctx context.Context, bd *v1alpha1.BundleDeployment) error {
	log := ctrl.LoggerFrom(ctx)
	if bd.DeletionTimestamp.IsZero() {
		log.Info("Deleting BundleDeployment", "BundleDeployment", klog.KObj(bd), "Cluster",
			klog.KRef(bd.Labels[v1alpha1.ClusterNamespaceLabel], bd.Labels[v1alpha1.ClusterLabel]))
		err := r.Client.Delete(ctx, bd, client.Preconditions{UID: &bd.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting BundleDeployment %s/%s: %w", bd.Namespace, bd.Name, err)
		}
	}
	if n := chartSecretName(bd); n != "" {
		if err := r.releaseCopy(ctx, secretGVK, bd.Namespace, n, "", bd.UID); err != nil {
			return err
		}
	}
	return r.releaseDownstreamCopies(ctx, bd, nil)
}

func chartSecretName(bd *v1alpha1.BundleDeployment) string {
	if bd == nil || bd.Spec.HelmChartOptions == nil {
		return ""
	}
	return bd.Spec.HelmChartOptions.SecretName
}

func (r *Reconciler) deployments(ctx context.Context, key types.NamespacedName) ([]v1alpha1.BundleDeployment, error) {
	list := &v1alpha1.BundleDeploymentList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{bundleIndex: key.String()}); err != nil {
		return nil, fmt.Errorf("listing the BundleDeployments of Bundle %s: %w", key, err)
	}
	return list.Items, nil
}

// readDeployments lists the Bundle's BundleDeployments.
func (r *Reconciler) readDeployments(ctx context.Context, s *scope) (ctrl.Result, error) {
	existing, err := r.deployments(ctx, client.ObjectKeyFromObject(s.b))
	if err != nil {
		return ctrl.Result{}, err
	}
	s.existing = existing
	s.byNamespace = make(map[string]*v1alpha1.BundleDeployment, len(existing))
	for i := range existing {
		s.byNamespace[existing[i].Namespace] = &existing[i]
	}
	return ctrl.Result{}, nil
}

// place evaluates the targets over the live Clusters and ClusterGroups of the namespace. Targets
// that cannot be evaluated keep the deployments as they are until the spec changes.
func (r *Reconciler) place(ctx context.Context, s *scope) (ctrl.Result, error) {
	b := s.b
	clusters := &v1alpha1.ClusterList{}
	if err := r.Client.List(ctx, clusters, client.InNamespace(b.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the Clusters of namespace %s: %w", b.Namespace, err)
	}
	groups := &v1alpha1.ClusterGroupList{}
	if err := r.Client.List(ctx, groups, client.InNamespace(b.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the ClusterGroups of namespace %s: %w", b.Namespace, err)
	}
	// Clusters being deleted are no longer targeted.
	live := clusters.Items[:0]
	for _, c := range clusters.Items {
		if c.DeletionTimestamp.IsZero() {
			live = append(live, c)
		}
	}
	placements, err := targeting.Place(b, live, groups.Items)
	if err == nil {
		err = downstreamres.Validate(b.Spec.BundleDeploymentOptions, b.Spec.Targets)
	}
	s.targeted = true
	if err != nil {
		s.targetErr = err
		for _, bd := range s.existing {
			s.entries = append(s.entries, Entry{Name: bd.Labels[v1alpha1.ClusterLabel], BundleDeployment: bd.DeepCopy()})
		}
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	s.placements = placements
	s.groups = groups.Items
	return ctrl.Result{}, nil
}

// readSecret reads the repository secret from the API server (Secrets are not cached). A missing
// one is reported and waited for; any other error is retried.
func (r *Reconciler) readSecret(ctx context.Context, s *scope) (ctrl.Result, error) {
	b := s.b
	name := secretName(b)
	if name == "" {
		return ctrl.Result{}, nil
	}
	secret := &corev1.Secret{}
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		s.secretReason = v1alpha1.ReasonSecretNotFound
		s.secretErr = fmt.Errorf("secret %q named by helmSecretName does not exist in namespace %q: its copies in the cluster namespaces are removed, so deployments that download the chart again fail until it is created; create it and the deployments follow", name, b.Namespace)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading secret %s/%s named by helmSecretName: %w", b.Namespace, name, err)
	case chartsource.CheckSecret(secret) != nil:
		s.secretReason, s.secretErr = ReasonSecretRefused, chartsource.CheckSecret(secret)
	default:
		s.source = secret
	}
	return ctrl.Result{}, nil
}

// ReasonSecretRefused is the reason when helmSecretName names a secret helmops never copies (a service account
// token).
const ReasonSecretRefused = "SecretRefused"

// applyDeployments writes the BundleDeployment of each placement and copies the secret next to
// it. A failed write is reported on its cluster's entry and returned once all were tried.
func (r *Reconciler) applyDeployments(ctx context.Context, s *scope) (ctrl.Result, error) {
	var result ctrl.Result
	var errs []error
	for _, p := range s.placements {
		res, err := r.applyPlacement(ctx, s, p)
		result = lifecycle.Soonest(result, res)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return result, errors.Join(errs...)
}

// clusterNamespaces finds the cluster namespace of every placed Cluster. The name is computed
// from the Cluster's workspace and name (never read from its status), and the namespace must
// carry the labels the cluster controller gave it for that Cluster: deployments and secret copies
// are written nowhere else.
func (r *Reconciler) clusterNamespaces(ctx context.Context, s *scope) (ctrl.Result, error) {
	s.clusterNS = map[types.NamespacedName]string{}
	s.nsWaiting = map[types.NamespacedName]string{}
	for _, p := range s.placements {
		key := types.NamespacedName{Namespace: p.Cluster.Namespace, Name: p.Cluster.Name}
		name := clusterns.Name(p.Cluster.Namespace, p.Cluster.Name)
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
		switch {
		case apierrors.IsNotFound(err):
			s.nsWaiting[key] = "waiting for the cluster namespace of cluster " + p.Cluster.Name
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading namespace %s of Cluster %s: %w", name, key, err)
		case !clusterns.Owns(p.Cluster.Namespace, p.Cluster.Name, ns):
			s.nsWaiting[key] = fmt.Sprintf("namespace %s was not created by helmops for cluster %s (its labels do not say so): nothing is deployed there", name, p.Cluster.Name)
		default:
			s.clusterNS[key] = name
		}
	}
	return ctrl.Result{}, nil
}

// applyPlacement writes one placement's BundleDeployment and records its entry.
func (r *Reconciler) applyPlacement(ctx context.Context, s *scope, p targeting.Placement) (ctrl.Result, error) {
	ns := s.namespaceOf(p)
	if ns == "" {
		s.entries = append(s.entries, Entry{Name: p.Cluster.Name,
			PendingMessage: s.nsWaiting[types.NamespacedName{Namespace: p.Cluster.Namespace, Name: p.Cluster.Name}]})
		return ctrl.Result{RequeueAfter: pendingRetry}, nil
	}
	current := s.claim(ns)
	if p.Err != nil {
		// The values cannot be computed for this cluster: its deployment stays as it is
		// until the HelmOp or the Cluster changes.
		s.valuesErrs = append(s.valuesErrs, p.Err)
		return ctrl.Result{}, r.leaveAsIs(ctx, s, p, current, &clusterProblem{reason: v1alpha1.ReasonInvalidValues, err: p.Err})
	}
	copies, problem, err := r.downstreamCopies(ctx, s, p.Cluster.Name, p.Options)
	if err != nil {
		s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current, PendingMessage: err.Error()})
		return ctrl.Result{}, err
	}
	if problem != nil {
		// A downstream resource cannot be copied: the deployment and its copies stay as they
		// are until the source or the entry is fixed.
		s.downstreamErrs = append(s.downstreamErrs, problem)
		return ctrl.Result{}, r.leaveAsIs(ctx, s, p, current, problem)
	}
	if s.secretErr != nil && (s.secretReason == v1alpha1.ReasonSecretNotFound || s.secretReason == ReasonSecretRefused) {
		return ctrl.Result{}, r.withoutCredentials(ctx, s, p, current)
	}
	if msg, held := s.held(ns); held {
		// Held back by the rollout or by dependencies: the deployment keeps its spec (or is not
		// created yet).
		s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current, PendingMessage: msg, Held: true})
		return ctrl.Result{}, r.markDeployment(ctx, current, nil)
	}
	bd, err := r.applyDeployment(ctx, s.b, p, ns, current)
	if err != nil {
		return s.writeFailed(p, ns, current, err)
	}
	s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: bd})
	return r.copyNextTo(ctx, s, bd, current, copies)
}

// claim keeps the deployment in namespace ns and returns the one that exists there (nil when
// none does). The placement's rollout entry points at the entry applyPlacement adds next: every
// path after claim adds exactly one.
func (s *scope) claim(ns string) *v1alpha1.BundleDeployment {
	s.keep[ns] = true
	if s.rollout != nil {
		if i, ok := s.rollout.index[ns]; ok {
			s.rollout.entry[i] = len(s.entries)
		}
	}
	return s.byNamespace[ns]
}

// leaveAsIs records a placement that cannot be written because of problem: the deployment that
// exists keeps its spec and is marked with the problem.
func (r *Reconciler) leaveAsIs(ctx context.Context, s *scope, p targeting.Placement, current *v1alpha1.BundleDeployment, problem *clusterProblem) error {
	s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current, PendingMessage: problem.Error()})
	return r.markDeployment(ctx, current, problem)
}

// copyNextTo copies the repository secret and the downstream resources next to a written
// BundleDeployment and marks it with what could not be copied.
func (r *Reconciler) copyNextTo(ctx context.Context, s *scope, bd, current *v1alpha1.BundleDeployment, copies []copied) (ctrl.Result, error) {
	res, err := r.copySecret(ctx, s, bd, current)
	problem, derr := r.copyDownstream(ctx, s, bd, current, copies)
	if problem != nil {
		s.downstreamErrs = append(s.downstreamErrs, problem)
		res.RequeueAfter = conflictRetry
	}
	return res, errors.Join(err, derr, r.markDeployment(ctx, bd, problem))
}

// withoutCredentials records a placement whose repository secret is missing or refused: without
// credentials the agents cannot download the chart, so nothing new is written and what exists is
// reported. Copies follow their source: a deleted or refused source's copies go too.
func (r *Reconciler) withoutCredentials(ctx context.Context, s *scope, p targeting.Placement, current *v1alpha1.BundleDeployment) error {
	if err := r.markDeployment(ctx, current, nil); err != nil {
		return err
	}
	s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current, PendingMessage: s.secretErr.Error()})
	if n := chartSecretName(current); n != "" && n == secretName(s.b) {
		return r.releaseCopy(ctx, secretGVK, current.Namespace, n, "", current.UID)
	}
	return nil
}

// writeFailed records a placement whose BundleDeployment could not be written. A cluster
// namespace being deleted is waited for; any other error is returned.
func (s *scope) writeFailed(p targeting.Placement, ns string, current *v1alpha1.BundleDeployment, err error) (ctrl.Result, error) {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		s.entries = append(s.entries, Entry{Name: p.Cluster.Name,
			PendingMessage: fmt.Sprintf("cluster namespace %s is being deleted", ns)})
		return ctrl.Result{RequeueAfter: pendingRetry}, nil
	}
	s.entries = append(s.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current,
		PendingMessage: "could not write the BundleDeployment: " + err.Error()})
	return ctrl.Result{}, err
}

// sameRepository reports whether a target's chart location is on the origin of the Bundle's own.
func sameRepository(bundle, target *v1alpha1.HelmOptions) bool {
	loc := func(h *v1alpha1.HelmOptions) string {
		if h == nil {
			return ""
		}
		return chartsource.Ref{Repo: h.Repo, Chart: h.Chart}.Location()
	}
	a, b := loc(bundle), loc(target)
	return a == b || chartsource.SameOrigin(a, b)
}

// sameChart reports whether a target deploys the Bundle's own chart reference and version (its
// digest then applies).
func sameChart(bundle, target *v1alpha1.HelmOptions) bool {
	ref := func(h *v1alpha1.HelmOptions) chartsource.Ref {
		if h == nil {
			return chartsource.Ref{}
		}
		return chartsource.Ref{Repo: h.Repo, Chart: h.Chart, Version: h.Version}
	}
	return ref(bundle) == ref(target)
}

// copySecret copies the repository secret next to a BundleDeployment and releases the copy of a
// secret the Bundle no longer names.
func (r *Reconciler) copySecret(ctx context.Context, s *scope, bd, current *v1alpha1.BundleDeployment) (ctrl.Result, error) {
	var result ctrl.Result
	var errs []error
	if s.source != nil && chartSecretName(bd) != "" {
		if err := r.ensureCopy(ctx, repositorySecretCopy(s.source), bd); err != nil {
			var fe *foreignCopyError
			if errors.As(err, &fe) {
				result.RequeueAfter = conflictRetry
			} else {
				errs = append(errs, err)
			}
			if s.secretErr == nil {
				s.secretReason, s.secretErr = v1alpha1.ReasonCredentialsCopyFailed, err
			}
		}
	}
	if old := chartSecretName(current); old != "" && old != chartSecretName(bd) {
		if err := r.releaseCopy(ctx, secretGVK, bd.Namespace, old, "", bd.UID); err != nil {
			errs = append(errs, err)
		}
	}
	return result, errors.Join(errs...)
}

// prune deletes the deployments of clusters no longer targeted, with their secret copies.
func (r *Reconciler) prune(ctx context.Context, s *scope) (ctrl.Result, error) {
	return ctrl.Result{}, r.deleteDeploymentsExcept(ctx, s.existing, s.keep)
}

func (r *Reconciler) deleteDeploymentsExcept(ctx context.Context, existing []v1alpha1.BundleDeployment, keep map[string]bool) error {
	var errs []error
	for i := range existing {
		if keep[existing[i].Namespace] {
			continue
		}
		if err := r.deleteDeployment(ctx, &existing[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// desiredDeployment is the BundleDeployment a placement asks for.
func desiredDeployment(b *v1alpha1.Bundle, p targeting.Placement, ns string) *v1alpha1.BundleDeployment {
	lbls := map[string]string{
		v1alpha1.BundleNameLabel:       b.Name,
		v1alpha1.BundleNamespaceLabel:  b.Namespace,
		v1alpha1.ClusterLabel:          p.Cluster.Name,
		v1alpha1.ClusterNamespaceLabel: p.Cluster.Namespace,
	}
	if h := b.Labels[v1alpha1.HelmOpLabel]; h != "" {
		lbls[v1alpha1.HelmOpLabel] = h
	}
	chartOpts := b.Spec.HelmOpOptions.DeepCopy()
	if chartOpts != nil && chartOpts.SecretName != "" && !sameRepository(b.Spec.Helm, p.Options.Helm) {
		// The credentials are the HelmOp's repository's: a target that fetches from another
		// host gets neither the secret's name nor its copy.
		chartOpts.SecretName = ""
	}
	if chartOpts != nil && chartOpts.ChartDigest != "" && !sameChart(b.Spec.Helm, p.Options.Helm) {
		// The digest is that of the Bundle's own chart and version.
		chartOpts.ChartDigest = ""
	}
	return &v1alpha1.BundleDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: ns, Labels: lbls},
		Spec: v1alpha1.BundleDeploymentSpec{
			DeploymentID:     targeting.DeploymentID(p.Options, chartOpts),
			Options:          p.Options,
			HelmChartOptions: chartOpts,
			Paused:           b.Spec.Paused || p.Cluster.Spec.Paused,
		},
	}
}

// ownedLabels are the label keys this reconciler writes on BundleDeployments.
var ownedLabels = []string{v1alpha1.BundleNameLabel, v1alpha1.BundleNamespaceLabel, v1alpha1.ClusterLabel,
	v1alpha1.ClusterNamespaceLabel, v1alpha1.HelmOpLabel}

// applyDeployment creates the BundleDeployment or updates it when its spec or labels differ; an
// unchanged deployment is not written, so its resourceVersion stays.
func (r *Reconciler) applyDeployment(ctx context.Context, b *v1alpha1.Bundle, p targeting.Placement, ns string, current *v1alpha1.BundleDeployment) (*v1alpha1.BundleDeployment, error) {
	log := ctrl.LoggerFrom(ctx)
	want := desiredDeployment(b, p, ns)
	now := r.Clock.Now().UTC().Format(time.RFC3339)
	if current == nil {
		want.Annotations = map[string]string{v1alpha1.DeploymentIDSinceAnnotation: now}
		log.Info("Creating BundleDeployment", "BundleDeployment", klog.KObj(want),
			"Cluster", klog.KObj(p.Cluster), "target", p.TargetName, "deploymentID", want.Spec.DeploymentID)
		if err := r.Client.Create(ctx, want); err != nil {
			return nil, fmt.Errorf("creating BundleDeployment %s/%s for cluster %s: %w", want.Namespace, want.Name, p.Cluster.Name, err)
		}
		return want, nil
	}
	next := updatedDeployment(current, want, now)
	if equality.Semantic.DeepEqual(current.Spec, next.Spec) && maps.Equal(current.Labels, next.Labels) &&
		maps.Equal(current.Annotations, next.Annotations) {
		return current, nil
	}
	log.Info("Updating BundleDeployment", "BundleDeployment", klog.KObj(next), "Cluster", klog.KObj(p.Cluster),
		"target", p.TargetName, "deploymentID", next.Spec.DeploymentID, "paused", next.Spec.Paused)
	if err := r.Client.Update(ctx, next); err != nil {
		return nil, fmt.Errorf("updating BundleDeployment %s/%s for cluster %s: %w", next.Namespace, next.Name, p.Cluster.Name, err)
	}
	return next, nil
}

// updatedDeployment is current with the spec and the owned labels of want; the deployment ID's
// start is stamped now when the ID changed (or was never stamped).
func updatedDeployment(current, want *v1alpha1.BundleDeployment, now string) *v1alpha1.BundleDeployment {
	next := current.DeepCopy()
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	for _, k := range ownedLabels {
		if v, ok := want.Labels[k]; ok {
			next.Labels[k] = v
		} else {
			delete(next.Labels, k)
		}
	}
	next.Spec = want.Spec
	if next.Spec.DeploymentID != current.Spec.DeploymentID || next.Annotations[v1alpha1.DeploymentIDSinceAnnotation] == "" {
		// The rollout's progress deadline counts from here.
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[v1alpha1.DeploymentIDSinceAnnotation] = now
	}
	return next
}
