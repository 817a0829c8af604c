package agent

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/controller/registration"
)

// grantAsHelmopsDoes gives the agent of Cluster name exactly the rights helmops grants an agent:
// the ServiceAccount with registration.AgentWorkspaceRules in the workspace (what a
// ClusterRegistration, a Cluster with spec.kubeConfigSecret or the local Cluster gets), and
// cluster.AgentNamespaceRules in its cluster namespace (what the cluster controller grants there).
func grantAsHelmopsDoes(g Gomega, name, clusterNS string) {
	ctx := context.Background()
	sa := cluster.AgentServiceAccount(name)
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: workspace}}
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: workspace}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: workspace}, Rules: registration.AgentWorkspaceRules(name)},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: workspace}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: cluster.AgentRoleName, Namespace: clusterNS}, Rules: cluster.AgentNamespaceRules()},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cluster.AgentRoleName, Namespace: clusterNS}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: cluster.AgentRoleName}},
	} {
		g.Expect(upstream.Client.Create(ctx, o)).To(Succeed(), "%T %s", o, o.GetName())
	}
}

// TestAgentWorksWithTheRightsHelmopsGrants runs an agent as the ServiceAccount helmops grants an
// agent, with exactly its rights: heartbeat, install (with a downstream resource copied), status
// and uninstall all work, and every write outside them is refused.
func TestAgentWorksWithTheRightsHelmopsGrants(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const name = "scoped"
	cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workspace}}
	g.Expect(upstream.Client.Create(ctx, cl)).To(Succeed())
	ns, err := standInClusterController(ctx, name)
	g.Expect(err).NotTo(HaveOccurred())
	clusterNS := ns
	grantAsHelmopsDoes(g, name, clusterNS)

	cfg := rest.CopyConfig(upstream.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + workspace + ":helmops-agent-" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + workspace, "system:authenticated"},
	}
	// Sanity check: the identity cannot read BundleDeployments elsewhere.
	scoped, err := client.New(cfg, client.Options{Scheme: upstream.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(scoped.List(ctx, &v1alpha1.BundleDeploymentList{}, client.InNamespace(mainNS))).NotTo(Succeed())

	// No rule lets it create a Cluster: onboarding is registration's (or an administrator's).
	err = scoped.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "another", Namespace: workspace}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "creating a Cluster: %v", err)

	o := agentOptions(name, false)
	o.Upstream = cfg
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, o) }()
	t.Cleanup(func() { cancel(); <-done })

	g.Eventually(func(g Gomega) {
		lease := &coordinationv1.Lease{}
		g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: clusterNS, Name: clusterns.AgentLease}, lease)).To(Succeed())
		g.Expect(lease.Spec.RenewTime).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())

	// As a hostile agent: no write on any Cluster (its own included: spec, labels, status), and
	// no write on another cluster's heartbeat Lease.
	own := &v1alpha1.Cluster{}
	g.Expect(scoped.Get(ctx, client.ObjectKeyFromObject(cl), own)).To(Succeed())
	for _, patch := range []string{
		`{"metadata":{"labels":{"env":"prod"}}}`,
		`{"spec":{"paused":true}}`,
	} {
		err := scoped.Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "patch %s: %v", patch, err)
	}
	err = scoped.Status().Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"namespace":"`+mainNS+`"}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "status.namespace: %v", err)
	err = scoped.Status().Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"agent":{"version":"x"}}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "status.agent: %v", err)
	other := &coordinationv1.Lease{}
	g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: mainNS, Name: clusterns.AgentLease}, other)).To(Succeed())
	err = scoped.Update(ctx, other.DeepCopy())
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "another cluster's Lease: %v", err)
	err = scoped.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "fake", Namespace: clusterNS}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a new Lease: %v", err)
	err = scoped.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: mainNS},
		InvolvedObject: corev1.ObjectReference{Kind: "BundleDeployment", Namespace: mainNS, Name: "x"}, Reason: "Forged"})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "an event in another cluster's namespace: %v", err)

	g.Expect(repo.Publish("scoped", "0.1.0")).To(Succeed())
	bd := bundleDeployment(ns, "scoped", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "scoped", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "ConfigMap", Name: "settings"}}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	copyUpstream(g, bd, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-settings"}, Data: map[string]string{"a": "b"}}, "ConfigMap/settings")
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "scoped", Name: "settings"}, &corev1.ConfigMap{})).To(Succeed())
	}, timeout, interval).Should(Succeed())

	// A chart whose content is not the one pinned is refused with a Warning event, which these
	// rights let the agent record in its cluster namespace.
	g.Expect(repo.Publish("scoped-pinned", "0.1.0")).To(Succeed())
	pinned := bundleDeployment(ns, "scoped-pinned", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "scoped-pinned", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.HelmChartOptions = &v1alpha1.BundleHelmOptions{ChartDigest: "sha256:" + strings.Repeat("0", 64)}
	})
	g.Expect(upstream.Client.Create(ctx, pinned)).To(Succeed())
	g.Eventually(func(g Gomega) {
		e := refusalEvent(g, pinned)
		g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
		g.Expect(e.Message).To(ContainSubstring("sha256:" + strings.Repeat("0", 64)))
	}, timeout, interval).Should(Succeed())

	for _, b := range []*v1alpha1.BundleDeployment{bd, pinned} {
		g.Expect(upstream.Client.Delete(ctx, b)).To(Succeed())
	}
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue(), "the agent removed its finalizer after uninstalling")
	hist, err := helm.History(ctx, "scoped", "scoped")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(BeEmpty())
}

// refusalEvent is the ChartDigestMismatch event recorded on a BundleDeployment.
func refusalEvent(g Gomega, bd *v1alpha1.BundleDeployment) corev1.Event {
	events := &corev1.EventList{}
	g.Expect(upstream.Client.List(context.Background(), events, client.InNamespace(bd.Namespace))).To(Succeed())
	var found []corev1.Event
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "BundleDeployment" && e.InvolvedObject.Name == bd.Name && e.Reason == v1alpha1.ReasonChartDigestMismatch {
			found = append(found, e)
		}
	}
	g.Expect(found).NotTo(BeEmpty(), "ChartDigestMismatch events on BundleDeployment %s", bd.Name)
	return found[0]
}
