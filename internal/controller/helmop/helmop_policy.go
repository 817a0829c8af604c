package helmop

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/policy"
)

// checkPolicy applies the defaults of the namespace's Policies and refuses a HelmOp that breaks
// one of them before anything is read or fetched for it: a refused HelmOp leaves its Bundle as it
// was. The refusal is terminal until the HelmOp or a Policy changes (both bring it back).
func (r *Reconciler) checkPolicy(ctx context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	list := &v1alpha1.PolicyList{}
	if err := r.Client.List(ctx, list, client.InNamespace(op.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the Policies of namespace %s: %w", op.Namespace, err)
	}
	set := policy.Merge(op.Namespace, list.Items)
	if set == nil {
		return ctrl.Result{}, nil
	}
	s.defaults = set.Defaults
	effective := op.Spec.DeepCopy()
	s.defaults.Apply(effective)
	if v := set.Check(effective); v != nil {
		s.policyErr = v
		if !acceptedSays(op, v.Error()) {
			r.Recorder.Event(op, corev1.EventTypeWarning, v1alpha1.ReasonPolicyViolation, v.Error())
		}
		return ctrl.Result{}, reconcile.TerminalError(v)
	}
	return ctrl.Result{}, nil
}

// secretName is spec.helmSecretName, or the Policies' default when it is empty.
func (s *scope) secretName() string {
	if n := s.op.Spec.HelmSecretName; n != "" {
		return n
	}
	return s.defaults.HelmSecretName
}

// secretField names where the secret a HelmOp uses comes from.
func secretField(op *v1alpha1.HelmOp) string {
	if op.Spec.HelmSecretName != "" {
		return "spec.helmSecretName"
	}
	return "helmOp.defaultHelmSecretName of the namespace's Policies"
}

// helmOpsOfPolicy are the HelmOps of a Policy's namespace: a Policy that changes may allow or
// refuse any of them.
func (r *Reconciler) helmOpsOfPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.HelmOpList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the HelmOps of a Policy's namespace", "Policy", klog.KObj(o))
		return nil
	}
	return r.requestsFor(list.Items, func(*v1alpha1.HelmOp) bool { return true })
}

// helmOpsUsingDefaultSecret are the HelmOps that name no secret in a namespace whose Policies
// make the secret o their default.
func (r *Reconciler) helmOpsUsingDefaultSecret(ctx context.Context, o client.Object) []reconcile.Request {
	policies := &v1alpha1.PolicyList{}
	if err := r.Client.List(ctx, policies, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the Policies of a secret's namespace", "secret", klog.KObj(o))
		return nil
	}
	set := policy.Merge(o.GetNamespace(), policies.Items)
	if set == nil || set.Defaults.HelmSecretName != o.GetName() {
		return nil
	}
	list := &v1alpha1.HelmOpList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing HelmOps that use a default secret", "secret", klog.KObj(o))
		return nil
	}
	return r.requestsFor(list.Items, func(op *v1alpha1.HelmOp) bool { return op.Spec.HelmSecretName == "" })
}

func (r *Reconciler) requestsFor(items []v1alpha1.HelmOp, keep func(*v1alpha1.HelmOp) bool) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for i := range items {
		if shard.Matches(&items[i], r.ShardID) && keep(&items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&items[i])})
		}
	}
	return out
}
