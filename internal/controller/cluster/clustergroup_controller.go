package cluster

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/targeting"
)

// groupReconciler writes ClusterGroup status; Reconciler.SetupWithManager registers it.
type groupReconciler struct {
	Client  client.Client
	ShardID string
}

func (r *groupReconciler) groupsInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.ClusterGroupList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing ClusterGroups to reconcile", "namespace", o.GetNamespace())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		if shard.Matches(&list.Items[i], r.ShardID) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

// Reconcile counts the group's clusters.
func (r *groupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	g := &v1alpha1.ClusterGroup{}
	if err := r.Client.Get(ctx, req.NamespacedName, g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !shard.Matches(g, r.ShardID) || !g.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	clusters := &v1alpha1.ClusterList{}
	if err := r.Client.List(ctx, clusters, client.InNamespace(g.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the Clusters of namespace %s: %w", g.Namespace, err)
	}
	_, selErr := targeting.GroupSelector(g)
	var members []v1alpha1.Cluster
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if c.DeletionTimestamp.IsZero() && targeting.InGroup(g, c) {
			members = append(members, *c)
		}
	}
	orig := g.DeepCopy()
	setGroupStatus(g, members, selErr)
	if equality.Semantic.DeepEqual(orig.Status, g.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Client.Status().Patch(ctx, g, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
		retErr = errors.Join(retErr, fmt.Errorf("writing the status of ClusterGroup %s/%s: %w", g.Namespace, g.Name, err))
	}
	return ctrl.Result{}, retErr
}
