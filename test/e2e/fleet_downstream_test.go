package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// bundleDeployment reads the BundleDeployment of a HelmOp of fleet-default on one cluster.
func bundleDeployment(g Gomega, cluster, name string) *v1alpha1.BundleDeployment {
	bd := &v1alpha1.BundleDeployment{}
	g.Expect(mgmt().Get(context.Background(), keyOfName(clusterNamespaceOf(g, "fleet-default", cluster), name), bd)).To(Succeed())
	return bd
}

// updateHelmOp changes a HelmOp's spec, retrying on conflicts.
func updateHelmOp(t *testing.T, key client.ObjectKey, mutate func(*v1alpha1.HelmOp)) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		h := &v1alpha1.HelmOp{}
		if err := mgmt().Get(context.Background(), key, h); err != nil {
			return err
		}
		mutate(h)
		return mgmt().Update(context.Background(), h)
	}, timeout, interval).Should(Succeed())
}

// namesIn lists the namespaces in which a control plane holds an object of that name.
func namesIn(g Gomega, c client.Client, list client.ObjectList, name string) []string {
	g.Expect(c.List(context.Background(), list)).To(Succeed())
	var out []string
	switch l := list.(type) {
	case *corev1.SecretList:
		for _, o := range l.Items {
			if o.Name == name {
				out = append(out, o.Namespace)
			}
		}
	case *corev1.ConfigMapList:
		for _, o := range l.Items {
			if o.Name == name {
				out = append(out, o.Namespace)
			}
		}
	}
	return out
}

