package helmop

import (
	"context"
	"net/url"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// refused waits until the HelmOp is Accepted=False and Stalled for a Policy violation of field
// under rule, and returns the message.
func refused(t *testing.T, ns, name, field, rule string) string {
	t.Helper()
	g := NewWithT(t)
	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	var msg string
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonPolicyViolation))
		g.Expect(c.ObservedGeneration).To(Equal(op.Generation))
		g.Expect(c.Message).To(HavePrefix(field + ": "))
		g.Expect(c.Message).To(ContainSubstring(rule))
		g.Expect(condition(op, v1alpha1.StalledCondition).Reason).To(Equal(v1alpha1.ReasonPolicyViolation))
		msg = c.Message
	}, timeout, interval).Should(Succeed())
	return msg
}

func noBundle(t *testing.T, ns, name string) {
	t.Helper()
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.Bundle{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("Bundle %s/%s: want none, got err=%v", ns, name, err)
	}
}

// TestAPolicyRefusesRepositoriesAsAnAttackerNamesThem: a tenant whose namespace allows one
// repository names another one directly, through a per-target override, through userinfo that
// makes the URL start with the allowed host, and as a chart archive URL. Each is refused with the rule and
// the field, the other repository is never asked, and no Bundle is written.
func TestAPolicyRefusesRepositoriesAsAnAttackerNamesThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	allowed := chartRepo(t, testenv.RepoOptions{})
	evil := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	allowedHost := hostOf(t, allowed.URL)
	g.Expect(k8s.Create(ctx, &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "repos", Namespace: ns},
		HelmOp: &v1alpha1.HelmOpPolicySpec{AllowedHelmRepoPatterns: []string{`http://` + regexp.QuoteMeta(allowedHost) + `(/.*)?`}}})).To(Succeed())

	evilHost := hostOf(t, evil.URL)
	attempts := []struct {
		name  string
		op    *v1alpha1.HelmOp
		field string
	}{
		{"direct", newHelmOp(ns, "direct", evil.URL, "alpine"), "spec.helm.repo"},
		{"per-target", newHelmOp(ns, "per-target", allowed.URL, "alpine", testutil.WithHelmOpTargets(
			v1alpha1.BundleTarget{Name: "prod", ClusterName: "c1", Helm: &v1alpha1.HelmOptions{Repo: evil.URL}})), "spec.targets[0].helm.repo"},
		{"per-target version override", newHelmOp(ns, "per-target-version", allowed.URL, "alpine", testutil.WithHelmOpTargets(
			v1alpha1.BundleTarget{Name: "prod", ClusterName: "c1", Helm: &v1alpha1.HelmOptions{Repo: evil.URL, Version: "0.1.x"}})), "spec.targets[0].helm.repo"},
		{"userinfo", newHelmOp(ns, "userinfo", "http://"+allowedHost+"@"+evilHost+"/", "alpine"), "spec.helm.repo"},
		{"archive URL", newHelmOp(ns, "archive", "", evil.URL+"/alpine-0.1.0.tgz"), "spec.helm.chart"},
	}
	for _, a := range attempts {
		g.Expect(k8s.Create(ctx, a.op)).To(Succeed(), a.name)
	}
	g.Expect(k8s.Create(ctx, newHelmOp(ns, "fine", allowed.URL, "alpine"))).To(Succeed())
	// Scheme case and a trailing slash name the same repository.
	g.Expect(k8s.Create(ctx, newHelmOp(ns, "fine-too", "HTTP://"+allowedHost+"/", "alpine"))).To(Succeed())
	for _, a := range attempts {
		msg := refused(t, ns, a.op.Name, a.field, "helmOp.allowedHelmRepoPatterns of Policy "+ns+"/repos")
		t.Logf("%s: %s", a.name, msg)
	}
	for _, name := range []string{"fine", "fine-too"} {
		b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		g.Eventually(func(g Gomega) {
			get(g, b)
			g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
		}, timeout, interval).Should(Succeed())
	}
	for _, a := range attempts {
		noBundle(t, ns, a.op.Name)
	}
	g.Expect(evil.Requests("/index.yaml")).To(BeZero(), "nothing is fetched from a refused repository")
	g.Expect(evil.Requests("/alpine-0.1.0.tgz")).To(BeZero())
}

