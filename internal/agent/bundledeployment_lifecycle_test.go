package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// TestDeletionWithTheServiceAccountGoneEnds: a BundleDeployment deployed as a ServiceAccount that
// was deleted (with its rights) cannot be uninstalled. Its Ready condition says so; after the
// uninstall timeout (on the agent's injected clock) the release is left in place and the
// BundleDeployment goes.
func TestDeletionWithTheServiceAccountGoneEnds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const name = "sa-gone"
	g.Expect(upstream.Client.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workspace}})).To(Succeed())
	ns, err := standInClusterController(ctx, name)
	g.Expect(err).NotTo(HaveOccurred())
	fake := clocktesting.NewFakeClock(time.Now())
	o := agentOptions(name, false)
	o.Clock = fake
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = Run(runCtx, o) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: name}}
	g.Expect(downstream.Client.Create(ctx, sa)).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"*"}}}})).To(Succeed())
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: name}}}
	g.Expect(downstream.Client.Create(ctx, binding)).To(Succeed())
	g.Expect(repo.Publish(name, "0.1.0")).To(Succeed())
	bd := bundleDeployment(ns, name, v1alpha1.HelmOptions{Repo: repo.URL, Chart: name, Version: "0.1.0"},
		func(b *v1alpha1.BundleDeployment) { b.Spec.Options.ServiceAccount = "deployer" })
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	eventuallyReady(g, bd)

	// The ServiceAccount goes, and its rights with it.
	g.Expect(downstream.Client.Delete(ctx, binding)).To(Succeed())
	g.Expect(downstream.Client.Delete(ctx, sa)).To(Succeed())
	g.Expect(upstream.Client.Delete(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, bd).Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDeleting))
		g.Expect(c.Message).To(ContainSubstring("ServiceAccount sa-gone/deployer named by spec.options.serviceAccount does not exist"))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) { getBD(g, bd) }, 2*time.Second, interval).Should(Succeed(), "held while waiting")

	fake.SetTime(time.Now().Add(11 * time.Minute))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue(), "the wait is bounded")
	hist, err := helm.History(ctx, name, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).NotTo(BeEmpty(), "the release is left in place")
}
