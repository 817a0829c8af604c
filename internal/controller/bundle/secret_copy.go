package bundle

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
)

// foreignCopyError is an object in a cluster namespace with the copy's name that helmops did not
// create, or created as the copy of something else; it is never overwritten.
type foreignCopyError struct {
	what, kind, namespace, name string
	// other is the annotation value of the copy that holds the name, "" when helmops does not
	// manage the object at all.
	other string
}

func (e *foreignCopyError) Error() string {
	if e.other != "" {
		return fmt.Sprintf("cannot copy the %s: %s %s/%s is the copy of %s; rename the source so the copies do not collide",
			e.what, strings.ToLower(e.kind), e.namespace, e.name, e.other)
	}
	return fmt.Sprintf("cannot copy the %s: %s %s/%s exists and is not managed by helmops (label %s=true); delete it so the copy can be written",
		e.what, strings.ToLower(e.kind), e.namespace, e.name, v1alpha1.ManagedLabel)
}

func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

var (
	secretGVK    = corev1.SchemeGroupVersion.WithKind("Secret")
	configMapGVK = corev1.SchemeGroupVersion.WithKind("ConfigMap")
)

func ownerRef(bd *v1alpha1.BundleDeployment) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       "BundleDeployment",
		Name:       bd.Name,
		UID:        bd.UID,
	}
}

func hasOwner(refs []metav1.OwnerReference, uid types.UID) bool {
	return slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == uid })
}

// copied is an object to copy into a BundleDeployment's namespace.
type copied struct {
	// what names the copy in logs and errors ("repository secret", "downstream resource Secret db").
	what string
	// obj is the copy (name and content set; namespace, labels, annotations and owners are set
	// by ensureCopy).
	obj client.Object
	// gvk is the copy's kind (Secret or ConfigMap).
	gvk schema.GroupVersionKind
	// source is the object copied; its resourceVersion decides whether the copy is current.
	source client.Object
	// purpose is the value of v1alpha1.DownstreamResourceAnnotation on the copy, "" for the
	// repository secret. A copy with another purpose is never overwritten.
	purpose string
	// annotations are added to the copy.
	annotations map[string]string
}

// repositorySecretCopy is the copy of the repository secret named by helmSecretName: type
// fleet.cattle.io/bundle-helmops-access/v1alpha1, only the keys helmops reads, the source's
// type in an annotation.
func repositorySecretCopy(src *corev1.Secret) copied {
	return copied{
		what: "repository secret", gvk: secretGVK, source: src,
		obj: &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: src.Name},
			Type:       v1alpha1.SecretTypeHelmOpsAccess,
			Data:       copiedData(src),
		},
		annotations: map[string]string{SourceSecretTypeAnnotation: string(src.Type)},
	}
}

