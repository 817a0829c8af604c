package agent

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// copyUpstream plays the bundle controller: it writes obj into the BundleDeployment's cluster
// namespace as the copy of entry ("Secret/db"), owned by the BundleDeployment.
func copyUpstream(g Gomega, bd *v1alpha1.BundleDeployment, obj client.Object, entry string) {
	got := getBD(g, bd)
	obj.SetNamespace(got.Namespace)
	obj.SetLabels(map[string]string{v1alpha1.ManagedLabel: "true"})
	obj.SetAnnotations(map[string]string{v1alpha1.DownstreamResourceAnnotation: entry})
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "BundleDeployment", Name: got.Name, UID: got.UID}})
	g.Expect(upstream.Client.Create(context.Background(), obj)).To(Succeed())
}

func condition(bd *v1alpha1.BundleDeployment, t string) *metav1.Condition {
	return meta.FindStatusCondition(bd.Status.Conditions, t)
}

func downstreamGone(g Gomega, obj client.Object, ns, name string) {
	err := downstream.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s/%s: %v", ns, name, err)
}

// The copies of downstreamResources in the cluster namespace are copied into the release
// namespace before the release is deployed (waiting for the controller's copies), follow them
// when they change, go when their entry goes and when the BundleDeployment is deleted, and never
// overwrite an object the agent did not copy there.
func TestDownstreamResourcesReachTheReleaseNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("copies", "0.1.0")).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "copies"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "copies"},
		StringData: map[string]string{"k": "mine"}})).To(Succeed())
	bd := bundleDeployment(mainNS, "copies", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "copies", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "db"}, {Kind: "configmap", Name: "settings"}}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(getBD(g, bd), v1alpha1.DeployedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonProgressing))
		g.Expect(c.Message).To(Equal("waiting for the controller to copy Secret db (spec.options.downstreamResources[0]) into the cluster namespace"))
	}, timeout, interval).Should(Succeed())
	hist, err := helm.History(ctx, "copies", "copies")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(BeEmpty(), "nothing is deployed before the copies are there")

	copyUpstream(g, bd, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "downstream-db"}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "app", "password": "one"}}, "Secret/db")
	copyUpstream(g, bd, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-settings"}, Data: map[string]string{"mode": "fast"}}, "ConfigMap/settings")
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		s := &corev1.Secret{}
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "copies", Name: "db"}, s)).To(Succeed())
		g.Expect(s.Type).To(Equal(corev1.SecretTypeBasicAuth))
		g.Expect(s.Data).To(Equal(map[string][]byte{"username": []byte("app"), "password": []byte("one")}))
		g.Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.BundleDeploymentOwnershipLabel, "copies"))
		cm := &corev1.ConfigMap{}
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "copies", Name: "settings"}, cm)).To(Succeed())
		g.Expect(cm.Data).To(Equal(map[string]string{"mode": "fast"}))
	}, timeout, interval).Should(Succeed())

	// The controller's copy changes (its source did): so does the downstream one.
	up := &corev1.Secret{}
	g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: mainNS, Name: "downstream-db"}, up)).To(Succeed())
	up.Data["password"] = []byte("two")
	g.Expect(upstream.Client.Update(ctx, up)).To(Succeed())
	g.Eventually(func(g Gomega) {
		s := &corev1.Secret{}
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "copies", Name: "db"}, s)).To(Succeed())
		g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("two")))
	}, timeout, interval).Should(Succeed())

	// An entry naming an object the agent did not copy is refused, naming the entry; the object
	// stays as it is.
	copyUpstream(g, bd, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "downstream-theirs"}, StringData: map[string]string{"k": "upstream"}}, "Secret/theirs")
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "db"}, {Kind: "Secret", Name: "theirs"}}
	})
	g.Eventually(func(g Gomega) {
		c := condition(getBD(g, bd), v1alpha1.ReadyCondition)
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDownstreamCopyFailed))
		g.Expect(c.Message).To(ContainSubstring("spec.options.downstreamResources[1]: Secret copies/theirs exists in the downstream cluster and was not copied there by helmops for this BundleDeployment"))
	}, timeout, interval).Should(Succeed())
	theirs := &corev1.Secret{}
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "copies", Name: "theirs"}, theirs)).To(Succeed())
	g.Expect(theirs.Data).To(Equal(map[string][]byte{"k": []byte("mine")}))

	// Entries taken out lose their copies.
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "db"}}
	})
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		downstreamGone(g, &corev1.ConfigMap{}, "copies", "settings")
	}, timeout, interval).Should(Succeed())

	g.Expect(upstream.Client.Delete(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) { downstreamGone(g, &corev1.Secret{}, "copies", "db") }, timeout, interval).Should(Succeed())
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "copies", Name: "theirs"}, &corev1.Secret{})).To(Succeed())
}

// keepResources keeps the copies when the BundleDeployment goes, as it keeps the release's
// resources.
func TestKeepResourcesKeepsTheDownstreamCopies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("keepcopies", "0.1.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "keepcopies", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "keepcopies", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.KeepResources = true
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "ConfigMap", Name: "kept"}}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	copyUpstream(g, bd, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-kept"}, Data: map[string]string{"a": "b"}}, "ConfigMap/kept")
	g.Eventually(func(g Gomega) {
		expectReady(g, bd)
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "keepcopies", Name: "kept"}, &corev1.ConfigMap{})).To(Succeed())
	}, timeout, interval).Should(Succeed())
	g.Expect(upstream.Client.Delete(ctx, bd)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue())
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "keepcopies", Name: "kept"}, &corev1.ConfigMap{})).To(Succeed())
}

// A BundleDeployment that deploys as a ServiceAccount copies as that account: where it may not
// write ConfigMaps, the copy fails, naming the account, and nothing is written for it.
func TestDownstreamCopiesAreWrittenAsTheServiceAccount(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("copies-as-sa", "0.1.0")).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "copies-as-sa"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "copies-as-sa"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "copies-as-sa"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "copies-as-sa"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: "copies-as-sa"}}})).To(Succeed())
	bd := bundleDeployment(mainNS, "copies-as-sa", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "copies-as-sa", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.ServiceAccount = "deployer"
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "ConfigMap", Name: "settings"}}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	copyUpstream(g, bd, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-settings"}, Data: map[string]string{"a": "b"}}, "ConfigMap/settings")
	g.Eventually(func(g Gomega) {
		c := condition(getBD(g, bd), v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDownstreamCopyFailed))
		g.Expect(c.Message).To(And(ContainSubstring("spec.options.downstreamResources[0]"), ContainSubstring(`"system:serviceaccount:copies-as-sa:deployer"`)))
	}, timeout, interval).Should(Succeed())
	downstreamGone(g, &corev1.ConfigMap{}, "copies-as-sa", "settings")
}
