package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testutil"
)

// Two HelmOps name the same release in the same namespace of one cluster (HelmOp b with
// releaseName a): the second is refused and says whose the release is, the first is untouched,
// and deleting the second leaves the first release installed and Ready.
func TestASecondHelmOpCannotTakeOverARelease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("contested", "1.0.0")).To(Succeed())
	contested := func(greeting string) func(*v1alpha1.HelmOp) {
		return func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "contested"
			h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
			h.Spec.Helm.Values = testutil.Values(map[string]any{"data": map[string]any{"greeting": greeting}})
		}
	}
	first := helmOp("contested", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "contested", Version: "1.0.0"}, contested("from-the-first"))
	g.Expect(mgmt().Create(ctx, first)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(first))
		g.Expect(configMap(g, env.Downstreams["dev"], "contested", "contested").Data).To(HaveKeyWithValue("greeting", "from-the-first"))
	}, timeout, interval).Should(Succeed())
	revision := 0
	g.Eventually(func(g Gomega) { revision = releaseRevision(g, "dev", "contested") }, timeout, interval).Should(Succeed())

	second := helmOp("takeover", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "contested", Version: "1.0.0", ReleaseName: "contested"}, contested("from-the-second"))
	g.Expect(mgmt().Create(ctx, second)).To(Succeed())
	g.Eventually(func(g Gomega) {
		h := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(second), h)).To(Succeed())
		c := meta.FindStatusCondition(h.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("(HelmOp fleet-default/contested)"))
		g.Expect(c.Message).To(ContainSubstring("set another helm.releaseName or namespace"))
		t.Logf("HelmOp takeover Ready: %s", c.Message)
	}, timeout, interval).Should(Succeed())

	// The first is untouched while the second keeps trying (the agent's drift interval).
	g.Consistently(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(first))
		g.Expect(configMap(g, env.Downstreams["dev"], "contested", "contested").Data).To(HaveKeyWithValue("greeting", "from-the-first"))
		g.Expect(releaseRevision(g, "dev", "contested")).To(Equal(revision))
	}, 5*time.Second, interval).Should(Succeed())

	g.Expect(mgmt().Delete(ctx, second)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(mgmt().Get(ctx, client.ObjectKeyFromObject(second), &v1alpha1.HelmOp{}))
	}, timeout, interval).Should(BeTrue())
	g.Consistently(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(first))
		g.Expect(configMap(g, env.Downstreams["dev"], "contested", "contested").Data).To(HaveKeyWithValue("greeting", "from-the-first"))
		g.Expect(releaseRevision(g, "dev", "contested")).To(Equal(revision))
	}, 3*time.Second, interval).Should(Succeed())
}
