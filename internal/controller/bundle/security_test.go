package bundle_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/controller/bundle"
)

// TestCopiesHoldOnlyTheKeysHelmopsReads: a secret's other keys stay in the workspace, and a
// service account token is never copied.
func TestCopiesHoldOnlyTheKeysHelmopsReads(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mixed", Namespace: ns},
		StringData: map[string]string{"username": "u", "password": "p", "cacerts": "", "db-password": "not-for-agents"}})).To(Succeed())
	newBundle(t, ns, "mixed", withSecret("mixed"), withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	g.Eventually(func(g Gomega) {
		s := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "mixed"}, s)).To(Succeed())
		g.Expect(keys(s.Data)).To(ConsistOf("username", "password", "cacerts"))
	}, timeout, interval).Should(Succeed())

	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa-token", Namespace: ns,
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type: corev1.SecretTypeServiceAccountToken, StringData: map[string]string{"token": "abc"}}
	g.Expect(k8s.Create(ctx, token)).To(Succeed())
	b := newBundle(t, ns, "steal", withSecret("sa-token"), withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBundle(g, b).Status.Conditions, v1alpha1.TargetedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(bundle.ReasonSecretRefused))
		g.Expect(c.Message).To(ContainSubstring("service account token"))
		g.Expect(deployments(g, b)).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
	for _, n := range nss {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: n, Name: "sa-token"}, &corev1.Secret{})
		g.Expect(err).To(HaveOccurred(), "no copy in %s", n)
	}
}

// TestDeploymentsGoOnlyToTheClusterNamespace: a forged status.namespace does not move a
// cluster's deployments, and a namespace of the right name that helmops did not create gets
// nothing.
func TestDeploymentsGoOnlyToTheClusterNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)

	// Someone created the namespace a new cluster would get, before the cluster existed.
	squatted := clusterns.Name(ns, "late")
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: squatted}})).To(Succeed())
	newCluster(t, ns, "late", map[string]string{"env": "prod"})

	// prod-1's status says another cluster's namespace (what an agent could write before).
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod-1", Namespace: ns}}
	update(g, c, func(c *v1alpha1.Cluster) {})
	patch := client.MergeFrom(c.DeepCopy())
	c.Status.Namespace = nss["dev-1"]
	g.Expect(k8s.Status().Patch(ctx, c, patch)).To(Succeed())

	b := newBundle(t, ns, "placed", withSecret(""), withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	g.Eventually(func(g Gomega) {
		got := deployments(g, b)
		g.Expect(keys(got)).To(ConsistOf("prod-1"))
		g.Expect(got["prod-1"].Namespace).To(Equal(nss["prod-1"]))
	}, timeout, interval).Should(Succeed())
	list := &v1alpha1.BundleDeploymentList{}
	g.Expect(k8s.List(ctx, list, client.InNamespace(nss["dev-1"]))).To(Succeed())
	g.Expect(list.Items).To(BeEmpty())
	g.Expect(k8s.List(ctx, list, client.InNamespace(squatted))).To(Succeed())
	g.Expect(list.Items).To(BeEmpty())
}

// TestATargetOnAnotherHostGetsNoCredentials: a per-target helm.repo on another host is deployed
// without the HelmOp's secret: its BundleDeployment names none and no copy is made.
func TestATargetOnAnotherHostGetsNoCredentials(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bound", Namespace: ns},
		StringData: map[string]string{"username": "u", "password": "p"}})).To(Succeed())
	b := newBundle(t, ns, "twohosts", withSecret("bound"), withTargets(
		v1alpha1.BundleTarget{Name: "elsewhere", ClusterName: "dev-1", Helm: &v1alpha1.HelmOptions{Repo: "https://other.example.com"}},
		v1alpha1.BundleTarget{Name: "own", ClusterName: "dev-2"}))
	g.Eventually(func(g Gomega) {
		got := deployments(g, b)
		g.Expect(keys(got)).To(ConsistOf("dev-1", "dev-2"))
		g.Expect(got["dev-1"].Spec.Options.Helm.Repo).To(Equal("https://other.example.com"))
		g.Expect(got["dev-1"].Spec.HelmChartOptions.SecretName).To(BeEmpty())
		g.Expect(got["dev-2"].Spec.HelmChartOptions.SecretName).To(Equal("bound"))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["dev-2"], Name: "bound"}, &corev1.Secret{})).To(Succeed())
	}, timeout, interval).Should(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["dev-1"], Name: "bound"}, &corev1.Secret{})).NotTo(Succeed())
}

// TestDeletingTheSourceSecretRemovesItsCopies: copies never outlive their source.
func TestDeletingTheSourceSecretRemovesItsCopies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "going", Namespace: ns}, StringData: map[string]string{"username": "u", "password": "p"}}
	g.Expect(k8s.Create(ctx, src)).To(Succeed())
	b := newBundle(t, ns, "going", withSecret("going"), withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	key := client.ObjectKey{Namespace: nss["prod-1"], Name: "going"}
	g.Eventually(func() error { return k8s.Get(ctx, key, &corev1.Secret{}) }, timeout, interval).Should(Succeed())

	g.Expect(k8s.Delete(ctx, src)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key, &corev1.Secret{})).NotTo(Succeed())
		c := meta.FindStatusCondition(getBundle(g, b).Status.Conditions, v1alpha1.TargetedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonSecretNotFound))
		g.Expect(c.Message).To(ContainSubstring("copies in the cluster namespaces are removed"))
		g.Expect(keys(deployments(g, b))).To(ConsistOf("prod-1"), "the deployment stays")
	}, timeout, interval).Should(Succeed())
}
