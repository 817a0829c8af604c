package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/downstreamres"
	"github.com/helmops/helmops/internal/lifecycle"
)

// copiedVersionAnnotation on a copy made downstream is the resourceVersion of the cluster
// namespace's copy it was made from; a new version rewrites it.
const copiedVersionAnnotation = "fleet.cattle.io/copied-resource-version"

// copyWait re-checks a copy the controller has not made in the cluster namespace yet (its
// creation also brings the BundleDeployment back).
const copyWait = 5 * time.Second

// downstreamFor is the client that writes the copies of downstreamResources in the release
// namespace: the identity Helm deploys as, so a BundleDeployment that deploys as a ServiceAccount
// copies only where that account may write.
func (r *Reconciler) downstreamFor(bd *v1alpha1.BundleDeployment, ns string) (client.Client, error) {
	sa := bd.Spec.Options.ServiceAccount
	if sa == "" {
		return r.Downstream, nil
	}
	key := ns + "/" + sa
	if c, ok := r.asClients.Load(key); ok {
		return c.(client.Client), nil
	}
	c, err := client.New(r.helmFor(bd, ns).RESTConfig(), client.Options{Scheme: r.Downstream.Scheme(), Mapper: r.Downstream.RESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("creating the downstream client of ServiceAccount %s: %w", key, err)
	}
	got, _ := r.asClients.LoadOrStore(key, c)
	return got.(client.Client), nil
}

func emptyOf(ref downstreamres.Ref) client.Object {
	if ref.Kind == downstreamres.KindConfigMap {
		return &corev1.ConfigMap{}
	}
	return &corev1.Secret{}
}

// copyDownstream copies the BundleDeployment's downstreamResources from its cluster namespace
// into the release namespace before the release is deployed (the chart may use them), and
// removes the copies of entries it no longer names. A copy the controller has not made yet is
// waited for.
func (r *Reconciler) copyDownstream(ctx context.Context, s *scope) (ctrl.Result, error) {
	bd := s.bd
	if bd.Spec.Paused {
		return ctrl.Result{}, nil
	}
	refs, err := downstreamres.Refs(bd.Spec.Options.DownstreamResources)
	if err != nil {
		s.deployErr, s.deployReason = err, v1alpha1.ReasonInvalidSpec
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	// Copies of entries taken out are looked for when the spec changed (two lists in the release
	// namespace), not at every check nor at the first deploy.
	changed := bd.Status.ObservedGeneration != 0 && bd.Status.ObservedGeneration != bd.Generation
	if len(refs) == 0 && !changed {
		return ctrl.Result{}, nil
	}
	dc, err := r.downstreamFor(bd, s.ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(refs) > 0 {
		if err := r.createReleaseNamespace(ctx, bd, s.ns); err != nil {
			s.deployErr, s.deployReason = err, v1alpha1.ReasonDownstreamCopyFailed
			return ctrl.Result{}, err
		}
	}
	for i, ref := range refs {
		if res, err := r.copyOne(ctx, s, dc, i, ref); err != nil {
			return res, err
		}
	}
	if changed {
		keep := map[string]bool{}
		for _, ref := range refs {
			keep[ref.String()] = true
		}
		if err := r.pruneCopies(ctx, dc, bd, s.ns, keep); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// copyOne writes the copy of downstreamResources entry i into the release namespace, from the
// controller's copy in the cluster namespace; until that copy is there, the run halts and
// waits for it.
func (r *Reconciler) copyOne(ctx context.Context, s *scope, dc client.Client, i int, ref downstreamres.Ref) (ctrl.Result, error) {
	bd := s.bd
	src := emptyOf(ref)
	err := r.Upstream.Get(ctx, client.ObjectKey{Namespace: bd.Namespace, Name: ref.CopyName()}, src)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("reading the copy of %s in %s: %w", ref, bd.Namespace, err)
	}
	if err != nil || !copiedFor(src, bd, ref) {
		s.waiting = fmt.Sprintf("waiting for the controller to copy %s %s (spec.options.downstreamResources[%d]) into the cluster namespace", ref.Kind, ref.Name, i)
		return lifecycle.Halt(ctrl.Result{RequeueAfter: copyWait})
	}
	if err := r.writeCopy(ctx, dc, bd, s.ns, ref, src); err != nil {
		s.deployErr = fmt.Errorf("spec.options.downstreamResources[%d]: %w", i, err)
		s.deployReason = v1alpha1.ReasonDownstreamCopyFailed
		return ctrl.Result{}, s.deployErr
	}
	return ctrl.Result{}, nil
}

// copiedFor reports whether a cluster namespace object is the controller's copy of ref for this
// BundleDeployment: nothing else there is ever copied downstream.
func copiedFor(o client.Object, bd *v1alpha1.BundleDeployment, ref downstreamres.Ref) bool {
	return o.GetLabels()[v1alpha1.ManagedLabel] == "true" &&
		o.GetAnnotations()[v1alpha1.DownstreamResourceAnnotation] == ref.String() &&
		slices.ContainsFunc(o.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == bd.UID })
}

// ownCopy reports whether a downstream object is a copy this agent made for the BundleDeployment
// (and, with a ref, for that entry).
func ownCopy(o client.Object, bd *v1alpha1.BundleDeployment, ref *downstreamres.Ref) bool {
	l, a := o.GetLabels(), o.GetAnnotations()
	ok := l[v1alpha1.ManagedLabel] == "true" && l[v1alpha1.BundleDeploymentOwnershipLabel] == bd.Name &&
		a[v1alpha1.ClusterNamespaceAnnotation] == bd.Namespace && a[v1alpha1.DownstreamResourceAnnotation] != ""
	if ref != nil {
		ok = ok && a[v1alpha1.DownstreamResourceAnnotation] == ref.String()
	}
	return ok
}

// writeCopy creates or updates the copy of src in the release namespace under the entry's name.
// An object of that name the agent did not copy for this BundleDeployment is never overwritten.
func (r *Reconciler) writeCopy(ctx context.Context, dc client.Client, bd *v1alpha1.BundleDeployment, ns string, ref downstreamres.Ref, src client.Object) error {
	key := client.ObjectKey{Namespace: ns, Name: ref.Name}
	current := emptyOf(ref)
	err := dc.Get(ctx, key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading %s %s in the downstream cluster: %w", ref.Kind, key, err)
	}
	found := err == nil
	if found && !ownCopy(current, bd, &ref) {
		return fmt.Errorf("%s %s exists in the downstream cluster and was not copied there by helmops for this BundleDeployment (label %s=%s); delete or rename it, or rename the source",
			ref.Kind, key, v1alpha1.BundleDeploymentOwnershipLabel, bd.Name)
	}
	want := desiredCopy(bd, key, ref, src)
	if found && current.GetAnnotations()[copiedVersionAnnotation] == src.GetResourceVersion() && sameType(current, want) {
		return nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues(ref.Kind, klog.KObj(want))
	switch {
	case !found:
		log.Info("Copying a downstream resource into the release namespace")
		err = dc.Create(ctx, want)
	case !sameType(current, want):
		// A Secret's type cannot change: the copy is replaced.
		log.Info("Replacing a downstream resource copy, its type changed")
		uid := current.GetUID()
		if err = dc.Delete(ctx, current, client.Preconditions{UID: &uid}); err == nil || apierrors.IsNotFound(err) {
			err = dc.Create(ctx, want)
		}
	default:
		log.Info("Updating a downstream resource copy")
		want.SetResourceVersion(current.GetResourceVersion())
		err = dc.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("copying %s %s into the downstream cluster: %w", ref.Kind, key, err)
	}
	return nil
}

func sameType(a, b client.Object) bool {
	as, ok1 := a.(*corev1.Secret)
	bs, ok2 := b.(*corev1.Secret)
	return !ok1 || !ok2 || as.Type == bs.Type
}

// desiredCopy is the downstream copy of src: its content (and a Secret's type), the ownership
// label Fleet uses, and what the agent needs to recognise its own copy.
func desiredCopy(bd *v1alpha1.BundleDeployment, key client.ObjectKey, ref downstreamres.Ref, src client.Object) client.Object {
	meta := metav1.ObjectMeta{
		Name: key.Name, Namespace: key.Namespace,
		Labels: map[string]string{v1alpha1.ManagedLabel: "true", v1alpha1.BundleDeploymentOwnershipLabel: bd.Name},
		Annotations: map[string]string{
			v1alpha1.DownstreamResourceAnnotation: ref.String(),
			v1alpha1.ClusterNamespaceAnnotation:   bd.Namespace,
			copiedVersionAnnotation:               src.GetResourceVersion(),
		},
	}
	switch o := src.(type) {
	case *corev1.Secret:
		return &corev1.Secret{ObjectMeta: meta, Type: o.Type, Data: o.Data}
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: meta, Data: o.Data, BinaryData: o.BinaryData}
	}
	return nil
}

// pruneCopies deletes the copies made for the BundleDeployment in ns whose entries are not kept
// ("Secret/<name>" keys; nil deletes them all). Listing them needs the right to list Secrets and
// ConfigMaps there; an identity without it leaves them (it could not have listed its own either).
func (r *Reconciler) pruneCopies(ctx context.Context, dc client.Client, bd *v1alpha1.BundleDeployment, ns string, keep map[string]bool) error {
	sel := client.MatchingLabels{v1alpha1.ManagedLabel: "true", v1alpha1.BundleDeploymentOwnershipLabel: bd.Name}
	var objs []client.Object
	secrets := &corev1.SecretList{}
	cms := &corev1.ConfigMapList{}
	var errs []error
	for _, list := range []client.ObjectList{secrets, cms} {
		if err := dc.List(ctx, list, client.InNamespace(ns), sel); err != nil {
			if apierrors.IsForbidden(err) {
				ctrl.LoggerFrom(ctx).Info("Cannot look for downstream resource copies to remove", "namespace", ns, "error", err.Error())
				continue
			}
			errs = append(errs, fmt.Errorf("listing the downstream resource copies in %s: %w", ns, err))
		}
	}
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	for i := range cms.Items {
		objs = append(objs, &cms.Items[i])
	}
	for _, o := range objs {
		if !ownCopy(o, bd, nil) || keep[o.GetAnnotations()[v1alpha1.DownstreamResourceAnnotation]] {
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Removing a downstream resource copy", "namespace", ns, "name", o.GetName(), "entry", o.GetAnnotations()[v1alpha1.DownstreamResourceAnnotation])
		uid := o.GetUID()
		if err := dc.Delete(ctx, o, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the downstream resource copy %s/%s: %w", ns, o.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// removeCopies deletes the copies of the BundleDeployment's current entries in ns, by name (the
// copies of entries taken out earlier were removed then).
func (r *Reconciler) removeCopies(ctx context.Context, bd *v1alpha1.BundleDeployment, ns string) error {
	refs, err := downstreamres.Refs(bd.Spec.Options.DownstreamResources)
	if err != nil || len(refs) == 0 {
		return nil
	}
	dc, err := r.downstreamFor(bd, ns)
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		o := emptyOf(ref)
		err := dc.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, o)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("reading the downstream resource copy %s/%s: %w", ns, ref.Name, err))
			continue
		case !ownCopy(o, bd, &ref):
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Removing a downstream resource copy", "namespace", ns, "name", ref.Name, "entry", ref.String())
		uid := o.GetUID()
		if err := dc.Delete(ctx, o, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the downstream resource copy %s/%s: %w", ns, ref.Name, err))
		}
	}
	return errors.Join(errs...)
}

// bundleDeploymentsOfCopy maps a copy in the cluster namespace to the BundleDeployments that own
// it, so a changed source reaches the release namespace.
func bundleDeploymentsOfCopy(o client.Object) []reconcile.Request {
	if o.GetLabels()[v1alpha1.ManagedLabel] != "true" || o.GetAnnotations()[v1alpha1.DownstreamResourceAnnotation] == "" {
		return nil
	}
	var out []reconcile.Request
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "BundleDeployment" && ref.APIVersion == v1alpha1.GroupVersion.String() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}})
		}
	}
	return out
}
