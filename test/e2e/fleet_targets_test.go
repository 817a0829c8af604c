package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
)

// gadgetCRD has no status subresource, so the status a chart writes stays as written.
const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.e2e.helmops.dev
spec:
  group: e2e.helmops.dev
  scope: Namespaced
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// stalledGadget is a resource kstatus reads as Failed: its Stalled condition is True.
const stalledGadget = `apiVersion: e2e.helmops.dev/v1
kind: Gadget
metadata:
  name: {{ .Release.Name }}
spec:
  size: 1
status:
  conditions:
    - type: Stalled
      status: "True"
      reason: NoHardware
      message: waiting for hardware
`

func readyCondition(g Gomega, cluster, name string) *metav1.Condition {
	c := bundleDeployment(g, cluster, name).Condition(v1alpha1.ReadyCondition)
	g.Expect(c).NotTo(BeNil(), "%s's BundleDeployment %s has a Ready condition", cluster, name)
	return c
}

// Per-target options with targetCustomizationMode FirstMatch (the default): a cluster gets the
// options of the first target it matches only. ignore.conditions on dev's target leaves the
// stalled resource's condition out of its readiness; prod, matched by the second target, reports
// it, and correctDrift on dev's target restores a changed resource. serviceAccount on dev's
// target: the agent deploys as that account (refused until it has the rights, naming it);
// createNamespace false on prod's target: the release waits for the namespace.
func TestPerTargetOptionsFirstMatch(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("gadgets", "1.0.0", localenv.WithFile("crds/gadgets.yaml", gadgetCRD),
		localenv.WithTemplate("gadget.yaml", stalledGadget), localenv.WithTemplate("configmap.yaml", localenv.DefaultTemplate))).To(Succeed())
	values := func(m map[string]any) *v1alpha1.HelmOptions {
		return &v1alpha1.HelmOptions{Values: &v1alpha1.GenericMap{Data: map[string]any{"data": m}}}
	}
	gadgets := helmOp("gadgets", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "gadgets", Version: "1.0.0"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "gadgets"
		h.Spec.Targets = []v1alpha1.BundleTarget{
			{Name: "dev", ClusterName: "dev", Helm: values(map[string]any{"target": "dev"}), CorrectDrift: &v1alpha1.CorrectDrift{Enabled: true},
				Ignore: &v1alpha1.IgnoreOptions{Conditions: []map[string]string{{"type": "Stalled", "status": "True"}}}},
			{Name: "all", ClusterSelector: everyCluster(), Helm: values(map[string]any{"target": "all", "second": "yes"})},
		}
	})
	g.Expect(mgmt().Create(ctx, gadgets)).To(Succeed())

	dev, prod := env.Downstreams["dev"].Client, env.Downstreams["prod"].Client
	g.Expect(dev.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pertarget"}})).To(Succeed())
	g.Expect(dev.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "pertarget"}})).To(Succeed())
	no := false
	pertarget := helmOp("pertarget", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "pertarget"
		h.Spec.Targets = []v1alpha1.BundleTarget{
			{Name: "dev", ClusterName: "dev", ServiceAccount: "deployer"},
			{Name: "prod", ClusterName: "prod", CreateNamespace: &no},
		}
	})
	g.Expect(mgmt().Create(ctx, pertarget)).To(Succeed())

	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(gadgets), got)).To(Succeed())
		g.Expect(got.Spec.TargetCustomizationMode).To(Equal(v1alpha1.FirstMatch), "the default, as in Fleet")
		g.Expect(configMap(g, env.Downstreams["dev"], "gadgets", "gadgets").Data).To(And(HaveKeyWithValue("target", "dev"), Not(HaveKey("second"))))
		g.Expect(configMap(g, env.Downstreams["prod"], "gadgets", "gadgets").Data).To(And(HaveKeyWithValue("target", "all"), HaveKeyWithValue("second", "yes")))
		g.Expect(readyCondition(g, "dev", "gadgets").Status).To(Equal(metav1.ConditionTrue), "the ignored condition does not count")
		c := readyCondition(g, "prod", "gadgets")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(And(ContainSubstring("Gadget gadgets/gadgets"), ContainSubstring("waiting for hardware")))
	}, timeout, interval).Should(Succeed())

	// correctDrift on dev's target: a change made downstream is taken back (checked below, while
	// the agent's drift check runs).
	g.Eventually(func(g Gomega) {
		cm := configMap(g, env.Downstreams["dev"], "gadgets", "gadgets")
		cm.Data["target"] = "changed"
		g.Expect(dev.Update(ctx, cm)).To(Succeed())
	}, timeout, interval).Should(Succeed())

	g.Eventually(func(g Gomega) {
		c := readyCondition(g, "dev", "pertarget")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("system:serviceaccount:pertarget:deployer"))
		c = readyCondition(g, "prod", "pertarget")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring(`"pertarget" not found`))
	}, timeout, interval).Should(Succeed())
	err := dev.Get(ctx, keyOfName("pertarget", "pertarget-config"), &corev1.ConfigMap{})
	g.Expect(err).To(HaveOccurred(), "nothing deployed on dev without the account's rights")
	g.Expect(prod.Get(ctx, keyOfName("", "pertarget"), &corev1.Namespace{})).NotTo(Succeed(), "createNamespace false: not created on prod")

	// The account gets the rights, prod the namespace: both deploy.
	g.Expect(dev.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "pertarget"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}})).To(Succeed())
	g.Expect(dev.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "pertarget"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: "pertarget"}}})).To(Succeed())
	g.Expect(prod.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pertarget"}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, keyOf(pertarget))
		for _, name := range []string{"dev", "prod"} {
			g.Expect(configMap(g, env.Downstreams[name], "pertarget", "pertarget").Data).To(HaveKeyWithValue("greeting", "hello"), name)
		}
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "gadgets", "gadgets").Data).To(HaveKeyWithValue("target", "dev"))
		g.Expect(readyCondition(g, "dev", "gadgets").Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}