// ensureCopy writes a copy into the BundleDeployment's namespace: label
// fleet.cattle.io/managed=true, owned by the BundleDeployment (and by every other
// BundleDeployment in that namespace that uses the same source). It compares through the
// metadata cache and writes only when the source changed or the owner is missing; the content
// of secrets is never cached.
func (r *Reconciler) ensureCopy(ctx context.Context, c copied, bd *v1alpha1.BundleDeployment) error {
	key := client.ObjectKey{Namespace: bd.Namespace, Name: c.obj.GetName()}
	current, found, err := r.readCopy(ctx, c, key)
	if err != nil {
		return err
	}
	srcVersion := c.source.GetResourceVersion()
	if found && current.Annotations[sourceVersionAnnotation] == srcVersion && hasOwner(current.OwnerReferences, bd.UID) {
		return nil
	}
	obj := c.desired(key.Namespace, bd)
	log := ctrl.LoggerFrom(ctx).WithValues(c.gvk.Kind, klog.KObj(obj), "BundleDeployment", klog.KObj(bd))
	switch {
	case !found:
		log.Info("Copying into the cluster namespace", "copy", c.what)
		return r.createCopy(ctx, c, obj)
	case c.typeChanged(current, obj):
		// A Secret's type cannot change: a source of another type replaces the copy.
		log.Info("Replacing the copy, the source's type changed", "copy", c.what)
		if err := r.Client.Delete(ctx, current, client.Preconditions{UID: &current.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replacing the %s copy %s: %w", c.what, key, err)
		}
		return r.createCopy(ctx, c, obj)
	}
	keepOthers(obj, current, bd.UID)
	log.Info("Updating the copy in the cluster namespace", "copy", c.what)
	if err := r.Client.Update(ctx, obj); err != nil {
		return fmt.Errorf("updating the %s copy %s from %s/%s: %w", c.what, key, c.source.GetNamespace(), c.source.GetName(), err)
	}
	return nil
}

// readCopy reads the metadata of the object holding the copy's name; found is false when there
// is none. An object helmops does not manage, or the copy of something else, is a
// foreignCopyError.
func (r *Reconciler) readCopy(ctx context.Context, c copied, key client.ObjectKey) (*metav1.PartialObjectMetadata, bool, error) {
	current := metadataOf(c.gvk)
	err := r.Client.Get(ctx, key, current)
	if apierrors.IsNotFound(err) {
		return current, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the %s copy %s: %w", c.what, key, err)
	}
	if current.Labels[v1alpha1.ManagedLabel] != "true" {
		return nil, false, &foreignCopyError{what: c.what, kind: c.gvk.Kind, namespace: key.Namespace, name: key.Name}
	}
	if other := current.Annotations[v1alpha1.DownstreamResourceAnnotation]; other != c.purpose {
		return nil, false, &foreignCopyError{what: c.what, kind: c.gvk.Kind, namespace: key.Namespace, name: key.Name, other: orDefault(other, "a repository secret")}
	}
	return current, true, nil
}

// desired is the copy as it should be in namespace: managed label, the source's
// resourceVersion and the copy's purpose in annotations, owned by bd.
func (c copied) desired(namespace string, bd *v1alpha1.BundleDeployment) client.Object {
	obj := c.obj
	obj.SetNamespace(namespace)
	obj.SetLabels(map[string]string{v1alpha1.ManagedLabel: "true"})
	annotations := map[string]string{sourceVersionAnnotation: c.source.GetResourceVersion()}
	for k, v := range c.annotations {
		annotations[k] = v
	}
	if c.purpose != "" {
		annotations[v1alpha1.DownstreamResourceAnnotation] = c.purpose
	}
	obj.SetAnnotations(annotations)
	obj.SetOwnerReferences([]metav1.OwnerReference{ownerRef(bd)})
	return obj
}

// typeChanged tells whether a downstream Secret's copy must be replaced because its source's
// type changed.
func (c copied) typeChanged(current *metav1.PartialObjectMetadata, obj client.Object) bool {
	return current.Annotations[SourceSecretTypeAnnotation] != obj.GetAnnotations()[SourceSecretTypeAnnotation] &&
		c.purpose != "" && c.gvk == secretGVK
}

func (r *Reconciler) createCopy(ctx context.Context, c copied, obj client.Object) error {
	if err := r.Client.Create(ctx, obj); err != nil {
		return fmt.Errorf("copying the %s %s/%s to %s: %w", c.what, c.source.GetNamespace(), c.source.GetName(), client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// keepOthers carries over to obj the labels it does not set and the owners other than uid of
// the copy that exists, and its resourceVersion for the update.
func keepOthers(obj client.Object, current *metav1.PartialObjectMetadata, uid types.UID) {
	labels := obj.GetLabels()
	for k, v := range current.Labels {
		if _, ok := labels[k]; !ok {
			labels[k] = v
		}
	}
	obj.SetLabels(labels)
	owners := obj.GetOwnerReferences()
	for _, ref := range current.OwnerReferences {
		if ref.UID != uid {
			owners = append(owners, ref)
		}
	}
	obj.SetOwnerReferences(owners)
	obj.SetResourceVersion(current.ResourceVersion)
}

// releaseCopy removes the BundleDeployment from the owners of a copy and deletes the copy when
// no owner is left. Objects helmops does not manage, and copies made for another purpose
// (v1alpha1.DownstreamResourceAnnotation, "" for the repository secret), are left alone.
func (r *Reconciler) releaseCopy(ctx context.Context, gvk schema.GroupVersionKind, namespace, name, purpose string, uid types.UID) error {
	current := metadataOf(gvk)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, current); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading the copy %s/%s: %w", namespace, name, err)
	}
	if current.Labels[v1alpha1.ManagedLabel] != "true" || !hasOwner(current.OwnerReferences, uid) ||
		current.Annotations[v1alpha1.DownstreamResourceAnnotation] != purpose {
		return nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues(gvk.Kind, klog.KRef(namespace, name))
	remaining := slices.DeleteFunc(slices.Clone(current.OwnerReferences), func(r metav1.OwnerReference) bool { return r.UID == uid })
	if len(remaining) == 0 {
		log.Info("Deleting the copy in the cluster namespace")
		err := r.Client.Delete(ctx, current, client.Preconditions{UID: &current.UID, ResourceVersion: &current.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the copy %s/%s: %w", namespace, name, err)
		}
		return nil
	}
	orig := current.DeepCopy()
	current.OwnerReferences = remaining
	if err := r.Client.Patch(ctx, current, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing the copy %s/%s: %w", namespace, name, err)
	}
	return nil
}

// copiedData is the part of a source secret that is copied: the keys helmops reads
// (chartsource.SecretKeys), nothing else the secret may hold.
func copiedData(src *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	for _, k := range chartsource.SecretKeys {
		if v, ok := src.Data[k]; ok {
			out[k] = v
		}
	}
	return out
}
