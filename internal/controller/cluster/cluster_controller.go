// Package cluster reconciles Clusters and ClusterGroups: each Cluster gets a dedicated cluster
// namespace on the management cluster (holding its BundleDeployments and copied secrets), a
// Ready condition from its agent's heartbeat and a summary of its BundleDeployments; each
// ClusterGroup counts its clusters. Bootstrap creates the local cluster of fleet-local.
package cluster

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/redact"
	"github.com/helmops/helmops/internal/version"
)

// DefaultAgentTimeout is how long a cluster stays Ready after its agent's last heartbeat when
// AgentTimeout is 0.
const DefaultAgentTimeout = time.Minute

// namespaceRetry re-checks a cluster namespace that is still being deleted.
const namespaceRetry = 5 * time.Second

// DefaultUninstallTimeout is how long a cluster namespace being deleted waits for the agent to
// uninstall its BundleDeployments when UninstallTimeout is 0.
const DefaultUninstallTimeout = 10 * time.Minute

// Reconciler reconciles Clusters and, through SetupWithManager, ClusterGroups.
type Reconciler struct {
	Client client.Client
	// ShardID is the shard this controller handles ("" for objects without a shard label).
	ShardID string
	// Clock decides whether the agent's heartbeat is recent; default the real clock.
	Clock clock.PassiveClock
	// AgentTimeout is how long after its last heartbeat a cluster stays Ready; default
	// DefaultAgentTimeout.
	AgentTimeout time.Duration
	// UninstallTimeout is how long a cluster namespace being deleted waits for the agent to
	// uninstall its BundleDeployments before it releases them; default DefaultUninstallTimeout.
	UninstallTimeout time.Duration
	// Workers is the number of concurrent reconciles; default 1.
	Workers int
	// Version is the controller's helmops version, which agents are compared with (the
	// AgentUpToDate condition); default the running binary's.
	Version string
}

// SetupWithManager registers two controllers: "cluster" (Clusters; their BundleDeployments and
// cluster namespaces mapped back by labels) and "clustergroup" (ClusterGroups; Clusters mapped to
// the groups of their namespace).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("cluster").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&v1alpha1.Cluster{}, builder.WithPredicates(shard.Predicate(r.ShardID))).
		Watches(&v1alpha1.BundleDeployment{}, lifecycle.Batched(lifecycle.SummaryDelay, clusterOfLabelled)).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.clusterOfLease),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == clusterns.AgentLease }))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(clusterOfLabelled),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetLabels()[v1alpha1.ManagedLabel] == "true"
			}))).
		Complete(r); err != nil {
		return err
	}
	g := &groupReconciler{Client: r.Client, ShardID: r.ShardID}
	return ctrl.NewControllerManagedBy(mgr).
		Named("clustergroup").
		For(&v1alpha1.ClusterGroup{}, builder.WithPredicates(shard.Predicate(r.ShardID))).
		Watches(&v1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(g.groupsInNamespace),
			builder.WithPredicates(groupInputsChanged())).
		Complete(g)
}

func (r *Reconciler) defaults() {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.AgentTimeout <= 0 {
		r.AgentTimeout = DefaultAgentTimeout
	}
	if r.UninstallTimeout <= 0 {
		r.UninstallTimeout = DefaultUninstallTimeout
	}
	if r.Version == "" {
		r.Version = version.Get().Version
	}
}

// clusterOfLease maps an agent's heartbeat Lease to its Cluster through the labels of the
// Lease's namespace, which only the controller writes (the agent may rewrite its Lease's own).
func (r *Reconciler) clusterOfLease(ctx context.Context, o client.Object) []reconcile.Request {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: o.GetNamespace()}, ns); err != nil {
		return nil
	}
	reqs := clusterOfLabelled(ctx, ns)
	if len(reqs) == 1 && !clusterns.Owns(reqs[0].Namespace, reqs[0].Name, ns) {
		return nil
	}
	return reqs
}

// clusterOfLabelled maps a BundleDeployment or a cluster namespace to its Cluster by the labels
// fleet.cattle.io/cluster and fleet.cattle.io/cluster-namespace.
func clusterOfLabelled(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	name, ns := l[v1alpha1.ClusterLabel], l[v1alpha1.ClusterNamespaceLabel]
	if name == "" || ns == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}}
}

// NamespaceName is the cluster namespace of a Cluster: cluster-<workspace>-<cluster>-<hash>,
// where hash is the first 12 hex digits of sha256("<workspace>/<cluster>"). Characters a
// namespace name cannot hold become "-", and the readable part is shortened so the whole stays
// within 63 characters; the hash keeps names unique.
func NamespaceName(workspace, cluster string) string { return clusterns.Name(workspace, cluster) }

// scope is one reconcile of one Cluster.
type scope struct {
	c *v1alpha1.Cluster
	facts
}