// downstreamResources end to end: the named Secret and ConfigMap of the HelmOp's namespace are
// copied into the release namespace of the clusters that name them (a per-target entry only to
// that target's cluster) and nowhere else, a changed source changes the copies, and a cluster no
// longer targeted loses its copies (and, with deleteNamespace, the namespace) unless
// keepResources is set. An entry naming a missing Secret holds only the cluster that needs it,
// says so naming the cluster and the field, and recovers once the Secret exists; the other
// HelmOp is undisturbed. An entry of another kind is refused, naming the field.
func TestDownstreamResourcesFollowTheTargets(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dsr-db", Namespace: "fleet-default"},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("one")}}
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dsr-settings", Namespace: "fleet-default"},
		Data: map[string]string{"mode": "fast"}}
	g.Expect(mgmt().Create(ctx, db)).To(Succeed())
	g.Expect(mgmt().Create(ctx, settings)).To(Succeed())

	h := helmOp("dsr", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "dsr"
		h.Spec.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "ConfigMap", Name: "dsr-settings"}}
		h.Spec.Targets = []v1alpha1.BundleTarget{
			{Name: "dev", ClusterName: "dev", DeleteNamespace: true,
				DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "secret", Name: "dsr-db"}}},
			{Name: "prod", ClusterName: "prod", KeepResources: true},
		}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	missing := helmOp("dsr-missing", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "dsr-missing"
		h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "dev", ClusterName: "dev"}, {Name: "prod", ClusterName: "prod"}}
	})
	g.Expect(mgmt().Create(ctx, missing)).To(Succeed())
	badKind := helmOp("dsr-kind", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev", DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Deployment", Name: "dsr-db"}}}}
	})
	g.Expect(mgmt().Create(ctx, badKind)).To(Succeed())

	dev, prod := env.Downstreams["dev"].Client, env.Downstreams["prod"].Client
	g.Eventually(func(g Gomega) {
		expectReady(g, keyOf(h))
		expectReady(g, keyOf(missing))
		s := &corev1.Secret{}
		g.Expect(dev.Get(ctx, keyOfName("dsr", "dsr-db"), s)).To(Succeed())
		g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("one")))
		g.Expect(s.Type).To(Equal(corev1.SecretTypeOpaque))
		g.Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.BundleDeploymentOwnershipLabel, "dsr"))
		for name, c := range map[string]client.Client{"dev": dev, "prod": prod} {
			cm := &corev1.ConfigMap{}
			g.Expect(c.Get(ctx, keyOfName("dsr", "dsr-settings"), cm)).To(Succeed(), name)
			g.Expect(cm.Data).To(Equal(map[string]string{"mode": "fast"}), name)
			configMap(g, env.Downstreams[name], "dsr", "dsr")
		}
	}, timeout, interval).Should(Succeed())

	// An entry of another kind is a spec error naming the field; nothing is deployed for it.
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(badKind), got)).To(Succeed())
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Message).To(ContainSubstring(`spec.targets[0].downstreamResources[0].kind: unsupported kind "Deployment"`))
	}, timeout, interval).Should(Succeed())
	err := mgmt().Get(ctx, keyOfName(clusterNamespaceOf(g, "fleet-default", "dev"), "dsr-kind"), &v1alpha1.BundleDeployment{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no BundleDeployment for a HelmOp with a spec error: %v", err)

	// Nowhere else: the Secret is only in dev's release namespace (not on prod, which does not
	// name it), and on the management cluster only as its source and dev's cluster namespace copy.
	g.Expect(namesIn(g, dev, &corev1.SecretList{}, "dsr-db")).To(ConsistOf("dsr"))
	g.Expect(namesIn(g, prod, &corev1.SecretList{}, "dsr-db")).To(BeEmpty())
	g.Expect(namesIn(g, dev, &corev1.ConfigMapList{}, "dsr-settings")).To(ConsistOf("dsr"))
	g.Expect(namesIn(g, mgmt(), &corev1.SecretList{}, "dsr-db")).To(ConsistOf("fleet-default"))
	devNS, prodNS := clusterNamespaceOf(g, "fleet-default", "dev"), clusterNamespaceOf(g, "fleet-default", "prod")
	g.Expect(namesIn(g, mgmt(), &corev1.SecretList{}, "downstream-dsr-db")).To(ConsistOf(devNS))
	g.Expect(namesIn(g, mgmt(), &corev1.ConfigMapList{}, "downstream-dsr-settings")).To(ConsistOf(devNS, prodNS))

	// A changed source changes every copy, without a new Helm revision.
	revisions := map[string]int{}
	for _, name := range []string{"dev", "prod"} {
		revisions[name] = releaseRevision(g, name, "dsr")
	}
	g.Eventually(func() error {
		s := &corev1.Secret{}
		if err := mgmt().Get(ctx, keyOf(db), s); err != nil {
			return err
		}
		s.Data["password"] = []byte("two")
		return mgmt().Update(ctx, s)
	}, timeout, interval).Should(Succeed())
	g.Eventually(func() error {
		cm := &corev1.ConfigMap{}
		if err := mgmt().Get(ctx, keyOf(settings), cm); err != nil {
			return err
		}
		cm.Data["mode"] = "slow"
		return mgmt().Update(ctx, cm)
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		s := &corev1.Secret{}
		g.Expect(dev.Get(ctx, keyOfName("dsr", "dsr-db"), s)).To(Succeed())
		g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("two")))
		for name, c := range map[string]client.Client{"dev": dev, "prod": prod} {
			cm := &corev1.ConfigMap{}
			g.Expect(c.Get(ctx, keyOfName("dsr", "dsr-settings"), cm)).To(Succeed(), name)
			g.Expect(cm.Data).To(HaveKeyWithValue("mode", "slow"), name)
		}
	}, timeout, interval).Should(Succeed())
	for _, name := range []string{"dev", "prod"} {
		g.Expect(releaseRevision(g, name, "dsr")).To(Equal(revisions[name]), name)
	}

	// An entry naming a missing Secret, added for prod only: prod's deployment stays as it is and
	// says why, naming the cluster and the field; dev and the other HelmOp are undisturbed.
	missingRevision := releaseRevision(g, "prod", "dsr-missing")
	updateHelmOp(t, keyOf(missing), func(h *v1alpha1.HelmOp) {
		h.Spec.Targets[1].DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "dsr-absent"}}
	})
	const why = `cluster prod: spec.targets[1].downstreamResources[0]: Secret "dsr-absent" does not exist in namespace fleet-default`
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(missing), got)).To(Succeed())
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceNotFound))
		g.Expect(ready.Message).To(ContainSubstring(why))
		targeted := bundleDeployment(g, "prod", "dsr-missing").Condition(v1alpha1.TargetedCondition)
		g.Expect(targeted).NotTo(BeNil())
		g.Expect(targeted.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(targeted.Reason).To(Equal(v1alpha1.ReasonDownstreamResourceNotFound))
		g.Expect(targeted.Message).To(ContainSubstring(why))
	}, timeout, interval).Should(Succeed())
	g.Expect(bundleDeployment(g, "prod", "dsr-missing").Spec.Options.DownstreamResources).To(BeEmpty(), "prod's deployment is left as it was")
	g.Expect(releaseRevision(g, "prod", "dsr-missing")).To(Equal(missingRevision))
	g.Expect(bundleDeployment(g, "dev", "dsr-missing").Condition(v1alpha1.TargetedCondition)).To(Or(BeNil(), HaveField("Status", metav1.ConditionTrue)))
	expectReady(g, keyOf(h))
	configMap(g, env.Downstreams["dev"], "dsr-missing", "dsr-missing")

	// Once the Secret exists, prod gets it.
	g.Expect(mgmt().Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dsr-absent", Namespace: "fleet-default"},
		StringData: map[string]string{"token": "here"}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, keyOf(missing))
		s := &corev1.Secret{}
		g.Expect(prod.Get(ctx, keyOfName("dsr-missing", "dsr-absent"), s)).To(Succeed())
		g.Expect(s.Data).To(HaveKeyWithValue("token", []byte("here")))
	}, timeout, interval).Should(Succeed())
	g.Expect(namesIn(g, dev, &corev1.SecretList{}, "dsr-absent")).To(BeEmpty())

	// No cluster targeted any more: dev loses the release, the copies and (deleteNamespace) the
	// namespace; prod (keepResources) keeps the chart's resources and the copy, without Helm's
	// records. The cluster namespace copies go with the BundleDeployments.
	updateHelmOp(t, keyOf(h), func(h *v1alpha1.HelmOp) {
		h.Spec.Targets[0].ClusterName, h.Spec.Targets[1].ClusterName = "nowhere", "nowhere"
	})
	g.Eventually(func(g Gomega) {
		ns := &corev1.Namespace{}
		err := dev.Get(ctx, client.ObjectKey{Name: "dsr"}, ns)
		g.Expect(apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil)).To(BeTrue(), "dev's release namespace deleted: %v", err)
		for _, obj := range []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}} {
			for _, n := range []string{"dsr-db", "dsr-settings"} {
				err := dev.Get(ctx, keyOfName("dsr", n), obj)
				g.Expect(apierrors.IsNotFound(err) || obj.GetDeletionTimestamp() != nil).To(BeTrue(), "%s on dev: %v", n, err)
			}
		}
		records := &corev1.SecretList{}
		g.Expect(prod.List(ctx, records, client.InNamespace("dsr"), client.MatchingLabels{"owner": "helm"})).To(Succeed())
		g.Expect(records.Items).To(BeEmpty(), "prod's release records are gone")
		g.Expect(namesIn(g, mgmt(), &corev1.SecretList{}, "downstream-dsr-db")).To(BeEmpty())
		g.Expect(namesIn(g, mgmt(), &corev1.ConfigMapList{}, "downstream-dsr-settings")).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
	cm := &corev1.ConfigMap{}
	g.Expect(prod.Get(ctx, keyOfName("dsr", "dsr-settings"), cm)).To(Succeed(), "keepResources keeps the copy")
	g.Expect(cm.Data).To(HaveKeyWithValue("mode", "slow"))
	configMap(g, env.Downstreams["prod"], "dsr", "dsr")
	expectReady(g, keyOf(missing))
}
