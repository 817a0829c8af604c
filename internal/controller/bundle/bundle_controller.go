// Package bundle fans a Bundle out to one BundleDeployment per targeted cluster, copies the
// repository secret into each targeted cluster's namespace, and rolls the BundleDeployments'
// status up into the Bundle's.
//
// BundleDeployments live in cluster namespaces, so they cannot be owned by their Bundle (owner
// references do not cross namespaces). They carry the labels fleet.cattle.io/bundle-name and
// fleet.cattle.io/bundle-namespace instead, and this reconciler deletes them: when their cluster
// stops being targeted, when the Bundle is deleted (the finalizer fleet.cattle.io/bundle-finalizer
// holds the Bundle until the deletes are issued), and when it finds deployments whose Bundle no
// longer exists.
package bundle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/targeting"
)

const (
	// Finalizer holds a Bundle until the deletes of its BundleDeployments are issued.
	Finalizer = "fleet.cattle.io/bundle-finalizer"

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
)

// Reconciler reconciles Bundles into BundleDeployments.
type Reconciler struct {
	Client client.Client
	// ShardID is the shard this controller handles ("" for objects without a shard label).
	ShardID string

	// reader reads source secrets from the API server, so Secrets are never cached whole.
	reader client.Reader
}

// SetupWithManager registers the indexes and watches: Bundles; BundleDeployments, mapped back
// to their Bundle by labels; Clusters and ClusterGroups, mapped to every Bundle of their
// namespace; Secrets (metadata only), mapped to the Bundles that name them and, for copies, to
// the Bundles of the BundleDeployments that own them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.reader = mgr.GetAPIReader()
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Bundle{}, secretNameIndex, func(o client.Object) []string {
		if n := secretName(o.(*v1alpha1.Bundle)); n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.BundleDeployment{}, bundleIndex, func(o client.Object) []string {
		if k, ok := bundleKeyOf(o); ok {
			return []string{k.String()}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bundle").
		For(&v1alpha1.Bundle{}, builder.WithPredicates(shard.Predicate(r.ShardID), bundleChanged())).
		Watches(&v1alpha1.BundleDeployment{}, handler.EnqueueRequestsFromMapFunc(r.bundleOfDeployment)).
		Watches(&v1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.bundlesInNamespace),
			builder.WithPredicates(clusterChanged())).
		Watches(&v1alpha1.ClusterGroup{}, handler.EnqueueRequestsFromMapFunc(r.bundlesInNamespace),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.bundlesForSecret)).
		Complete(r)
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

// clusterChanged admits what changes targeting (labels, spec, the cluster namespace, deletion),
// not the agent's heartbeats.
func clusterChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.Cluster)
		n, ok2 := e.ObjectNew.(*v1alpha1.Cluster)
		if !ok1 || !ok2 {
			return true
		}
		return o.Generation != n.Generation || !maps.Equal(o.Labels, n.Labels) ||
			o.Status.Namespace != n.Status.Namespace ||
			o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	}}
}

func (r *Reconciler) bundleOfDeployment(_ context.Context, o client.Object) []reconcile.Request {
	if k, ok := bundleKeyOf(o); ok {
		return []reconcile.Request{{NamespacedName: k}}
	}
	return nil
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

func (r *Reconciler) bundlesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.BundleList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{secretNameIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing Bundles that name a Secret", "Secret", klog.KObj(o))
		return nil
	}
	out := r.requests(list.Items)
	if o.GetLabels()[v1alpha1.ManagedLabel] != "true" {
		return out
	}
	// A copy: reconcile the Bundles of the BundleDeployments owning it, so a deleted or edited
	// copy is restored.
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind != "BundleDeployment" || ref.APIVersion != v1alpha1.GroupVersion.String() {
			continue
		}
		bd := &v1alpha1.BundleDeployment{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}, bd); err != nil {
			continue
		}
		if k, ok := bundleKeyOf(bd); ok {
			out = append(out, reconcile.Request{NamespacedName: k})
		}
	}
	return out
}

// Reconcile computes the BundleDeployments of one Bundle, writes the differences, copies the
// repository secret and rolls the deployments' status up.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	b := &v1alpha1.Bundle{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			// The Bundle is gone (its finalizer was removed by hand, or it never had one):
			// delete the deployments that still point at it.
			return ctrl.Result{}, r.deleteDeployments(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !shard.Matches(b, r.ShardID) {
		return ctrl.Result{}, nil
	}
	if !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, b)
	}
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		orig := b.DeepCopy()
		controllerutil.AddFinalizer(b, Finalizer)
		if err := r.Client.Patch(ctx, b, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
	}

	orig := b.DeepCopy()
	f := &facts{paused: b.Spec.Paused}
	defer func() {
		setStatus(b, f)
		if equality.Semantic.DeepEqual(orig.Status, b.Status) {
			return
		}
		if err := r.Client.Status().Patch(ctx, b, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("writing the status of Bundle %s/%s: %w", b.Namespace, b.Name, err))
		}
	}()
	log.V(1).Info("Computing BundleDeployments", "Bundle", klog.KObj(b))
	return r.reconcileDeployments(ctx, b, f)
}

// finalize deletes the Bundle's deployments and releases its secret copies, then removes the
// finalizer. It does not wait for the agents to uninstall: a BundleDeployment stays until its
// agent removes its own finalizer.
func (r *Reconciler) finalize(ctx context.Context, b *v1alpha1.Bundle) error {
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		return nil
	}
	if err := r.deleteDeployments(ctx, client.ObjectKeyFromObject(b)); err != nil {
		return err
	}
	orig := b.DeepCopy()
	controllerutil.RemoveFinalizer(b, Finalizer)
	if err := r.Client.Patch(ctx, b, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
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
		if err := r.releaseCopy(ctx, bd.Namespace, n, bd.UID); err != nil {
			return err
		}
	}
	return nil
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

