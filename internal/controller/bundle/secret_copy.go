package bundle

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
)

// foreignSecretError is a secret in a cluster namespace with the copy's name that helmops did
// not create; it is never overwritten.
type foreignSecretError struct{ namespace, name string }

func (e *foreignSecretError) Error() string {
	return fmt.Sprintf("cannot copy the repository secret: secret %s/%s exists and is not managed by helmops (label %s=true); delete it so the copy can be written",
		e.namespace, e.name, v1alpha1.ManagedLabel)
}

func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

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

// ensureCopy writes the source secret into the BundleDeployment's namespace under the same name:
// type fleet.cattle.io/bundle-helmops-access/v1alpha1, label fleet.cattle.io/managed=true, owned
// by the BundleDeployment (and by every other BundleDeployment in that namespace that uses the
// same secret). It compares through the metadata cache and writes only when the source changed
// or the owner is missing; secret data is never cached.
func (r *Reconciler) ensureCopy(ctx context.Context, src *corev1.Secret, bd *v1alpha1.BundleDeployment) error {
	key := client.ObjectKey{Namespace: bd.Namespace, Name: src.Name}
	current := secretMetadata()
	err := r.Client.Get(ctx, key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading secret copy %s: %w", key, err)
	}
	found := err == nil
	if found && current.Labels[v1alpha1.ManagedLabel] != "true" {
		return &foreignSecretError{namespace: key.Namespace, name: key.Name}
	}
	if found && current.Annotations[sourceVersionAnnotation] == src.ResourceVersion && hasOwner(current.OwnerReferences, bd.UID) {
		return nil
	}
	copied := secretCopy(src, bd)
	log := ctrl.LoggerFrom(ctx).WithValues("Secret", klog.KObj(copied), "BundleDeployment", klog.KObj(bd))
	if !found {
		log.Info("Copying repository secret into the cluster namespace")
		if err := r.Client.Create(ctx, copied); err != nil {
			return fmt.Errorf("copying secret %s/%s to %s: %w", src.Namespace, src.Name, key, err)
		}
		return nil
	}
	keepOthers(copied, current, bd.UID)
	log.Info("Updating repository secret copy")
	if err := r.Client.Update(ctx, copied); err != nil {
		return fmt.Errorf("updating secret copy %s from %s/%s: %w", key, src.Namespace, src.Name, err)
	}
	return nil
}

// secretCopy is the copy of src that bd's namespace gets, owned by bd.
func secretCopy(src *corev1.Secret, bd *v1alpha1.BundleDeployment) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: src.Name, Namespace: bd.Namespace,
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"},
			Annotations: map[string]string{
				sourceVersionAnnotation:    src.ResourceVersion,
				SourceSecretTypeAnnotation: string(src.Type),
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(bd)},
		},
		Type: v1alpha1.SecretTypeHelmOpsAccess,
		Data: copiedData(src),
	}
}

// keepOthers carries over to an updated copy what the current one holds for others: labels
// the copy does not set, the other BundleDeployments among its owners, and its resourceVersion.
func keepOthers(copied *corev1.Secret, current *metav1.PartialObjectMetadata, owner types.UID) {
	for k, v := range current.Labels {
		if _, ok := copied.Labels[k]; !ok {
			copied.Labels[k] = v
		}
	}
	for _, ref := range current.OwnerReferences {
		if ref.UID != owner {
			copied.OwnerReferences = append(copied.OwnerReferences, ref)
		}
	}
	copied.ResourceVersion = current.ResourceVersion
}

// releaseCopy removes the BundleDeployment from the owners of a copied secret and deletes the
// copy when no owner is left. Secrets helmops does not manage are left alone.
func (r *Reconciler) releaseCopy(ctx context.Context, namespace, name string, uid types.UID) error {
	current := secretMetadata()
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, current); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading secret copy %s/%s: %w", namespace, name, err)
	}
	if current.Labels[v1alpha1.ManagedLabel] != "true" || !hasOwner(current.OwnerReferences, uid) {
		return nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("Secret", klog.KRef(namespace, name))
	remaining := slices.DeleteFunc(slices.Clone(current.OwnerReferences), func(r metav1.OwnerReference) bool { return r.UID == uid })
	if len(remaining) == 0 {
		log.Info("Deleting repository secret copy")
		err := r.Client.Delete(ctx, current, client.Preconditions{UID: &current.UID, ResourceVersion: &current.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting secret copy %s/%s: %w", namespace, name, err)
		}
		return nil
	}
	orig := current.DeepCopy()
	current.OwnerReferences = remaining
	if err := r.Client.Patch(ctx, current, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing secret copy %s/%s: %w", namespace, name, err)
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
