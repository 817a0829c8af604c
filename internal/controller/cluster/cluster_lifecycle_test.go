package cluster_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/testutil"
)

// TestDeletedClusterWaitsForItsAgentBoundedThenRegistersAgain: a deleted Cluster waits for its
// agent to uninstall the BundleDeployments of its namespace, saying so; when the agent is gone
// for good the wait ends after the uninstall timeout (on the injected clock), the namespace goes,
// and registering the same Cluster again works.
func TestDeletedClusterWaitsForItsAgentBoundedThenRegistersAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	g.Expect(k8s.Create(ctx, testutil.Cluster(ws, "orphan"))).To(Succeed())
	name := cluster.NamespaceName(ws, "orphan")
	g.Eventually(func() error { return k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}) }, timeout, interval).Should(Succeed())
	// A BundleDeployment its agent took (the agent's finalizer) before the agent went away.
	bd := testutil.BundleDeployment(name, "app", ws, v1alpha1.HelmOptions{Chart: "https://charts.example.com/app-1.0.0.tgz"})
	bd.Labels[v1alpha1.ClusterLabel], bd.Labels[v1alpha1.ClusterNamespaceLabel] = "orphan", ws
	bd.Finalizers = []string{v1alpha1.BundleDeploymentFinalizer}
	g.Expect(k8s.Create(ctx, bd)).To(Succeed())

	g.Expect(k8s.Delete(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: "orphan"}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "orphan")
		cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonDeleting))
		g.Expect(cond.Message).To(Equal("waiting for the agent of cluster orphan to uninstall app (at most 10m0s)"))
		ns := &corev1.Namespace{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
		g.Expect(ns.DeletionTimestamp.IsZero()).To(BeFalse(), "the namespace is being deleted")
	}, timeout, interval).Should(Succeed())

	clock.SetTime(time.Now().Add(11 * time.Minute))
	t.Cleanup(func() { clock.SetTime(time.Now()) })
	g.Eventually(func(g Gomega) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ws, Name: "orphan"}, &v1alpha1.Cluster{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Cluster goes once the wait ends")
		err = k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "and so does its namespace")
	}, 2*timeout, interval).Should(Succeed())

	g.Expect(k8s.Create(ctx, testutil.Cluster(ws, "orphan"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := getCluster(g, ws, "orphan")
		g.Expect(c.Status.Namespace).To(Equal(name))
		g.Expect(readyCondition(g, c).Reason).To(Equal(v1alpha1.ReasonWaitingForAgent))
		ns := &corev1.Namespace{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
		g.Expect(ns.DeletionTimestamp.IsZero()).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}