func (r *Reconciler) reconcileDeployments(ctx context.Context, b *v1alpha1.Bundle, f *facts) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(b)
	existing, err := r.deployments(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	byNamespace := make(map[string]*v1alpha1.BundleDeployment, len(existing))
	for i := range existing {
		byNamespace[existing[i].Namespace] = &existing[i]
	}

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
	if err != nil {
		// The targets cannot be evaluated until the spec changes: keep the deployments as
		// they are and report them.
		f.targetErr = err
		for _, bd := range existing {
			f.entries = append(f.entries, Entry{Name: bd.Labels[v1alpha1.ClusterLabel], BundleDeployment: bd.DeepCopy()})
		}
		return ctrl.Result{}, reconcile.TerminalError(err)
	}

	// The repository secret, read from the API server (Secrets are not cached).
	var source *corev1.Secret
	if name := secretName(b); name != "" {
		s := &corev1.Secret{}
		err := r.reader.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: name}, s)
		switch {
		case apierrors.IsNotFound(err):
			f.secretReason = v1alpha1.ReasonSecretNotFound
			f.secretErr = fmt.Errorf("secret %q named by helmSecretName does not exist in namespace %q: create it and the deployments follow", name, b.Namespace)
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading secret %s/%s named by helmSecretName: %w", b.Namespace, name, err)
		default:
			source = s
		}
	}

	var result ctrl.Result
	keep := map[string]bool{}
	var errs []error
	for _, p := range placements {
		ns := p.Cluster.Status.Namespace
		if ns == "" {
			f.entries = append(f.entries, Entry{Name: p.Cluster.Name,
				PendingMessage: "waiting for the cluster namespace of cluster " + p.Cluster.Name})
			result.RequeueAfter = pendingRetry
			continue
		}
		keep[ns] = true
		current := byNamespace[ns]
		if f.secretErr != nil && f.secretReason == v1alpha1.ReasonSecretNotFound {
			// Without credentials the agents cannot download the chart: write nothing new,
			// report what exists.
			e := Entry{Name: p.Cluster.Name, BundleDeployment: current, PendingMessage: f.secretErr.Error()}
			f.entries = append(f.entries, e)
			continue
		}
		bd, err := r.applyDeployment(ctx, b, p, current)
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				f.entries = append(f.entries, Entry{Name: p.Cluster.Name,
					PendingMessage: fmt.Sprintf("cluster namespace %s is being deleted", ns)})
				result.RequeueAfter = pendingRetry
				continue
			}
			errs = append(errs, err)
			f.entries = append(f.entries, Entry{Name: p.Cluster.Name, BundleDeployment: current,
				PendingMessage: "could not write the BundleDeployment: " + err.Error()})
			continue
		}
		f.entries = append(f.entries, Entry{Name: p.Cluster.Name, BundleDeployment: bd})
		if source != nil {
			if err := r.ensureCopy(ctx, source, bd); err != nil {
				var fe *foreignSecretError
				if errors.As(err, &fe) {
					result.RequeueAfter = conflictRetry
				} else {
					errs = append(errs, err)
				}
				if f.secretErr == nil {
					f.secretReason, f.secretErr = v1alpha1.ReasonCredentialsCopyFailed, err
				}
			}
		}
		if old := chartSecretName(current); old != "" && old != secretName(b) {
			if err := r.releaseCopy(ctx, ns, old, bd.UID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Deployments of clusters no longer targeted go, with their secret copies.
	if err := r.deleteDeploymentsExcept(ctx, existing, keep); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
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
func desiredDeployment(b *v1alpha1.Bundle, p targeting.Placement) *v1alpha1.BundleDeployment {
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
	return &v1alpha1.BundleDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: p.Cluster.Status.Namespace, Labels: lbls},
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
func (r *Reconciler) applyDeployment(ctx context.Context, b *v1alpha1.Bundle, p targeting.Placement, current *v1alpha1.BundleDeployment) (*v1alpha1.BundleDeployment, error) {
	log := ctrl.LoggerFrom(ctx)
	want := desiredDeployment(b, p)
	if current == nil {
		log.Info("Creating BundleDeployment", "BundleDeployment", klog.KObj(want),
			"Cluster", klog.KObj(p.Cluster), "target", p.TargetName, "deploymentID", want.Spec.DeploymentID)
		if err := r.Client.Create(ctx, want); err != nil {
			return nil, fmt.Errorf("creating BundleDeployment %s/%s for cluster %s: %w", want.Namespace, want.Name, p.Cluster.Name, err)
		}
		return want, nil
	}
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
	if equality.Semantic.DeepEqual(current.Spec, next.Spec) && maps.Equal(current.Labels, next.Labels) {
		return current, nil
	}
	log.Info("Updating BundleDeployment", "BundleDeployment", klog.KObj(next), "Cluster", klog.KObj(p.Cluster),
		"target", p.TargetName, "deploymentID", next.Spec.DeploymentID, "paused", next.Spec.Paused)
	if err := r.Client.Update(ctx, next); err != nil {
		return nil, fmt.Errorf("updating BundleDeployment %s/%s for cluster %s: %w", next.Namespace, next.Name, p.Cluster.Name, err)
	}
	return next, nil
}
