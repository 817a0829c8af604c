package cluster_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/controller/cluster"
)

func getCluster(g Gomega, ns, name string) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c)).To(Succeed())
	return c
}

func readyCondition(g Gomega, c *v1alpha1.Cluster) *metav1.Condition {
	cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition)
	g.Expect(cond).NotTo(BeNil())
	return cond
}

// heartbeat plays the agent: a merge patch of status.agent only.
func heartbeat(g Gomega, ns, name string, at time.Time) {
	c := getCluster(g, ns, name)
	orig := c.DeepCopy()
	c.Status.Agent = v1alpha1.AgentStatus{LastSeen: &metav1.Time{Time: at}, Version: "v9.9.9"}
	g.Expect(k8s.Status().Patch(context.Background(), c, client.MergeFrom(orig))).To(Succeed())
}

// touch changes a label so the cluster is reconciled now.
func touch(g Gomega, ns, name, value string) {
	g.Expect(retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		c := getCluster(g, ns, name)
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels["touched"] = value
		return k8s.Update(context.Background(), c)
	})).To(Succeed())
}

func TestClusterNamespaceAndReadyFromHeartbeat(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ws}})).To(Succeed())

	want := cluster.NamespaceName(ws, "edge")
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "edge")
		g.Expect(c.Status.Namespace).To(Equal(want))
		g.Expect(c.Finalizers).To(ContainElement(v1alpha1.ClusterFinalizer))
		cond := readyCondition(g, c)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonWaitingForAgent))
		g.Expect(c.Status.Display.ReadyBundles).To(Equal("0/0"))
		ns := &corev1.Namespace{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: want}, ns)).To(Succeed())
		g.Expect(ns.Labels).To(And(HaveKeyWithValue(v1alpha1.ManagedLabel, "true"),
			HaveKeyWithValue(v1alpha1.ClusterLabel, "edge"), HaveKeyWithValue(v1alpha1.ClusterNamespaceLabel, ws)))
	}, timeout, interval).Should(Succeed())

	heartbeat(g, ws, "edge", clock.Now())
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "edge")
		cond := readyCondition(g, c)
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonAgentSeen))
	}, timeout, interval).Should(Succeed())

	// The heartbeat goes stale on the controller's clock.
	clock.Step(2 * time.Minute)
	touch(g, ws, "edge", "1")
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "edge")
		cond := readyCondition(g, c)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonAgentNotSeen))
		// The controller's status writes never touch the agent's fields.
		g.Expect(c.Status.Agent.Version).To(Equal("v9.9.9"))
		g.Expect(c.Status.Agent.LastSeen).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())

	// A new heartbeat makes it Ready again.
	heartbeat(g, ws, "edge", clock.Now())
	g.Eventually(func(g Gomega) {
		g.Expect(readyCondition(g, getCluster(g, ws, "edge")).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}

func TestDeletedClusterNamespaceIsRecreated(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ws}})).To(Succeed())
	name := cluster.NamespaceName(ws, "edge")
	ns := &corev1.Namespace{}
	g.Eventually(func() error { return k8s.Get(ctx, client.ObjectKey{Name: name}, ns) }, timeout, interval).Should(Succeed())
	oldUID := ns.UID
	g.Expect(k8s.Delete(ctx, ns)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &corev1.Namespace{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, got)).To(Succeed())
		g.Expect(got.UID).NotTo(Equal(oldUID))
		g.Expect(got.DeletionTimestamp.IsZero()).To(BeTrue())
	}, 2*timeout, interval).Should(Succeed())
}

func TestForeignNamespaceIsNotAdopted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	name := cluster.NamespaceName(ws, "taken")
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ws}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "taken")
		cond := readyCondition(g, c)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
		g.Expect(cond.Message).To(ContainSubstring("namespace " + name + " exists and does not belong to Cluster " + ws + "/taken"))
		g.Expect(c.Status.Namespace).To(BeEmpty())
	}, timeout, interval).Should(Succeed())

	// Deleting the Cluster leaves the foreign namespace alone.
	g.Expect(k8s.Delete(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ws}})).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ws, Name: "taken"}, &v1alpha1.Cluster{}))
	}, timeout, interval).Should(BeTrue())
	ns := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
	g.Expect(ns.DeletionTimestamp.IsZero()).To(BeTrue())
}

func TestClusterGroupCounts(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	for name, env := range map[string]string{"dev-1": "dev", "dev-2": "dev", "prod-1": "prod"} {
		g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ws,
			Labels: map[string]string{"env": env}}})).To(Succeed())
	}
	grp := &v1alpha1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "devs", Namespace: ws},
		Spec: v1alpha1.ClusterGroupSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}}}
	g.Expect(k8s.Create(ctx, grp)).To(Succeed())
	groupStatus := func(g Gomega) v1alpha1.ClusterGroupStatus {
		got := &v1alpha1.ClusterGroup{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(grp), got)).To(Succeed())
		return got.Status
	}
	g.Eventually(func(g Gomega) {
		s := groupStatus(g)
		g.Expect(s.ClusterCount).To(Equal(2))
		g.Expect(s.NonReadyClusterCount).To(Equal(2))
		g.Expect(s.NonReadyClusters).To(Equal([]string{"dev-1", "dev-2"}))
		g.Expect(s.Display.ReadyClusters).To(Equal("0/2"))
	}, timeout, interval).Should(Succeed())

	heartbeat(g, ws, "dev-1", clock.Now())
	g.Eventually(func(g Gomega) {
		s := groupStatus(g)
		g.Expect(s.NonReadyClusters).To(Equal([]string{"dev-2"}))
		g.Expect(s.Display.ReadyClusters).To(Equal("1/2"))
		g.Expect(meta.FindStatusCondition(s.Conditions, v1alpha1.ReadyCondition).Message).
			To(ContainSubstring("dev-2 (waiting for the agent of cluster dev-2 to report)"))
	}, timeout, interval).Should(Succeed())

	g.Expect(retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		c := getCluster(g, ws, "prod-1")
		c.Labels["env"] = "dev"
		return k8s.Update(ctx, c)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		s := groupStatus(g)
		g.Expect(s.ClusterCount).To(Equal(3))
		g.Expect(s.NonReadyClusterCount).To(Equal(2))
	}, timeout, interval).Should(Succeed())
}

