package cluster

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/lifecycle"
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
	patch := lifecycle.Snapshot(r.Client, g)
	s := &groupScope{g: g}
	defer func() {
		retErr = patch.Status(ctx, g, retErr, func(err error) {
			if !lifecycle.IsTransient(err) { // a failed list leaves the counts as they were
				setGroupStatus(g, s.members, s.selErr)
			}
		})
	}()
	return lifecycle.Run(ctx, s, lifecycle.Step[*groupScope]{Name: "members", Run: r.members})
}

// groupScope is one reconcile of one ClusterGroup.
type groupScope struct {
	g       *v1alpha1.ClusterGroup
	members []v1alpha1.Cluster
	selErr  error
}

// members finds the live Clusters of the group's namespace its selector matches.
func (r *groupReconciler) members(ctx context.Context, s *groupScope) (ctrl.Result, error) {
	clusters := &v1alpha1.ClusterList{}
	if err := r.Client.List(ctx, clusters, client.InNamespace(s.g.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the Clusters of namespace %s: %w", s.g.Namespace, err)
	}
	_, s.selErr = targeting.GroupSelector(s.g)
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if c.DeletionTimestamp.IsZero() && targeting.InGroup(s.g, c) {
			s.members = append(s.members, *c)
		}
	}
	return ctrl.Result{}, nil
}