// Reconcile ensures the cluster namespace and writes the Cluster's status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	r.defaults()
	c := &v1alpha1.Cluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !shard.Matches(c, r.ShardID) {
		return ctrl.Result{}, nil
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, c)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, c, v1alpha1.ClusterFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	// A merge patch of the fields that changed: only this reconciler's fields change here, so
	// the agent's heartbeat (status.agent) is never overwritten.
	patch := lifecycle.Snapshot(r.Client, c)
	s := &scope{c: c, facts: facts{now: r.Clock.Now(), timeout: r.AgentTimeout, version: r.Version}}
	defer func() {
		retErr = patch.Status(ctx, c, retErr, func(err error) { setStatus(c, &s.facts, err) })
	}()
	return lifecycle.Run(ctx, s,
		lifecycle.Step[*scope]{Name: "namespace", Run: r.ensureNamespace},
		lifecycle.Step[*scope]{Name: "deployments", Run: r.readDeployments},
		lifecycle.Step[*scope]{Name: "heartbeat", Run: r.heartbeatRequeue},
	)
}

// readDeployments lists the BundleDeployments of the cluster namespace for the summary.
func (r *Reconciler) readDeployments(ctx context.Context, s *scope) (ctrl.Result, error) {
	bds := &v1alpha1.BundleDeploymentList{}
	if err := r.Client.List(ctx, bds, client.InNamespace(s.namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the BundleDeployments of Cluster %s/%s in %s: %w", s.c.Namespace, s.c.Name, s.namespace, err)
	}
	s.deployments, s.listed = bds.Items, true
	return ctrl.Result{}, nil
}

// heartbeatRequeue reads the agent's heartbeat, its Lease in the cluster namespace (the only
// object the agent writes besides its BundleDeployments' status), into status.agent, and comes
// back when the heartbeat goes stale.
func (r *Reconciler) heartbeatRequeue(ctx context.Context, s *scope) (ctrl.Result, error) {
	if s.namespace != "" {
		lease := &coordinationv1.Lease{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: clusterns.AgentLease}, lease)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading the heartbeat Lease of Cluster %s/%s: %w", s.c.Namespace, s.c.Name, err)
		case lease.Spec.RenewTime != nil:
			seen := metav1.NewTime(lease.Spec.RenewTime.Time)
			if s.c.Status.Agent.LastSeen == nil || !s.c.Status.Agent.LastSeen.Equal(&seen) {
				s.c.Status.Agent.LastSeen = &seen
			}
			// The version is the agent's to say, shown only: bounded.
			s.c.Status.Agent.Version = redact.Truncate(lease.Annotations[clusterns.AgentVersionAnnotation], 64)
		}
	}
	return ctrl.Result{RequeueAfter: AgentRequeue(s.c.Status.Agent.LastSeen, s.now, s.timeout)}, nil
}

// AgentRequeue is how long until a fresh heartbeat goes stale (plus a second, so the clock has
// passed it), or 0 when there is none or it is already stale.
func AgentRequeue(lastSeen *metav1.Time, now time.Time, timeout time.Duration) time.Duration {
	if lastSeen == nil {
		return 0
	}
	left := lastSeen.Add(timeout).Sub(now)
	if left < 0 {
		return 0
	}
	return left + time.Second
}

// ensureNamespace creates the cluster namespace when missing and records it in the facts. A
// namespace of that name that belongs to something else is never adopted; one still being deleted
// is waited for (see releaseDeployments).
func (r *Reconciler) ensureNamespace(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := s.c
	name := NamespaceName(c.Namespace, c.Name)
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: namespaceLabels(c)}}
		ctrl.LoggerFrom(ctx).Info("Creating cluster namespace", "Cluster", klog.KObj(c), "namespace", name)
		if err := r.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("creating namespace %s for Cluster %s/%s: %w", name, c.Namespace, c.Name, err)
		}
		s.namespace = name
		return ctrl.Result{}, r.grantAgent(ctx, c, ns)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading namespace %s of Cluster %s/%s: %w", name, c.Namespace, c.Name, err)
	}
	if !ownsNamespace(c, ns) {
		s.namespaceErr = fmt.Errorf("namespace %s exists and does not belong to Cluster %s/%s (labels %s=true, %s=%s, %s=%s expected); delete or relabel it",
			name, c.Namespace, c.Name, v1alpha1.ManagedLabel, v1alpha1.ClusterLabel, c.Name, v1alpha1.ClusterNamespaceLabel, c.Namespace)
		return lifecycle.Halt(ctrl.Result{})
	}
	if !ns.DeletionTimestamp.IsZero() {
		msg, err := r.releaseDeployments(ctx, c, ns)
		if err != nil {
			return ctrl.Result{}, err
		}
		s.namespaceWaiting = fmt.Sprintf("cluster namespace %s is being deleted; it is created again once gone", name)
		if msg != "" {
			s.namespaceWaiting += ": " + msg
		}
		return lifecycle.Halt(ctrl.Result{RequeueAfter: namespaceRetry})
	}
	s.namespace = name
	return ctrl.Result{}, r.grantAgent(ctx, c, ns)
}

