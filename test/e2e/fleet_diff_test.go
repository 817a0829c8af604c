package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// diff.comparePatches: a field a patch removes from the comparison may change downstream
// without being reported; any other change is. A target's patches are added to the HelmOp's.
func TestComparePatchesLeaveFieldsOutOfDrift(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := helmOp("diffopts", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x",
		Values: &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"color": "gray", "size": "m", "shape": "round"}}}},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "diffopts"
			h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev", Diff: &v1alpha1.DiffOptions{ComparePatches: []v1alpha1.ComparePatch{{
				APIVersion: "v1", Kind: "ConfigMap", Name: "diffopts-config", Namespace: "diffopts",
				Operations: []v1alpha1.Operation{{Op: "remove", Path: "/data/shape"}},
			}}}}}
			h.Spec.Diff = &v1alpha1.DiffOptions{ComparePatches: []v1alpha1.ComparePatch{{
				APIVersion: "v1", Kind: "ConfigMap", Name: "diffopts-config", Namespace: "diffopts",
				Operations: []v1alpha1.Operation{{Op: "remove", Path: "/data/color"}},
			}}}
		})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		configMap(g, env.Downstreams["dev"], "diffopts", "diffopts")
		expectReady(g, client.ObjectKeyFromObject(h))
	}, timeout, interval).Should(Succeed())

	// Change the three keys downstream: only size is reported.
	g.Eventually(func(g Gomega) {
		cm := configMap(g, env.Downstreams["dev"], "diffopts", "diffopts")
		cm.Data["color"], cm.Data["size"], cm.Data["shape"] = "pink", "xl", "square"
		g.Expect(env.Downstreams["dev"].Client.Update(ctx, cm)).To(Succeed())
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := &v1alpha1.Cluster{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: "dev"}, c)).To(Succeed())
		bd := &v1alpha1.BundleDeployment{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: c.Status.Namespace, Name: "diffopts"}, bd)).To(Succeed())
		g.Expect(bd.Status.ModifiedStatus).To(HaveLen(1))
		g.Expect(bd.Status.ModifiedStatus[0].Patch).To(ContainSubstring("size"))
		g.Expect(bd.Status.ModifiedStatus[0].Patch).NotTo(ContainSubstring("color"))
		g.Expect(bd.Status.ModifiedStatus[0].Patch).NotTo(ContainSubstring("shape"), "the target's patch")
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(h), got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeFalse())
		g.Expect(got.Status.ResourceCounts.Modified).To(Equal(1))
	}, timeout, interval).Should(Succeed())
}
