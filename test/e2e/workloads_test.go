package e2e

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

func everyCluster() *metav1.LabelSelector { return &metav1.LabelSelector{} }

// webDeployment reads the web chart's Deployment on a downstream cluster.
func webDeployment(g Gomega, cluster string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(env.Downstreams[cluster].Client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "shop"}, d)).To(Succeed())
	return d
}

// expectAvailable checks the Deployment rolled out the chart version with every replica available.
func expectAvailable(g Gomega, cluster, version string) {
	d := webDeployment(g, cluster)
	g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("helmops.dev/chart-version", version), cluster)
	g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation), cluster)
	g.Expect(d.Status.UpdatedReplicas).To(Equal(*d.Spec.Replicas), cluster)
	g.Expect(d.Status.AvailableReplicas).To(Equal(*d.Spec.Replicas), cluster)
	g.Expect(d.Status.AvailableReplicas).To(BeNumerically(">=", 2), "%s: the HorizontalPodAutoscaler's minimum", cluster)
}

// TestDeploymentChartInstallUpgradeFailUninstall runs a chart with a Deployment, a Service and a
// HorizontalPodAutoscaler through the real binary on clusters with simulated nodes: Ready only once
// the Deployment is Available, an upgrade rolls out, a version whose Pods crash-loop is NotReady
// naming the Pod's reason, and deleting the HelmOp uninstalls it.
func TestDeploymentChartInstallUpgradeFailUninstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := helmOp("shop", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "web", Version: "1.0.0"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "shop"
		h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: everyCluster()}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.ReadyClusters).To(Equal(2))
		for _, c := range []string{"dev", "prod"} {
			expectAvailable(g, c, "1.0.0")
		}
	}, timeout, interval).Should(Succeed())

	setVersion := func(v string) {
		g.Eventually(func() error {
			cur := &v1alpha1.HelmOp{}
			if err := mgmt().Get(ctx, client.ObjectKeyFromObject(h), cur); err != nil {
				return err
			}
			cur.Spec.Helm.Version = v
			return mgmt().Update(ctx, cur)
		}, timeout, interval).Should(Succeed())
	}
	setVersion("1.1.0")
	g.Eventually(func(g Gomega) {
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.Version).To(Equal("1.1.0"))
		for _, c := range []string{"dev", "prod"} {
			expectAvailable(g, c, "1.1.0")
		}
	}, timeout, interval).Should(Succeed())

	g.Expect(env.Publish(ctx, "web", "1.2.0", true)).To(Succeed())
	setVersion("1.2.0")
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(h), got)).To(Succeed())
		g.Expect(got.Status.Version).To(Equal("1.2.0"))
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).NotTo(Equal(metav1.ConditionTrue))
		g.Expect(got.Status.ReadyClusters).To(Equal(0))
		bds := &v1alpha1.BundleDeploymentList{}
		g.Expect(mgmt().List(ctx, bds, client.MatchingLabels{v1alpha1.BundleNameLabel: "shop"})).To(Succeed())
		g.Expect(bds.Items).To(HaveLen(2))
		for _, bd := range bds.Items {
			c := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), bd.Namespace)
			g.Expect(c.Message).To(And(ContainSubstring("Deployment shop/shop"), ContainSubstring("CrashLoopBackOff")), bd.Namespace)
		}
	}, timeout, interval).Should(Succeed())
	// The rollout is stuck, not lost: the previous Pods keep serving.
	for _, c := range []string{"dev", "prod"} {
		g.Expect(webDeployment(g, c).Status.AvailableReplicas).To(BeNumerically(">=", 1), c)
	}

	g.Expect(mgmt().Delete(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, c := range []string{"dev", "prod"} {
			err := env.Downstreams[c].Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "shop"}, &appsv1.Deployment{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Deployment uninstalled on %s: %v", c, err)
		}
		err := mgmt().Get(ctx, client.ObjectKeyFromObject(h), &v1alpha1.HelmOp{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

// TestCRDAndHookChartsBecomeReady installs the chart with a CRD in crds/ and the chart with a
// hook Job on both downstream clusters.
func TestCRDAndHookChartsBecomeReady(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var ops []*v1alpha1.HelmOp
	for _, chart := range []string{"widgets", "migrations"} {
		h := helmOp("e2e-"+chart, "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: chart}, func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "e2e-" + chart
			h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: everyCluster()}}
		})
		g.Expect(mgmt().Create(ctx, h)).To(Succeed())
		ops = append(ops, h)
	}
	g.Eventually(func(g Gomega) {
		for _, h := range ops {
			got := expectReady(g, client.ObjectKeyFromObject(h))
			g.Expect(got.Status.ReadyClusters).To(Equal(2), h.Name)
		}
	}, timeout, interval).Should(Succeed())
	for _, c := range []string{"dev", "prod"} {
		out, err := env.Downstreams[c].Kubectl(ctx, "get", "widgets", "-n", "e2e-widgets", "-o", "name")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(strings.TrimSpace(out)).To(Equal("widget.demo.helmops.dev/e2e-widgets"), c)
		out, err = env.Downstreams[c].Kubectl(ctx, "get", "job", "e2e-migrations-migrate", "-n", "e2e-migrations", "-o", "jsonpath={.status.succeeded}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(Equal("1"), "the hook Job completed on %s", c)
	}
}
