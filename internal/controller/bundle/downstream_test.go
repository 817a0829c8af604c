package bundle_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testutil"
)

func entries(kindName ...string) []v1alpha1.DownstreamResource {
	var out []v1alpha1.DownstreamResource
	for i := 0; i+1 < len(kindName); i += 2 {
		out = append(out, v1alpha1.DownstreamResource{Kind: kindName[i], Name: kindName[i+1]})
	}
	return out
}

func withDownstream(list ...v1alpha1.DownstreamResource) bundleOption {
	return func(b *v1alpha1.Bundle) { b.Spec.DownstreamResources = list }
}

func gone(g Gomega, obj client.Object, ns, name string) {
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s/%s: %v", ns, name, err)
}

// targetedOf is the Targeted condition the bundle controller writes on a BundleDeployment.
func targetedOf(bd *v1alpha1.BundleDeployment) *metav1.Condition {
	return meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.TargetedCondition)
}

// The Secrets and ConfigMaps named by downstreamResources are copied whole into the cluster
// namespace of each targeted cluster (per-target entries only for that target's clusters), kept
// in sync with their source, and released when an entry goes, when a cluster is no longer
// targeted and when the Bundle is deleted.
func TestDownstreamResourcesFollowTheTargets(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Labels: map[string]string{"team": "a"}},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "app", "password": "s3cret"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
		Data: map[string]string{"mode": "fast"}, BinaryData: map[string][]byte{"blob": {0, 1}}})).To(Succeed())

	b := newBundle(t, ns, "copies", withDownstream(entries("Secret", "db")...), withTargets(
		v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod"), DownstreamResources: entries("configmap", "settings")},
		v1alpha1.BundleTarget{Name: "dev", ClusterSelector: sel("env", "dev")}))
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(keys(bds)).To(ConsistOf("dev-1", "dev-2", "prod-1"))
		g.Expect(bds["prod-1"].Spec.Options.DownstreamResources).To(Equal(entries("Secret", "db", "configmap", "settings")))
		for name, n := range nss {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: n, Name: "downstream-db"}, s)).To(Succeed(), name)
			g.Expect(s.Type).To(Equal(corev1.SecretTypeBasicAuth))
			g.Expect(s.Data).To(Equal(map[string][]byte{"username": []byte("app"), "password": []byte("s3cret")}))
			g.Expect(s.Labels).To(Equal(map[string]string{v1alpha1.ManagedLabel: "true"}), "the source's labels stay behind")
			g.Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.DownstreamResourceAnnotation, "Secret/db"))
			g.Expect(s.OwnerReferences).To(ConsistOf(HaveField("UID", bds[name].UID)))
		}
		cm := &corev1.ConfigMap{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "downstream-settings"}, cm)).To(Succeed())
		g.Expect(cm.Data).To(Equal(map[string]string{"mode": "fast"}))
		g.Expect(cm.BinaryData).To(Equal(map[string][]byte{"blob": {0, 1}}))
		for _, dev := range []string{"dev-1", "dev-2"} {
			gone(g, &corev1.ConfigMap{}, nss[dev], "downstream-settings")
		}
		g.Expect(getBundle(g, b).Condition(v1alpha1.ReadyCondition).Reason).NotTo(HavePrefix("Downstream"))
	}, timeout, interval).Should(Succeed())

	// A changed source changes every copy.
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}}
	update(g, src, func(s *corev1.Secret) { s.Data["password"] = []byte("rotated") })
	g.Eventually(func(g Gomega) {
		for name, n := range nss {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: n, Name: "downstream-db"}, s)).To(Succeed(), name)
			g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("rotated")), name)
		}
	}, timeout, interval).Should(Succeed())

	// An entry taken out of a target, and a cluster no longer targeted, lose their copies.
	update(g, b, func(b *v1alpha1.Bundle) {
		b.Spec.Targets[0].DownstreamResources = nil
		b.Spec.Targets[1].ClusterSelector = sel("env", "dev", "region", "eu")
	})
	g.Eventually(func(g Gomega) {
		g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1", "prod-1"))
		gone(g, &corev1.ConfigMap{}, nss["prod-1"], "downstream-settings")
		gone(g, &corev1.Secret{}, nss["dev-2"], "downstream-db")
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "downstream-db"}, &corev1.Secret{})).To(Succeed())
	}, timeout, interval).Should(Succeed())

	g.Expect(k8s.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, n := range nss {
			gone(g, &corev1.Secret{}, n, "downstream-db")
		}
	}, timeout, interval).Should(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, &corev1.Secret{})).To(Succeed(), "the source stays")
}