func namespaceLabels(c *v1alpha1.Cluster) map[string]string {
	return clusterns.Labels(c.Namespace, c.Name)
}

func ownsNamespace(c *v1alpha1.Cluster, ns *corev1.Namespace) bool {
	return clusterns.Owns(c.Namespace, c.Name, ns)
}

// finalize deletes the cluster namespace (its BundleDeployments and copied secrets go with it)
// and waits until it is gone, saying so in the Ready condition, before it removes the finalizer:
// the namespace's BundleDeployments keep it until their agent uninstalled them.
func (r *Reconciler) finalize(ctx context.Context, c *v1alpha1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, v1alpha1.ClusterFinalizer) {
		return ctrl.Result{}, nil
	}
	name := NamespaceName(c.Namespace, c.Name)
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case apierrors.IsNotFound(err) || err == nil && !ownsNamespace(c, ns):
		return ctrl.Result{}, lifecycle.RemoveFinalizer(ctx, r.Client, c, v1alpha1.ClusterFinalizer)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading namespace %s of Cluster %s/%s: %w", name, c.Namespace, c.Name, err)
	case ns.DeletionTimestamp.IsZero():
		ctrl.LoggerFrom(ctx).Info("Deleting cluster namespace", "Cluster", klog.KObj(c), "namespace", name)
		if err := r.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("deleting namespace %s of Cluster %s/%s: %w", name, c.Namespace, c.Name, err)
		}
		ns.DeletionTimestamp = &metav1.Time{Time: r.Clock.Now()}
	}
	msg, err := r.releaseDeployments(ctx, c, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	patch := lifecycle.Snapshot(r.Client, c)
	setCondition(&c.Status.Conditions, c.Generation, v1alpha1.ReadyCondition, false, v1alpha1.ReasonDeleting,
		orDefault(msg, "waiting for cluster namespace "+name+" to be deleted"), r.Clock.Now())
	return ctrl.Result{RequeueAfter: namespaceRetry}, patch.Status(ctx, c, nil, func(error) {})
}

// releaseDeployments handles a cluster namespace being deleted: its BundleDeployments hold it
// until their agent uninstalled them. It says what is waited for; once the namespace has been
// deleting for UninstallTimeout, the agent is taken to be gone for good: the BundleDeployments'
// finalizers are removed (their releases stay in the downstream cluster) and the log says so.
func (r *Reconciler) releaseDeployments(ctx context.Context, c *v1alpha1.Cluster, ns *corev1.Namespace) (string, error) {
	bds := &v1alpha1.BundleDeploymentList{}
	if err := r.Client.List(ctx, bds, client.InNamespace(ns.Name)); err != nil {
		return "", fmt.Errorf("listing the BundleDeployments in namespace %s: %w", ns.Name, err)
	}
	var held []string
	for i := range bds.Items {
		if controllerutil.ContainsFinalizer(&bds.Items[i], v1alpha1.BundleDeploymentFinalizer) {
			held = append(held, bds.Items[i].Name)
		}
	}
	if len(held) == 0 {
		return "", nil
	}
	waited := r.Clock.Since(ns.DeletionTimestamp.Time)
	if waited < r.UninstallTimeout {
		return fmt.Sprintf("waiting for the agent of cluster %s to uninstall %s (at most %s)", c.Name, strings.Join(held, ", "), r.UninstallTimeout), nil
	}
	ctrl.LoggerFrom(ctx).Info("Giving up waiting for the agent to uninstall; releasing its BundleDeployments",
		"Cluster", klog.KObj(c), "namespace", ns.Name, "waited", waited.Round(time.Second), "bundleDeployments", held)
	for i := range bds.Items {
		if err := lifecycle.RemoveFinalizer(ctx, r.Client, &bds.Items[i], v1alpha1.BundleDeploymentFinalizer); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("the agent of cluster %s did not uninstall %s within %s: released", c.Name, strings.Join(held, ", "), r.UninstallTimeout), nil
}

// groupInputsChanged admits Cluster changes a ClusterGroup's status depends on (labels, Ready,
// summary, deletion), not heartbeats alone.
func groupInputsChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.Cluster)
		n, ok2 := e.ObjectNew.(*v1alpha1.Cluster)
		if !ok1 || !ok2 {
			return true
		}
		oc, nc := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ReadyCondition), meta.FindStatusCondition(n.Status.Conditions, v1alpha1.ReadyCondition)
		return !maps.Equal(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Status.Summary, n.Status.Summary) || o.Status.ResourceCounts != n.Status.ResourceCounts ||
			!equality.Semantic.DeepEqual(condKey(oc), condKey(nc)) ||
			o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	}}
}

func condKey(c *metav1.Condition) [3]string {
	if c == nil {
		return [3]string{}
	}
	return [3]string{string(c.Status), c.Reason, c.Message}
}