func TestBootstrap(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(cluster.Bootstrap(ctx, k8s)).To(Succeed())
	// A user's change to the default group survives another bootstrap.
	grp := &v1alpha1.ClusterGroup{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cluster.LocalWorkspace, Name: v1alpha1.DefaultClusterGroup}, grp)).To(Succeed())
	g.Expect(grp.Spec.Selector.MatchLabels).To(Equal(map[string]string{"name": "local"}))
	orig := grp.DeepCopy()
	grp.Spec.Selector.MatchLabels["extra"] = "x"
	g.Expect(k8s.Patch(ctx, grp, client.MergeFrom(orig))).To(Succeed())
	g.Expect(cluster.Bootstrap(ctx, k8s)).To(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(grp), grp)).To(Succeed())
	g.Expect(grp.Spec.Selector.MatchLabels).To(HaveKeyWithValue("extra", "x"))

	g.Eventually(func(g Gomega) {
		c := getCluster(g, cluster.LocalWorkspace, cluster.LocalCluster)
		g.Expect(c.Labels).To(HaveKeyWithValue("name", "local"))
		g.Expect(c.Status.Namespace).To(Equal(cluster.NamespaceName(cluster.LocalWorkspace, cluster.LocalCluster)))
	}, timeout, interval).Should(Succeed())
}

// The cluster namespace comes with the agent's rights there, and only there: checked by the API
// server's own RBAC authorizer.
func TestClusterNamespaceGrantsTheAgentItsRights(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "rbac", Namespace: ws}})).To(Succeed())
	clusterNS := cluster.NamespaceName(ws, "rbac")
	user := "system:serviceaccount:" + ws + ":" + cluster.AgentServiceAccount("rbac")
	can := func(g Gomega, namespace, verb, resource, group string) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ws, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Resource: resource, Group: group},
		}}
		g.Expect(k8s.Create(ctx, sar)).To(Succeed())
		return sar.Status.Allowed
	}
	g.Eventually(func(g Gomega) {
		g.Expect(can(g, clusterNS, "watch", "bundledeployments", "fleet.cattle.io")).To(BeTrue())
		g.Expect(can(g, clusterNS, "patch", "bundledeployments/status", "fleet.cattle.io")).To(BeTrue())
		g.Expect(can(g, clusterNS, "get", "secrets", "")).To(BeTrue())
		g.Expect(can(g, clusterNS, "watch", "configmaps", "")).To(BeTrue())
	}, timeout, interval).Should(Succeed())
	g.Expect(can(g, clusterNS, "delete", "secrets", "")).To(BeFalse())
	g.Expect(can(g, clusterNS, "update", "configmaps", "")).To(BeFalse())
	g.Expect(can(g, clusterNS, "create", "bundledeployments", "fleet.cattle.io")).To(BeFalse())
	g.Expect(can(g, ws, "get", "secrets", "")).To(BeFalse(), "nothing outside its cluster namespace")
	g.Expect(can(g, ws, "get", "configmaps", "")).To(BeFalse(), "nothing outside its cluster namespace")
}

// TestAgentVersionSkewFromTheHeartbeatLease renews the heartbeat Lease as an agent of another
// version does: the Cluster says so in AgentUpToDate, and True once the agent runs the
// controller's version.
func TestAgentVersionSkewFromTheHeartbeatLease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	g.Expect(k8s.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ws}})).To(Succeed())
	ns := cluster.NamespaceName(ws, "edge")
	beat := func(version string) {
		g.Eventually(func() error {
			lease := &coordinationv1.Lease{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: clusterns.AgentLease}, lease); err != nil {
				return err
			}
			now := metav1.NewMicroTime(clock.Now())
			lease.Spec.RenewTime = &now
			lease.Annotations = map[string]string{clusterns.AgentVersionAnnotation: version}
			return k8s.Update(ctx, lease)
		}, timeout, interval).Should(Succeed())
	}
	condition := func(g Gomega) *metav1.Condition {
		cond := meta.FindStatusCondition(getCluster(g, ws, "edge").Status.Conditions, v1alpha1.AgentUpToDateCondition)
		g.Expect(cond).NotTo(BeNil())
		return cond
	}

	beat("v1.1.0")
	g.Eventually(func(g Gomega) {
		cond := condition(g)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonVersionSkew))
		g.Expect(cond.Message).To(HavePrefix("the agent runs helmops v1.1.0, an older version than the controller's " + controllerVersion))
		g.Expect(getCluster(g, ws, "edge").Status.Agent.Version).To(Equal("v1.1.0"))
	}, timeout, interval).Should(Succeed())

	beat(controllerVersion)
	g.Eventually(func(g Gomega) {
		cond := condition(g)
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonSameVersion))
		// Skew is reported, not a reason to stop deploying: Ready still follows the heartbeat.
		g.Expect(readyCondition(g, getCluster(g, ws, "edge")).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}