// An entry that cannot be copied (a missing Secret, a service account token, a copy blocked by
// an object helmops does not manage) keeps only the clusters that need it as they are, says so on
// the Bundle and on their BundleDeployments, naming the cluster and the field, and disturbs
// nothing else. Once fixed, the deployments follow and the condition goes.
func TestADownstreamResourceThatCannotBeCopiedHoldsOnlyItsClusters(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, StringData: map[string]string{"password": "p"}})).To(Succeed())
	b := newBundle(t, ns, "held", withDownstream(entries("Secret", "db")...), withTargets(
		v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")},
		v1alpha1.BundleTarget{Name: "dev", ClusterSelector: sel("env", "dev")}))
	before := map[string]string{}
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(bds).To(HaveLen(3))
		for name, bd := range bds {
			before[name] = bd.Spec.DeploymentID
		}
	}, timeout, interval).Should(Succeed())

	update(g, b, func(b *v1alpha1.Bundle) {
		b.Spec.Targets[0].DownstreamResources = entries("Secret", "missing")
		b.Spec.Helm.Values = vals(map[string]any{"color": "red"})
	})
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		c := got.Condition(v1alpha1.TargetedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceNotFound))
		want := `cluster prod-1: spec.targets[0].downstreamResources[0]: Secret "missing" does not exist in namespace ` + ns + `; create it, or remove the entry`
		g.Expect(c.Message).To(ContainSubstring(want))
		g.Expect(got.Condition(v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonDownstreamResourceNotFound))
		bds := deployments(g, b)
		g.Expect(bds["prod-1"].Spec.DeploymentID).To(Equal(before["prod-1"]), "prod-1 keeps its deployment")
		tc := targetedOf(bds["prod-1"])
		g.Expect(tc).NotTo(BeNil())
		g.Expect(tc.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(tc.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceNotFound))
		g.Expect(tc.Message).To(Equal(want))
		for _, dev := range []string{"dev-1", "dev-2"} {
			g.Expect(bds[dev].Spec.DeploymentID).NotTo(Equal(before[dev]), "%s is updated", dev)
			g.Expect(targetedOf(bds[dev])).To(BeNil())
		}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "downstream-db"}, &corev1.Secret{})).To(Succeed(), "earlier copies stay")
	}, timeout, interval).Should(Succeed())

	// Created, the missing Secret is copied and prod-1 follows.
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "missing", Namespace: ns}, StringData: map[string]string{"k": "v"}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(bds["prod-1"].Spec.DeploymentID).NotTo(Equal(before["prod-1"]))
		g.Expect(targetedOf(bds["prod-1"])).To(BeNil())
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "downstream-missing"}, &corev1.Secret{})).To(Succeed())
		g.Expect(getBundle(g, b).Condition(v1alpha1.TargetedCondition).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())

	// A service account token is never copied.
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa-token", Namespace: ns,
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type: corev1.SecretTypeServiceAccountToken, StringData: map[string]string{"token": "abc"}}
	g.Expect(k8s.Create(ctx, token)).To(Succeed())
	// An object helmops does not manage where a copy would go is never overwritten.
	g.Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-settings", Namespace: nss["dev-1"]},
		Data: map[string]string{"mine": "yes"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"a": "b"}})).To(Succeed())
	update(g, b, func(b *v1alpha1.Bundle) {
		b.Spec.Targets[0].DownstreamResources = entries("Secret", "sa-token")
		b.Spec.Targets[1].DownstreamResources = entries("ConfigMap", "settings")
	})
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		tc := targetedOf(bds["prod-1"])
		g.Expect(tc).NotTo(BeNil())
		g.Expect(tc.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceRefused))
		g.Expect(tc.Message).To(ContainSubstring(`cluster prod-1: spec.targets[0].downstreamResources[0]: Secret "sa-token" is a service account token`))
		tc = targetedOf(bds["dev-1"])
		g.Expect(tc).NotTo(BeNil())
		g.Expect(tc.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceRefused))
		g.Expect(tc.Message).To(ContainSubstring("cluster dev-1: spec.targets[1].downstreamResources[0]: cannot copy the downstream resource ConfigMap settings: configmap " + nss["dev-1"] + "/downstream-settings exists and is not managed by helmops"))
		g.Expect(targetedOf(bds["dev-2"])).To(BeNil())
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["dev-2"], Name: "downstream-settings"}, &corev1.ConfigMap{})).To(Succeed())
	}, timeout, interval).Should(Succeed())
	gone(g, &corev1.Secret{}, nss["prod-1"], "downstream-sa-token")
	cm := &corev1.ConfigMap{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["dev-1"], Name: "downstream-settings"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(Equal(map[string]string{"mine": "yes"}), "never overwritten")
}

// A values template that fails for a cluster is written on that cluster's BundleDeployment too,
// naming the cluster and the value; it goes once the cluster's values can be computed again.
func TestAValuesTemplateErrorIsOnTheBundleDeployment(t *testing.T) {
	g := NewWithT(t)
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "tpl", testutil.WithValues(map[string]any{"tier": `${ get .ClusterLabels "tier" | default "none" }`}),
		withTargets(v1alpha1.BundleTarget{Name: "dev", ClusterSelector: sel("env", "dev")}))
	g.Eventually(func(g Gomega) { g.Expect(deployments(g, b)).To(HaveLen(2)) }, timeout, interval).Should(Succeed())

	update(g, b, func(b *v1alpha1.Bundle) {
		b.Spec.Helm.Values = vals(map[string]any{"tier": "${ .ClusterLabels.tier }"})
	})
	g.Eventually(func(g Gomega) {
		for name, bd := range deployments(g, b) {
			c := targetedOf(bd)
			g.Expect(c).NotTo(BeNil(), name)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInvalidValues))
			g.Expect(c.Message).To(And(ContainSubstring("cluster "+name+": helm.values.tier"), ContainSubstring(`map has no entry for key "tier"`)))
		}
	}, timeout, interval).Should(Succeed())

	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dev-1"}}
	update(g, c, func(c *v1alpha1.Cluster) { c.Labels["tier"] = "gold" })
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(targetedOf(bds["dev-1"])).To(BeNil())
		g.Expect(bds["dev-1"].Spec.Options.Helm.Values.Data).To(HaveKeyWithValue("tier", "gold"))
		g.Expect(targetedOf(bds["dev-2"])).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
}
