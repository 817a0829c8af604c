package helmop

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// TestSpecChangesReachTheBundleWithTheRepositoryDown: pausing, editing values and removing a
// target need no repository, so they reach the Bundle while it is down, from the last resolved
// versions; the HelmOp says the spec was handled. Its controller's resolver keeps no index
// without asking the repository again, so any resolution fails while the repository is down.
func TestSpecChangesReachTheBundleWithTheRepositoryDown(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	stop, err := startManager(ctx, "down", chartsource.NewResolver(chartsource.Options{Network: testNetwork}))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)
	ns := newNamespace(t)
	op := newHelmOp(ns, "down", repo.URL, "alpine", withVersion("0.x.x"), withShard("down"), testutil.WithHelmOpTargets(
		v1alpha1.BundleTarget{Name: "dev", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}},
		v1alpha1.BundleTarget{Name: "prod", ClusterName: "prod-1", Helm: &v1alpha1.HelmOptions{Version: "0.1.x"}},
	))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "down", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
		g.Expect(b.Spec.Targets).To(HaveLen(2))
		g.Expect(b.Spec.Targets[1].Helm.Version).To(Equal("0.1.0"))
	}, timeout, interval).Should(Succeed())

	repo.Stop()
	update(g, op, func(op *v1alpha1.HelmOp) {
		op.Spec.Paused = true
		op.Spec.Helm.Values = testutil.Values(map[string]any{"color": "blue"})
		op.Spec.Targets = op.Spec.Targets[:1]
		op.Spec.Labels = map[string]string{"team": "b"}
	})
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Paused).To(BeTrue())
		g.Expect(b.Spec.Targets).To(HaveLen(1))
		g.Expect(b.Spec.Targets[0].Name).To(Equal("dev"))
		g.Expect(b.Spec.Helm.Values).To(Equal(testutil.Values(map[string]any{"color": "blue"})))
		g.Expect(b.Labels).To(HaveKeyWithValue("team", "b"))
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"), "the last resolved version")
		get(g, op)
		g.Expect(op.Status.ObservedGeneration).To(Equal(op.Generation))
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}

// TestForbiddenSecretReadIsRetried: the controller's ServiceAccount may not read the Secret at
// first (a real RBAC denial, through a client impersonating it); once it may, the HelmOp recovers
// by the retry alone, with no change to the HelmOp or the Secret and no poll to bring it back.
func TestForbiddenSecretReadIsRetried(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{Username: "user", Password: "pass"})
	ns := newNamespace(t)
	const account = "helmops-controller"
	g.Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: account, Namespace: ns}})).To(Succeed())
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + account,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	reader, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	stop, err := startManagerWith(ctx, "forbidden", func(r *Reconciler) {
		r.Resolver = chartsource.NewResolver(chartsource.Options{Network: testNetwork})
		r.APIReader = reader
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)

	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		StringData: map[string]string{"username": "user", "password": "pass"}})).To(Succeed())
	op := newHelmOp(ns, "forbidden", repo.URL, "alpine", withShard("forbidden"), testutil.WithSecret("creds"))
	g.Expect(op.PollingEvery()).To(BeZero(), "no poll may bring the HelmOp back")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonTransientError))
		g.Expect(c.Message).To(ContainSubstring("forbidden"))
		g.Expect(condition(op, v1alpha1.ReconcilingCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.ObservedGeneration).To(BeZero(), "the spec is not handled yet")
	}, timeout, interval).Should(Succeed())

	// Grant the read; nothing else changes.
	g.Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read-creds", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "read-creds", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-creds"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: ns}}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.Version).To(Equal("0.2.0"))
		g.Expect(op.Status.ObservedGeneration).To(Equal(op.Generation))
	}, 60*time.Second, interval).Should(Succeed())
}
