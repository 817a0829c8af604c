package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// content is a value of the demo chart's ConfigMap, so each publication of a version can be told
// apart downstream.
func content(s string) localenv.ChartOption {
	return localenv.WithValues(map[string]any{"data": map[string]any{"content": s}})
}

// addProd adds the prod cluster to a HelmOp's targets: not an input of the version, so the
// controller does not resolve again and prod gets the version (and digest) dev got.
func addProd(g Gomega, h *v1alpha1.HelmOp) {
	g.Expect(testutil.Update(context.Background(), mgmt(), h, func(h *v1alpha1.HelmOp) {
		h.Spec.Targets = append(h.Spec.Targets, v1alpha1.BundleTarget{ClusterName: "prod"})
	})).To(Succeed())
}

// TestARepublishedVersionIsRefusedWhereItIsNotInstalledYet: a version is installed on dev, then
// re-published with other content, then prod is targeted. prod's agent refuses the new content
// (condition and event naming both digests, rolled up to the HelmOp) while dev keeps its release;
// asking the controller to resolve again pins the new content, with a warning, on both.
func TestARepublishedVersionIsRefusedWhereItIsNotInstalledYet(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("e2e-pinned", "1.0.0", content("original"))).To(Succeed())
	h := helmOp("e2e-pinned", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "e2e-pinned", Version: "1.0.0"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "e2e-pinned"
		h.Spec.PollingInterval = &metav1.Duration{Duration: time.Hour}
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(configMap(g, env.Downstreams["dev"], "e2e-pinned", "e2e-pinned").Data).To(HaveKeyWithValue("content", "original"))
	}, timeout, interval).Should(Succeed())
	revision := 0
	g.Eventually(func(g Gomega) { revision = releaseRevision(g, "dev", "e2e-pinned") }, timeout, interval).Should(Succeed())

	g.Expect(env.Repo.Republish("e2e-pinned", "1.0.0", content("swapped"))).To(Succeed())
	addProd(g, h)
	g.Eventually(func(g Gomega) {
		bd, ok := bundleDeployments(g, "e2e-pinned")["prod"]
		g.Expect(ok).To(BeTrue())
		c := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonChartDigestMismatch))
		pinned := bd.Spec.HelmChartOptions.ChartDigest
		g.Expect(pinned).To(HavePrefix("sha256:"))
		g.Expect(c.Message).To(ContainSubstring(pinned))
		g.Expect(agentEvents(g, &bd, v1alpha1.ReasonChartDigestMismatch)).NotTo(BeEmpty())

		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(h), got)).To(Succeed())
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Message).To(And(ContainSubstring("prod"), ContainSubstring("re-published with other content"), ContainSubstring(pinned)))
		t.Logf("HelmOp Ready: %s", ready.Message)
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "e2e-pinned", "e2e-pinned").Data).To(HaveKeyWithValue("content", "original"))
		g.Expect(releaseRevision(g, "dev", "e2e-pinned")).To(Equal(revision))
	}, 3*time.Second, interval).Should(Succeed())

	// The way out the message names: resolve again. The new content is pinned, with a warning.
	g.Expect(testutil.Update(ctx, mgmt(), h, func(h *v1alpha1.HelmOp) {
		metav1.SetMetaDataAnnotation(&h.ObjectMeta, v1alpha1.ReconcileRequestedAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(h))
		for _, cluster := range []string{"dev", "prod"} {
			g.Expect(configMap(g, env.Downstreams[cluster], "e2e-pinned", "e2e-pinned").Data).To(HaveKeyWithValue("content", "swapped"), cluster)
		}
		g.Expect(helmOpEvents(g, h, "ChartContentChanged")).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

// TestAMovedOCITagDeploysThePinnedContent: a tag pushed again with other content after the
// controller resolved it; a cluster targeted afterwards gets the manifest the controller pinned,
// the same content as the cluster targeted before.
func TestAMovedOCITagDeploysThePinnedContent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{Username: "pin-user", Password: "pin-pass"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "e2e-pinned-oci", "1.0.0", content("original"))
	g.Expect(err).NotTo(HaveOccurred())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pinned-oci-creds", Namespace: "fleet-default"},
		StringData: map[string]string{"username": "pin-user", "password": "pin-pass", "basicHTTP": "true"}}
	g.Expect(mgmt().Create(ctx, secret)).To(Succeed())
	h := helmOp("e2e-pinned-oci", "fleet-default", v1alpha1.HelmOptions{Repo: ref, Version: "1.0.0"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "e2e-pinned-oci"
		h.Spec.HelmSecretName = secret.Name
		h.Spec.PollingInterval = &metav1.Duration{Duration: time.Hour}
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(configMap(g, env.Downstreams["dev"], "e2e-pinned-oci", "e2e-pinned-oci").Data).To(HaveKeyWithValue("content", "original"))
	}, timeout, interval).Should(Succeed())

	_, err = reg.Publish(ctx, "e2e-pinned-oci", "1.0.0", content("moved"))
	g.Expect(err).NotTo(HaveOccurred())
	addProd(g, h)
	g.Eventually(func(g Gomega) {
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.ReadyClusters).To(Equal(2))
		g.Expect(configMap(g, env.Downstreams["prod"], "e2e-pinned-oci", "e2e-pinned-oci").Data).To(HaveKeyWithValue("content", "original"))
	}, timeout, interval).Should(Succeed())
}

// agentEvents are the events of a reason recorded on a BundleDeployment (by its agent).
func agentEvents(g Gomega, bd *v1alpha1.BundleDeployment, reason string) []corev1.Event {
	return events(g, bd.Namespace, "BundleDeployment", bd.Name, reason)
}

// helmOpEvents are the events of a reason recorded on a HelmOp.
func helmOpEvents(g Gomega, h *v1alpha1.HelmOp, reason string) []corev1.Event {
	return events(g, h.Namespace, "HelmOp", h.Name, reason)
}

func events(g Gomega, namespace, kind, name, reason string) []corev1.Event {
	list := &corev1.EventList{}
	g.Expect(mgmt().List(context.Background(), list, client.InNamespace(namespace))).To(Succeed())
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}
