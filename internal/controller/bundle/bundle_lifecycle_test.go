package bundle_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/helmops/helmops/api/v1alpha1"
)

// TestFailingClusterListKeepsTheStatus: while the Clusters cannot be listed, Targeted, the
// summary and observedGeneration stay as they were, and a Bundle that has none yet says Unknown
// with the error; the retry alone recovers.
func TestFailingClusterListKeepsTheStatus(t *testing.T) {
	g := NewWithT(t)
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "listfail", withTargets(v1alpha1.BundleTarget{Name: "dev", ClusterSelector: sel("env", "dev")}))
	var before *v1alpha1.Bundle
	g.Eventually(func(g Gomega) {
		before = getBundle(g, b)
		g.Expect(before.Status.ObservedGeneration).To(Equal(before.Generation))
		g.Expect(meta.IsStatusConditionTrue(before.Status.Conditions, v1alpha1.TargetedCondition)).To(BeTrue())
		g.Expect(before.Status.DesiredReadyClusters).To(Equal(2))
	}, timeout, interval).Should(Succeed())

	failClusterLists.Store(ns, true)
	update(g, b, func(b *v1alpha1.Bundle) { b.Spec.Helm.Version = "1.2.4" })
	g.Consistently(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Generation).To(BeNumerically(">", before.Generation))
		g.Expect(got.Status).To(Equal(before.Status))
	}, 3*time.Second, interval).Should(Succeed())

	fresh := newBundle(t, ns, "listfail-new", withTargets(v1alpha1.BundleTarget{Name: "dev", ClusterSelector: sel("env", "dev")}))
	g.Eventually(func(g Gomega) {
		got := getBundle(g, fresh)
		for _, ct := range []string{v1alpha1.TargetedCondition, v1alpha1.ReadyCondition} {
			c := meta.FindStatusCondition(got.Status.Conditions, ct)
			g.Expect(c).NotTo(BeNil(), ct)
			g.Expect(c.Status).To(Equal(metav1.ConditionUnknown), ct)
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonTransientError), ct)
			g.Expect(c.Message).To(ContainSubstring("listing the Clusters of namespace "+ns), ct)
		}
		g.Expect(got.Status.ObservedGeneration).To(BeZero())
		g.Expect(deployments(g, fresh)).To(BeEmpty())
	}, timeout, interval).Should(Succeed())

	failClusterLists.Delete(ns)
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.TargetedCondition)).To(BeTrue())
		for _, bd := range deployments(g, b) {
			g.Expect(bd.Spec.Options.Helm.Version).To(Equal("1.2.4"))
		}
		got = getBundle(g, fresh)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.TargetedCondition)).To(BeTrue())
		g.Expect(got.Status.DesiredReadyClusters).To(Equal(2))
	}, timeout, interval).Should(Succeed())
}

// TestDeletedBundleWaitsForUninstallBounded: a deleted Bundle stays, saying which clusters it
// waits for, until their agents removed their BundleDeployments; when an agent never does, the
// wait ends after the uninstall timeout (on the injected clock).
func TestDeletedBundleWaitsForUninstallBounded(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	newCluster(t, ns, "gone-agent", map[string]string{"env": "dev"})
	clusterNamespace(t, ns, "gone-agent")
	b := newBundle(t, ns, "waits", withTargets(v1alpha1.BundleTarget{ClusterName: "gone-agent"}))
	var bd *v1alpha1.BundleDeployment
	g.Eventually(func(g Gomega) {
		bd = deployments(g, b)["gone-agent"]
		g.Expect(bd).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
	// Play an agent that took the deployment and then went away.
	patch := client.MergeFrom(bd.DeepCopy())
	controllerutil.AddFinalizer(bd, v1alpha1.BundleDeploymentFinalizer)
	g.Expect(k8s.Patch(ctx, bd, patch)).To(Succeed())
	t.Cleanup(func() {
		p := client.MergeFrom(bd.DeepCopy())
		controllerutil.RemoveFinalizer(bd, v1alpha1.BundleDeploymentFinalizer)
		_ = k8s.Patch(context.Background(), bd, p)
	})

	g.Expect(k8s.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDeleting))
		g.Expect(c.Message).To(Equal("waiting for the agents to uninstall on gone-agent"))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) { getBundle(g, b) }, 2*time.Second, interval).Should(Succeed(), "held while waiting")

	bundleClock.SetTime(time.Now().Add(11 * time.Minute))
	t.Cleanup(func() { bundleClock.SetTime(time.Now()) })
	// A change to the deployment brings the Bundle back (its requeue is on the real clock).
	touched := client.MergeFrom(bd.DeepCopy())
	bd.Labels["touched"] = "1"
	g.Expect(k8s.Patch(ctx, bd, touched)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), &v1alpha1.Bundle{}))
	}, timeout, interval).Should(BeTrue(), "the wait is bounded")
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{})).To(Succeed(), "left for its agent")
}
