package bundle

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/downstreamres"
	"github.com/helmops/helmops/internal/lifecycle"
)

// downstreamIndex indexes Bundles by the entries of their downstreamResources (in spec and in
// targets), "Secret/<name>" or "ConfigMap/<name>".
const downstreamIndex = "bundle.spec.downstreamResources"

// downstreamKeys are the index keys of a Bundle's downstreamResources.
func downstreamKeys(b *v1alpha1.Bundle) []string {
	var out []string
	add := func(list []v1alpha1.DownstreamResource) {
		refs, err := downstreamres.Refs(list)
		if err != nil {
			return
		}
		for _, ref := range refs {
			out = append(out, ref.String())
		}
	}
	add(b.Spec.DownstreamResources)
	for _, t := range b.Spec.Targets {
		add(t.DownstreamResources)
	}
	return out
}

func gvkOf(ref downstreamres.Ref) schema.GroupVersionKind {
	if ref.Kind == downstreamres.KindConfigMap {
		return configMapGVK
	}
	return secretGVK
}

// clusterProblem is why one cluster's deployment cannot be updated: its message names the
// cluster and the field.
type clusterProblem struct {
	reason string
	err    error
}

func (p *clusterProblem) Error() string { return p.err.Error() }

// source is a downstreamResources entry as read from the Bundle's namespace: the object, or why
// it cannot be copied.
type source struct {
	obj            client.Object
	reason, refuse string
}

// readSource reads an entry from the Bundle's namespace through the API server (neither Secrets
// nor ConfigMaps are cached whole). A missing entry, a service account token and an object
// helmops made for its own use (label fleet.cattle.io/managed=true, such as registration
// credentials) cannot be copied; only a failed read is an error.
func (r *Reconciler) readSource(ctx context.Context, s *scope, ref downstreamres.Ref) (source, error) {
	if got, ok := s.sources[ref]; ok {
		return got, nil
	}
	if s.sources == nil {
		s.sources = map[downstreamres.Ref]source{}
	}
	var obj client.Object = &corev1.Secret{}
	if ref.Kind == downstreamres.KindConfigMap {
		obj = &corev1.ConfigMap{}
	}
	ns := s.b.Namespace
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, obj)
	var got source
	switch {
	case apierrors.IsNotFound(err):
		got = source{reason: v1alpha1.ReasonDownstreamResourceNotFound,
			refuse: fmt.Sprintf("%s %q does not exist in namespace %s; create it, or remove the entry", ref.Kind, ref.Name, ns)}
	case err != nil:
		return source{}, fmt.Errorf("reading %s %s/%s named by downstreamResources: %w", ref.Kind, ns, ref.Name, err)
	case isServiceAccountToken(obj):
		got = source{reason: v1alpha1.ReasonDownstreamResourceRefused,
			refuse: fmt.Sprintf("Secret %q is a service account token (type %s): helmops never copies such secrets to other clusters", ref.Name, corev1.SecretTypeServiceAccountToken)}
	case obj.GetLabels()[v1alpha1.ManagedLabel] == "true":
		got = source{reason: v1alpha1.ReasonDownstreamResourceRefused,
			refuse: fmt.Sprintf("%s %q was created by helmops for its own use (label %s=true) and is never copied", ref.Kind, ref.Name, v1alpha1.ManagedLabel)}
	default:
		got = source{obj: obj}
	}
	s.sources[ref] = got
	return got, nil
}

func isServiceAccountToken(obj client.Object) bool {
	s, ok := obj.(*corev1.Secret)
	return ok && s.Type == corev1.SecretTypeServiceAccountToken
}

// downstreamCopy is the copy of an entry's source in a cluster namespace: the whole content
// (and a Secret's type), labels and annotations of the source left out.
func downstreamCopy(ref downstreamres.Ref, src client.Object) copied {
	c := copied{what: "downstream resource " + ref.Kind + " " + ref.Name, gvk: gvkOf(ref), source: src, purpose: ref.String()}
	meta := metav1.ObjectMeta{Name: ref.CopyName()}
	switch o := src.(type) {
	case *corev1.Secret:
		c.obj = &corev1.Secret{ObjectMeta: meta, Type: o.Type, Data: o.Data}
		c.annotations = map[string]string{SourceSecretTypeAnnotation: string(o.Type)}
	case *corev1.ConfigMap:
		c.obj = &corev1.ConfigMap{ObjectMeta: meta, Data: o.Data, BinaryData: o.BinaryData}
	}
	return c
}

// downstreamCopies reads the sources of a placement's downstreamResources and returns their
// copies, or the problem that keeps this cluster's deployment as it is (naming the cluster and
// the entry's field in the Bundle's spec).
func (r *Reconciler) downstreamCopies(ctx context.Context, s *scope, cluster string, opts v1alpha1.BundleDeploymentOptions) ([]copied, *clusterProblem, error) {
	refs, err := downstreamres.Refs(opts.DownstreamResources)
	if err != nil {
		// Validated with the Bundle's spec in place; kept for safety.
		return nil, &clusterProblem{reason: v1alpha1.ReasonInvalidSpec, err: fmt.Errorf("cluster %s: %w", cluster, err)}, nil
	}
	out := make([]copied, 0, len(refs))
	for _, ref := range refs {
		src, err := r.readSource(ctx, s, ref)
		if err != nil {
			return nil, nil, err
		}
		if src.obj == nil {
			path := downstreamres.Path(s.b.Spec.BundleDeploymentOptions, s.b.Spec.Targets, ref)
			return nil, &clusterProblem{reason: src.reason, err: fmt.Errorf("cluster %s: %s: %s", cluster, path, src.refuse)}, nil
		}
		out = append(out, downstreamCopy(ref, src.obj))
	}
	return out, nil, nil
}