// TestAPolicyChangeOnlyStopsChanges: an accepted HelmOp changed to a refused repository keeps its
// Bundle exactly as it was; allowing the repository in the Policy lets the change through.
func TestAPolicyChangeOnlyStopsChanges(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	allowed := chartRepo(t, testenv.RepoOptions{})
	other := chartRepo(t, testenv.RepoOptions{})
	g.Expect(other.Publish("alpine", "0.3.0")).To(Succeed())
	ns := newNamespace(t)
	pol := &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "repos", Namespace: ns},
		HelmOp: &v1alpha1.HelmOpPolicySpec{AllowedHelmRepoPatterns: []string{regexp.QuoteMeta(allowed.URL)}}}
	g.Expect(k8s.Create(ctx, pol)).To(Succeed())
	op := newHelmOp(ns, "moving", allowed.URL, "alpine")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "moving", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
	}, timeout, interval).Should(Succeed())
	before := b.DeepCopy()

	update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.Helm.Repo = other.URL })
	refused(t, ns, "moving", "spec.helm.repo", "helmOp.allowedHelmRepoPatterns")
	get(g, b)
	g.Expect(b.Spec).To(Equal(before.Spec), "a refused change leaves the Bundle as it was")
	g.Expect(b.Generation).To(Equal(before.Generation))
	g.Expect(other.Requests("/index.yaml")).To(BeZero())

	get(g, pol)
	pol.HelmOp.AllowedHelmRepoPatterns = append(pol.HelmOp.AllowedHelmRepoPatterns, regexp.QuoteMeta(other.URL))
	g.Expect(k8s.Update(ctx, pol)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Repo).To(Equal(other.URL))
		g.Expect(b.Spec.Helm.Version).To(Equal("0.3.0"))
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(condition(op, v1alpha1.StalledCondition).Type).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

// TestPolicyDefaultsAndAllowedNames: the Policy's default secret and service account reach the
// Bundle of a HelmOp that names none (and the default secret's credentials reach the repository);
// another secret, a service account outside the list, or one in a per-target override is refused.
func TestPolicyDefaultsAndAllowedNames(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	private := chartRepo(t, testenv.RepoOptions{Username: "user", Password: "s3cret-pass"})
	ns := newNamespace(t)
	for _, name := range []string{"creds", "other"} {
		g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			StringData: map[string]string{"username": "user", "password": "s3cret-pass"}})).To(Succeed())
	}
	g.Expect(k8s.Create(ctx, &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns},
		RequireServiceAccount: true, AllowedServiceAccounts: []string{"deployer", "reader"},
		HelmOp: &v1alpha1.HelmOpPolicySpec{DefaultServiceAccount: "deployer", DefaultHelmSecretName: "creds", AllowedHelmSecretNames: []string{"creds"}}})).To(Succeed())

	g.Expect(k8s.Create(ctx, newHelmOp(ns, "defaulted", private.URL, "alpine"))).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "defaulted", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
	}, timeout, interval).Should(Succeed())
	g.Expect(b.Spec.ServiceAccount).To(Equal("deployer"))
	g.Expect(b.Spec.HelmOpOptions.SecretName).To(Equal("creds"))
	g.Expect(private.AuthorizedRequests("/index.yaml")).To(BeNumerically(">=", 1))
	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "defaulted", Namespace: ns}}
	get(g, op)
	g.Expect(op.Spec.ServiceAccount).To(BeEmpty(), "defaults are applied to the Bundle, never written to the HelmOp")
	g.Expect(op.Spec.HelmSecretName).To(BeEmpty())

	otherSecret := newHelmOp(ns, "other-secret", private.URL, "alpine", testutil.WithSecret("other"))
	g.Expect(k8s.Create(ctx, otherSecret)).To(Succeed())
	admin := newHelmOp(ns, "admin", private.URL, "alpine")
	admin.Spec.ServiceAccount = "cluster-admin"
	g.Expect(k8s.Create(ctx, admin)).To(Succeed())
	perTarget := newHelmOp(ns, "per-target-account", private.URL, "alpine", testutil.WithHelmOpTargets(
		v1alpha1.BundleTarget{Name: "prod", ClusterName: "c1", ServiceAccount: "cluster-admin"}))
	g.Expect(k8s.Create(ctx, perTarget)).To(Succeed())

	refused(t, ns, "other-secret", "spec.helmSecretName", "helmOp.allowedHelmSecretNames of Policy "+ns+"/defaults")
	refused(t, ns, "admin", "spec.serviceAccount", "allowedServiceAccounts of Policy "+ns+"/defaults")
	refused(t, ns, "per-target-account", "spec.targets[0].serviceAccount", "allowedServiceAccounts")
	for _, name := range []string{"other-secret", "admin", "per-target-account"} {
		noBundle(t, ns, name)
	}
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
