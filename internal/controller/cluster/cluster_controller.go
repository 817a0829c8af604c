// Package cluster reconciles Clusters and ClusterGroups: each Cluster gets a dedicated cluster
// namespace on the management cluster (holding its BundleDeployments and copied secrets), a
// Ready condition from its agent's heartbeat and a summary of its BundleDeployments; each
// ClusterGroup counts its clusters. Bootstrap creates the local cluster of fleet-local.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/shard"
)

// DefaultAgentTimeout is how long a cluster stays Ready after its agent's last heartbeat when
// AgentTimeout is 0.
const DefaultAgentTimeout = time.Minute

// namespaceRetry re-checks a cluster namespace that is still being deleted.
const namespaceRetry = 5 * time.Second

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
}

// SetupWithManager registers two controllers: "cluster" (Clusters; their BundleDeployments and
// cluster namespaces mapped back by labels) and "clustergroup" (ClusterGroups; Clusters mapped to
// the groups of their namespace).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("cluster").
		For(&v1alpha1.Cluster{}, builder.WithPredicates(shard.Predicate(r.ShardID))).
		Watches(&v1alpha1.BundleDeployment{}, handler.EnqueueRequestsFromMapFunc(clusterOfLabelled)).
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
func NamespaceName(workspace, cluster string) string {
	sum := sha256.Sum256([]byte(workspace + "/" + cluster))
	hash := hex.EncodeToString(sum[:])[:12]
	readable := sanitize("cluster-" + workspace + "-" + cluster)
	if max := 63 - len(hash) - 1; len(readable) > max {
		readable = strings.TrimRight(readable[:max], "-")
	}
	return readable + "-" + hash
}

func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			b[i] = '-'
		}
	}
	return string(b)
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
		return ctrl.Result{}, r.finalize(ctx, c)
	}
	if !controllerutil.ContainsFinalizer(c, v1alpha1.ClusterFinalizer) {
		orig := c.DeepCopy()
		controllerutil.AddFinalizer(c, v1alpha1.ClusterFinalizer)
		if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
	}

	orig := c.DeepCopy()
	f := &facts{now: r.Clock.Now(), timeout: r.AgentTimeout}
	defer func() {
		setStatus(c, f)
		if equality.Semantic.DeepEqual(orig.Status, c.Status) {
			return
		}
		// A merge patch of the fields that changed: only this reconciler's fields change here,
		// so the agent's heartbeat (status.agent) is never overwritten.
		if err := r.Client.Status().Patch(ctx, c, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("writing the status of Cluster %s/%s: %w", c.Namespace, c.Name, err))
		}
	}()

	res, err := r.ensureNamespace(ctx, c, f)
	if err != nil || f.namespace == "" {
		return res, err
	}
	bds := &v1alpha1.BundleDeploymentList{}
	if err := r.Client.List(ctx, bds, client.InNamespace(f.namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the BundleDeployments of Cluster %s/%s in %s: %w", c.Namespace, c.Name, f.namespace, err)
	}
	f.deployments = bds.Items
	if after := AgentRequeue(c.Status.Agent.LastSeen, f.now, f.timeout); after > 0 && (res.RequeueAfter == 0 || after < res.RequeueAfter) {
		res.RequeueAfter = after
	}
	return res, nil
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
// namespace of that name that belongs to something else is never adopted.
func (r *Reconciler) ensureNamespace(ctx context.Context, c *v1alpha1.Cluster, f *facts) (ctrl.Result, error) {
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
		f.namespace = name
		return ctrl.Result{}, r.grantAgent(ctx, c, ns)
	case err != nil:
		return ctrl.Result{}, err
	}
	if !ownsNamespace(c, ns) {
		f.namespaceErr = fmt.Errorf("namespace %s exists and does not belong to Cluster %s/%s (labels %s=true, %s=%s, %s=%s expected); delete or relabel it",
			name, c.Namespace, c.Name, v1alpha1.ManagedLabel, v1alpha1.ClusterLabel, c.Name, v1alpha1.ClusterNamespaceLabel, c.Namespace)
		return ctrl.Result{}, nil
	}
	if !ns.DeletionTimestamp.IsZero() {
		f.namespaceWaiting = fmt.Sprintf("cluster namespace %s is being deleted; it is created again once gone", name)
		return ctrl.Result{RequeueAfter: namespaceRetry}, nil
	}
	f.namespace = name
	return ctrl.Result{}, r.grantAgent(ctx, c, ns)
}

func namespaceLabels(c *v1alpha1.Cluster) map[string]string {
	return map[string]string{
		v1alpha1.ManagedLabel:          "true",
		v1alpha1.ClusterLabel:          c.Name,
		v1alpha1.ClusterNamespaceLabel: c.Namespace,
	}
}

func ownsNamespace(c *v1alpha1.Cluster, ns *corev1.Namespace) bool {
	want := namespaceLabels(c)
	for k, v := range want {
		if ns.Labels[k] != v {
			return false
		}
	}
	return true
}

// finalize deletes the cluster namespace (its BundleDeployments and copied secrets go with it)
// and removes the finalizer. It does not wait for the namespace to be gone: BundleDeployments
// keep it until their agent removes its own finalizer.
func (r *Reconciler) finalize(ctx context.Context, c *v1alpha1.Cluster) error {
	if !controllerutil.ContainsFinalizer(c, v1alpha1.ClusterFinalizer) {
		return nil
	}
	name := NamespaceName(c.Namespace, c.Name)
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case err == nil && ownsNamespace(c, ns) && ns.DeletionTimestamp.IsZero():
		ctrl.LoggerFrom(ctx).Info("Deleting cluster namespace", "Cluster", klog.KObj(c), "namespace", name)
		if err := r.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting namespace %s of Cluster %s/%s: %w", name, c.Namespace, c.Name, err)
		}
	case err != nil && !apierrors.IsNotFound(err):
		return err
	}
	orig := c.DeepCopy()
	controllerutil.RemoveFinalizer(c, v1alpha1.ClusterFinalizer)
	if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
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
		return !maps.Equal(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Status.Summary, n.Status.Summary) ||
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