// copyDownstream writes the copies next to the BundleDeployment and releases the copies of
// entries it no longer names. A copy blocked by an object helmops does not manage is this
// cluster's problem; any other failure is returned.
func (r *Reconciler) copyDownstream(ctx context.Context, s *scope, bd, current *v1alpha1.BundleDeployment, copies []copied) (*clusterProblem, error) {
	keep := map[string]bool{}
	var problem *clusterProblem
	var errs []error
	for _, c := range copies {
		keep[c.purpose] = true
		if err := r.ensureCopy(ctx, c, bd); err != nil {
			var fe *foreignCopyError
			if errors.As(err, &fe) && problem == nil {
				ref := refOf(c)
				path := downstreamres.Path(s.b.Spec.BundleDeploymentOptions, s.b.Spec.Targets, ref)
				problem = &clusterProblem{reason: v1alpha1.ReasonDownstreamResourceRefused,
					err: fmt.Errorf("cluster %s: %s: %w", bd.Labels[v1alpha1.ClusterLabel], path, err)}
				continue
			}
			errs = append(errs, err)
		}
	}
	if current != nil && current != bd {
		if err := r.releaseDownstreamCopies(ctx, current, keep); err != nil {
			errs = append(errs, err)
		}
	}
	return problem, errors.Join(errs...)
}

func refOf(c copied) downstreamres.Ref {
	return downstreamres.Ref{Kind: c.gvk.Kind, Name: c.source.GetName()}
}

// releaseDownstreamCopies releases the copies of the BundleDeployment's downstreamResources
// whose entries are not kept ("Secret/<name>" keys).
func (r *Reconciler) releaseDownstreamCopies(ctx context.Context, bd *v1alpha1.BundleDeployment, keep map[string]bool) error {
	refs, err := downstreamres.Refs(bd.Spec.Options.DownstreamResources)
	if err != nil {
		return nil // never copied
	}
	var errs []error
	for _, ref := range refs {
		if keep[ref.String()] {
			continue
		}
		if err := r.releaseCopy(ctx, gvkOf(ref), bd.Namespace, ref.CopyName(), ref.String(), bd.UID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// markDeployment writes the Targeted condition of a BundleDeployment: False with the reason and
// message while this controller cannot update the deployment, absent otherwise (so deployments
// that are fine cost no write). The patch carries the resourceVersion read, so it never drops
// what the agent wrote meanwhile; on a conflict the agent's write brings the Bundle back here.
func (r *Reconciler) markDeployment(ctx context.Context, bd *v1alpha1.BundleDeployment, problem *clusterProblem) error {
	if bd == nil || bd.UID == "" {
		return nil
	}
	before := bd.DeepCopy()
	if problem == nil {
		meta.RemoveStatusCondition(&bd.Status.Conditions, v1alpha1.TargetedCondition)
	} else {
		lifecycle.SetCondition(&bd.Status.Conditions, bd.Generation, v1alpha1.TargetedCondition, metav1.ConditionFalse,
			problem.reason, problem.Error(), r.Clock.Now())
	}
	if equality.Semantic.DeepEqual(before.Status.Conditions, bd.Status.Conditions) {
		return nil
	}
	err := r.Client.Status().Patch(ctx, bd, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	switch {
	case err == nil || apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		ctrl.LoggerFrom(ctx).V(1).Info("BundleDeployment changed while its Targeted condition was written; the change brings the Bundle back", "BundleDeployment", klog.KObj(bd))
		return nil
	}
	return fmt.Errorf("writing the Targeted condition of BundleDeployment %s: %w", klog.KObj(bd), err)
}

// bundlesForSource maps a Secret or ConfigMap (metadata only) to the Bundles of its namespace
// that name it (helmSecretName, downstreamResources) and, for copies, to the Bundles of the
// BundleDeployments that own them, so a deleted or edited copy is restored.
func (r *Reconciler) bundlesForSource(kind string) func(ctx context.Context, o client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var out []reconcile.Request
		if kind == downstreamres.KindSecret {
			list := &v1alpha1.BundleList{}
			if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()),
				client.MatchingFields{secretNameIndex: o.GetName()}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Listing Bundles that name a Secret", "Secret", klog.KObj(o))
				return nil
			}
			out = r.requests(list.Items)
		}
		list := &v1alpha1.BundleList{}
		key := downstreamres.Ref{Kind: kind, Name: o.GetName()}.String()
		if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{downstreamIndex: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing Bundles that name a downstream resource", kind, klog.KObj(o))
			return out
		}
		out = append(out, r.requests(list.Items)...)
		if o.GetLabels()[v1alpha1.ManagedLabel] != "true" {
			return out
		}
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
}
