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
	"github.com/helmops/helmops/internal/controller/cluster"
)

func TestTargetMatrix(t *testing.T) {
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	grp := &v1alpha1.ClusterGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "devs", Namespace: ns, Labels: map[string]string{"tier": "test"}},
		Spec:       v1alpha1.ClusterGroupSpec{Selector: sel("env", "dev")},
	}
	NewWithT(t).Expect(k8s.Create(ctx, grp)).To(Succeed())

	tests := []struct {
		name    string
		targets []v1alpha1.BundleTarget
		want    map[string]string // cluster -> expected values.color
	}{
		{"clusterName", []v1alpha1.BundleTarget{{Name: "one", ClusterName: "dev-2"}},
			map[string]string{"dev-2": "gray"}},
		{"clusterSelector", []v1alpha1.BundleTarget{{Name: "prod", ClusterSelector: sel("env", "prod")}},
			map[string]string{"prod-1": "gray"}},
		{"clusterSelector {} matches every cluster", []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}},
			map[string]string{"dev-1": "gray", "dev-2": "gray", "prod-1": "gray"}},
		{"clusterGroup", []v1alpha1.BundleTarget{{Name: "g", ClusterGroup: "devs"}},
			map[string]string{"dev-1": "gray", "dev-2": "gray"}},
		{"clusterGroupSelector", []v1alpha1.BundleTarget{{Name: "gs", ClusterGroupSelector: sel("tier", "test")}},
			map[string]string{"dev-1": "gray", "dev-2": "gray"}},
		{"all criteria together", []v1alpha1.BundleTarget{{Name: "x", ClusterName: "dev-1", ClusterSelector: sel("region", "eu"),
			ClusterGroup: "devs", ClusterGroupSelector: sel("tier", "test")}},
			map[string]string{"dev-1": "gray"}},
		{"a target without criteria matches nothing", []v1alpha1.BundleTarget{{Name: "nothing"}}, map[string]string{}},
		{"first match wins, doNotDeploy excludes, values per target", []v1alpha1.BundleTarget{
			{Name: "skip", ClusterName: "dev-2", DoNotDeploy: true},
			{Name: "prod", ClusterSelector: sel("env", "prod"), Helm: &v1alpha1.HelmOptions{Values: vals(map[string]any{"color": "green"})}},
			{Name: "devs", ClusterGroup: "devs", Helm: &v1alpha1.HelmOptions{Values: vals(map[string]any{"color": "blue"})}},
			{Name: "rest", ClusterSelector: &metav1.LabelSelector{}, Helm: &v1alpha1.HelmOptions{Values: vals(map[string]any{"color": "red"})}},
		}, map[string]string{"prod-1": "green", "dev-1": "blue"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := newBundle(t, ns, "matrix-"+string(rune('a'+i)), withTargets(tt.targets...))
			g.Eventually(func(g Gomega) {
				got := getBundle(g, b)
				g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
				g.Expect(got.Status.DesiredReadyClusters).To(Equal(len(tt.want)))
				bds := deployments(g, b)
				g.Expect(keys(bds)).To(ConsistOf(keys(tt.want)))
				for c, color := range tt.want {
					bd := bds[c]
					g.Expect(bd.Namespace).To(Equal(nss[c]))
					g.Expect(bd.Name).To(Equal(b.Name))
					g.Expect(bd.Labels).To(And(
						HaveKeyWithValue(v1alpha1.BundleNameLabel, b.Name),
						HaveKeyWithValue(v1alpha1.BundleNamespaceLabel, ns),
						HaveKeyWithValue(v1alpha1.HelmOpLabel, b.Name),
						HaveKeyWithValue(v1alpha1.ClusterLabel, c),
						HaveKeyWithValue(v1alpha1.ClusterNamespaceLabel, ns)))
					g.Expect(bd.Spec.Options.Helm.Version).To(Equal("1.2.3"))
					g.Expect(bd.Spec.Options.Helm.Values.Data).To(HaveKeyWithValue("color", color))
					g.Expect(bd.Spec.Options.Helm.Values.Data).To(HaveKeyWithValue("data", map[string]any{"a": "1"}), "deep-merged")
					g.Expect(bd.Spec.DeploymentID).To(MatchRegexp(`^s-[0-9a-f]{64}$`))
				}
			}, timeout, interval).Should(Succeed())
			if len(tt.want) == 0 {
				got := getBundle(g, b)
				ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonNoTargets))
			}
		})
	}
}

func TestInvalidTargetIsReported(t *testing.T) {
	g := NewWithT(t)
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "bad", withTargets(v1alpha1.BundleTarget{Name: "broken", ClusterSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Sometimes"}}}}))
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.TargetedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
		g.Expect(c.Message).To(And(ContainSubstring("spec.targets[0]"), ContainSubstring("broken"), ContainSubstring("clusterSelector")))
		g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	// Fixing the target heals it.
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Targets[0].ClusterSelector = sel("env", "prod") })
	g.Eventually(func(g Gomega) {
		g.Expect(keys(deployments(g, b))).To(ConsistOf("prod-1"))
		g.Expect(meta.IsStatusConditionTrue(getBundle(g, b).Status.Conditions, v1alpha1.TargetedCondition)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func TestDeploymentsFollowClusterLabels(t *testing.T) {
	g := NewWithT(t)
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "follow", withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	g.Eventually(func(g Gomega) { g.Expect(keys(deployments(g, b))).To(ConsistOf("prod-1")) }, timeout, interval).Should(Succeed())

	relabel := func(name, env string) {
		c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		update(g, c, func(c *v1alpha1.Cluster) { c.Labels["env"] = env })
	}
	relabel("dev-1", "prod")
	g.Eventually(func(g Gomega) { g.Expect(keys(deployments(g, b))).To(ConsistOf("prod-1", "dev-1")) }, timeout, interval).Should(Succeed())
	relabel("prod-1", "dev")
	g.Eventually(func(g Gomega) { g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1")) }, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(getBundle(g, b).Status.DesiredReadyClusters).To(Equal(1)) }, timeout, interval).Should(Succeed())
}

func TestDeletingAClusterRemovesItsNamespaceAndDeployments(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	clusterNS := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: nss["dev-2"]}, clusterNS)).To(Succeed())
	g.Expect(clusterNS.Name).To(Equal(cluster.NamespaceName(ns, "dev-2")))
	g.Expect(clusterNS.Labels).To(And(HaveKeyWithValue(v1alpha1.ManagedLabel, "true"),
		HaveKeyWithValue(v1alpha1.ClusterLabel, "dev-2"), HaveKeyWithValue(v1alpha1.ClusterNamespaceLabel, ns)))
	b := newBundle(t, ns, "all", withTargets(v1alpha1.BundleTarget{ClusterSelector: &metav1.LabelSelector{}}))
	g.Eventually(func(g Gomega) { g.Expect(deployments(g, b)).To(HaveLen(3)) }, timeout, interval).Should(Succeed())

	g.Expect(k8s.Delete(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "dev-2", Namespace: ns}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1", "prod-1"))
		err := k8s.Get(ctx, client.ObjectKey{Name: nss["dev-2"]}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "cluster namespace %s deleted", nss["dev-2"])
		err = k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dev-2"}, &v1alpha1.Cluster{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the finalizer is removed")
		g.Expect(getBundle(g, b).Status.DesiredReadyClusters).To(Equal(2))
	}, 2*timeout, interval).Should(Succeed())
}

func TestSecretCopy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "repo-creds", Namespace: ns},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "u", "password": "p1"}}
	g.Expect(k8s.Create(ctx, src)).To(Succeed())
	b := newBundle(t, ns, "private", withSecret("repo-creds"),
		withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))

	copyIn := func(g Gomega, cluster string) *corev1.Secret {
		s := &corev1.Secret{}
		err := k8s.Get(ctx, client.ObjectKey{Namespace: nss[cluster], Name: "repo-creds"}, s)
		if apierrors.IsNotFound(err) {
			return nil
		}
		g.Expect(err).NotTo(HaveOccurred())
		return s
	}
	g.Eventually(func(g Gomega) {
		s := copyIn(g, "prod-1")
		g.Expect(s).NotTo(BeNil())
		g.Expect(string(s.Type)).To(Equal(v1alpha1.SecretTypeHelmOpsAccess))
		g.Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.ManagedLabel, "true"))
		g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("p1")))
		bd := deployments(g, b)["prod-1"]
		g.Expect(bd).NotTo(BeNil())
		g.Expect(bd.Spec.HelmChartOptions.SecretName).To(Equal("repo-creds"))
		g.Expect(s.OwnerReferences).To(ContainElement(HaveField("UID", bd.UID)))
	}, timeout, interval).Should(Succeed())
	g.Expect(copyIn(g, "dev-1")).To(BeNil(), "never copied to a cluster that is not targeted")
	g.Expect(copyIn(g, "dev-2")).To(BeNil(), "never copied to a cluster that is not targeted")

	// A change of the source reaches the copy.
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(src), src)).To(Succeed())
	src.Data["password"] = []byte("p2")
	g.Expect(k8s.Update(ctx, src)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(copyIn(g, "prod-1").Data).To(HaveKeyWithValue("password", []byte("p2")))
	}, timeout, interval).Should(Succeed())

	// A deleted copy is restored.
	g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nss["prod-1"], Name: "repo-creds"}})).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(copyIn(g, "prod-1")).NotTo(BeNil()) }, timeout, interval).Should(Succeed())

	// Retargeting moves the copy.
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Targets[0].ClusterSelector = sel("env", "dev") })
	g.Eventually(func(g Gomega) {
		g.Expect(copyIn(g, "prod-1")).To(BeNil(), "removed on untarget")
		g.Expect(copyIn(g, "dev-1")).NotTo(BeNil())
		g.Expect(copyIn(g, "dev-2")).NotTo(BeNil())
		g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1", "dev-2"))
	}, timeout, interval).Should(Succeed())

	// Deleting the Bundle deletes its deployments and the copies.
	g.Expect(k8s.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(deployments(g, b)).To(BeEmpty())
		g.Expect(copyIn(g, "dev-1")).To(BeNil())
		g.Expect(copyIn(g, "dev-2")).To(BeNil())
		err := k8s.Get(ctx, client.ObjectKeyFromObject(b), &v1alpha1.Bundle{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func TestMissingSecretHeals(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	b := newBundle(t, ns, "waiting", withSecret("later-creds"),
		withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		for _, ct := range []string{v1alpha1.TargetedCondition, v1alpha1.ReadyCondition} {
			c := meta.FindStatusCondition(got.Status.Conditions, ct)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonSecretNotFound))
			g.Expect(c.Message).To(And(ContainSubstring(`"later-creds"`), ContainSubstring(`"`+ns+`"`)))
		}
		g.Expect(deployments(g, b)).To(BeEmpty())
	}, timeout, interval).Should(Succeed())

	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "later-creds", Namespace: ns},
		StringData: map[string]string{"username": "u", "password": "p"}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.TargetedCondition)).To(BeTrue())
		g.Expect(keys(deployments(g, b))).To(ConsistOf("prod-1"))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["prod-1"], Name: "later-creds"}, &corev1.Secret{})).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// setDeploymentStatus plays the agent.
func setDeploymentStatus(g Gomega, bd *v1alpha1.BundleDeployment, mutate func(bd *v1alpha1.BundleDeployment)) {
	orig := bd.DeepCopy()
	mutate(bd)
	g.Expect(k8s.Status().Patch(context.Background(), bd, client.MergeFrom(orig))).To(Succeed())
}

func cond(t string, ok bool, reason, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

func TestStatusRollUp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	threeClusters(t, ns)
	grp := &v1alpha1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "everything", Namespace: ns},
		Spec: v1alpha1.ClusterGroupSpec{Selector: &metav1.LabelSelector{}}}
	g.Expect(k8s.Create(ctx, grp)).To(Succeed())
	b := newBundle(t, ns, "rollup", withTargets(v1alpha1.BundleTarget{ClusterSelector: &metav1.LabelSelector{}}))
	var bds map[string]*v1alpha1.BundleDeployment
	g.Eventually(func(g Gomega) {
		bds = deployments(g, b)
		g.Expect(bds).To(HaveLen(3))
	}, timeout, interval).Should(Succeed())

	setDeploymentStatus(g, bds["dev-1"], func(bd *v1alpha1.BundleDeployment) {
		bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
		bd.Status.Ready = true
		bd.Status.NonModified = true
		bd.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed"),
			cond(v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded, "ready")}
	})
	setDeploymentStatus(g, bds["dev-2"], func(bd *v1alpha1.BundleDeployment) {
		bd.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, "chart hello: install failed: boom")}
	})
	setDeploymentStatus(g, bds["prod-1"], func(bd *v1alpha1.BundleDeployment) {
		bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
		bd.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed"),
			cond(v1alpha1.ReadyCondition, false, v1alpha1.ReasonResourcesNotReady, "Deployment app/web InProgress")}
	})

	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		s := got.Status.Summary
		g.Expect(s.DesiredReady).To(Equal(3))
		g.Expect(s.Ready).To(Equal(1))
		g.Expect(s.ErrApplied).To(Equal(1))
		g.Expect(s.NotReady).To(Equal(1))
		g.Expect(got.Status.ReadyClusters).To(Equal(1))
		g.Expect(got.Status.DesiredReadyClusters).To(Equal(3))
		g.Expect(got.Status.Display.ReadyBundleDeployments).To(Equal("1/3"))
		g.Expect(got.Status.Display.State).To(Equal("ErrApplied"))
		g.Expect(got.Status.Display.Error).To(BeTrue())
		g.Expect(s.NonReadyResources).To(HaveLen(2))
		g.Expect(s.NonReadyResources[0]).To(And(HaveField("Name", "dev-2"), HaveField("State", "ErrApplied"),
			HaveField("Message", "chart hello: install failed: boom")))
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonClustersNotReady))
		g.Expect(ready.Message).To(Equal("1/3 clusters ready; not ready: dev-2 (ErrApplied: chart hello: install failed: boom), " +
			"prod-1 (NotReady: Deployment app/web InProgress)"))
	}, timeout, interval).Should(Succeed())

	// The clusters count their deployments; the group counts its clusters (no agent reported:
	// all three are not ready).
	g.Eventually(func(g Gomega) {
		c := &v1alpha1.Cluster{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dev-1"}, c)).To(Succeed())
		g.Expect(c.Status.ReadyHelmOps).To(Equal(1))
		g.Expect(c.Status.DesiredReadyHelmOps).To(Equal(1))
		g.Expect(c.Status.Display.ReadyBundles).To(Equal("1/1"))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dev-2"}, c)).To(Succeed())
		g.Expect(c.Status.ReadyHelmOps).To(Equal(0))
		g.Expect(c.Status.DesiredReadyHelmOps).To(Equal(1))
		g.Expect(c.Status.Summary.ErrApplied).To(Equal(1))
		g.Expect(c.Status.Display.State).To(Equal("ErrApplied"))
		gr := &v1alpha1.ClusterGroup{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(grp), gr)).To(Succeed())
		g.Expect(gr.Status.ClusterCount).To(Equal(3))
		g.Expect(gr.Status.NonReadyClusterCount).To(Equal(3))
		g.Expect(gr.Status.Display.ReadyBundles).To(Equal("1/3"))
	}, timeout, interval).Should(Succeed())

	// The agent of dev-1 reports: dev-1 is Ready and all its deployments are, so the group has
	// one ready cluster.
	c := &v1alpha1.Cluster{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dev-1"}, c)).To(Succeed())
	orig := c.DeepCopy()
	c.Status.Agent.LastSeen = &metav1.Time{Time: clock.Now()}
	g.Expect(k8s.Status().Patch(ctx, c, client.MergeFrom(orig))).To(Succeed())
	g.Eventually(func(g Gomega) {
		gr := &v1alpha1.ClusterGroup{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(grp), gr)).To(Succeed())
		g.Expect(gr.Status.ClusterCount).To(Equal(3))
		g.Expect(gr.Status.NonReadyClusterCount).To(Equal(2))
		g.Expect(gr.Status.NonReadyClusters).To(Equal([]string{"dev-2", "prod-1"}))
		g.Expect(gr.Status.Display.ReadyClusters).To(Equal("1/3"))
	}, timeout, interval).Should(Succeed())

	// All ready → the Bundle is Ready.
	for _, name := range []string{"dev-2", "prod-1"} {
		bd := &v1alpha1.BundleDeployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(bds[name]), bd)).To(Succeed())
		setDeploymentStatus(g, bd, func(bd *v1alpha1.BundleDeployment) {
			bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
			bd.Status.Ready = true
			bd.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed"),
				cond(v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded, "ready")}
		})
	}
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue())
		g.Expect(got.Status.Display.ReadyBundleDeployments).To(Equal("3/3"))
		g.Expect(got.Status.Display.State).To(BeEmpty())
		g.Expect(got.Status.Summary.NonReadyResources).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

func TestUnchangedBundleIsNotRewritten(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "stable", withTargets(v1alpha1.BundleTarget{Name: "prod", ClusterSelector: sel("env", "prod")}))
	var before *v1alpha1.BundleDeployment
	g.Eventually(func(g Gomega) {
		before = deployments(g, b)["prod-1"]
		g.Expect(before).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())

	// A spec change that does not change what prod-1 runs (a renamed target, another target
	// matching nothing) is reconciled (observedGeneration follows) without touching the BD.
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) {
		got.Spec.Targets[0].Name = "production"
		got.Spec.Targets = append(got.Spec.Targets, v1alpha1.BundleTarget{Name: "none", ClusterName: "missing"})
	})
	g.Eventually(func(g Gomega) {
		now := getBundle(g, b)
		g.Expect(now.Status.ObservedGeneration).To(Equal(now.Generation))
		g.Expect(now.Generation).To(BeNumerically(">", b.Generation))
	}, timeout, interval).Should(Succeed())
	after := &v1alpha1.BundleDeployment{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(before), after)).To(Succeed())
	g.Expect(after.Spec.DeploymentID).To(Equal(before.Spec.DeploymentID))
	g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))

	// A values change gives a new deploymentID; paused is passed on without changing it.
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Helm.Values.Data["color"] = "purple" })
	var changed *v1alpha1.BundleDeployment
	g.Eventually(func(g Gomega) {
		changed = deployments(g, b)["prod-1"]
		g.Expect(changed.Spec.DeploymentID).NotTo(Equal(before.Spec.DeploymentID))
	}, timeout, interval).Should(Succeed())
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Paused = true })
	g.Eventually(func(g Gomega) {
		bd := deployments(g, b)["prod-1"]
		g.Expect(bd.Spec.Paused).To(BeTrue())
		g.Expect(bd.Spec.DeploymentID).To(Equal(changed.Spec.DeploymentID))
	}, timeout, interval).Should(Succeed())
}

func TestPausedClusterPausesItsDeployments(t *testing.T) {
	g := NewWithT(t)
	ns := workspace(t)
	threeClusters(t, ns)
	b := newBundle(t, ns, "pc", withTargets(v1alpha1.BundleTarget{ClusterSelector: &metav1.LabelSelector{}}))
	g.Eventually(func(g Gomega) { g.Expect(deployments(g, b)).To(HaveLen(3)) }, timeout, interval).Should(Succeed())
	update(g, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dev-2"}},
		func(c *v1alpha1.Cluster) { c.Spec.Paused = true })
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(bds["dev-2"].Spec.Paused).To(BeTrue())
		g.Expect(bds["dev-1"].Spec.Paused).To(BeFalse())
	}, timeout, interval).Should(Succeed())
}

func TestBootstrapDeploysToLocal(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(cluster.Bootstrap(ctx, k8s)).To(Succeed())
	g.Expect(cluster.Bootstrap(ctx, k8s)).To(Succeed(), "idempotent")
	// Another cluster in fleet-local that the default group does not select.
	newCluster(t, cluster.LocalWorkspace, "other", map[string]string{"env": "dev"})
	localNS := clusterNamespace(t, cluster.LocalWorkspace, cluster.LocalCluster)

	b := newBundle(t, cluster.LocalWorkspace, "my-awesome-helmop",
		withTargets(v1alpha1.BundleTarget{Name: "default", ClusterGroup: v1alpha1.DefaultClusterGroup}))
	g.Eventually(func(g Gomega) {
		bds := deployments(g, b)
		g.Expect(keys(bds)).To(ConsistOf(cluster.LocalCluster))
		g.Expect(bds[cluster.LocalCluster].Namespace).To(Equal(localNS))
		g.Expect(getBundle(g, b).Status.Display.ReadyBundleDeployments).To(Equal("0/1"))
	}, timeout, interval).Should(Succeed())
}

func TestSharedAndForeignSecrets(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := workspace(t)
	nss := threeClusters(t, ns)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: ns},
		StringData: map[string]string{"username": "u", "password": "p"}})).To(Succeed())
	prod := withTargets(v1alpha1.BundleTarget{ClusterSelector: sel("env", "prod")})
	a := newBundle(t, ns, "a", withSecret("shared"), prod)
	b := newBundle(t, ns, "b", withSecret("shared"), prod)
	key := client.ObjectKey{Namespace: nss["prod-1"], Name: "shared"}
	g.Eventually(func(g Gomega) {
		s := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, key, s)).To(Succeed())
		g.Expect(s.OwnerReferences).To(HaveLen(2), "owned by the BundleDeployments of both Bundles")
	}, timeout, interval).Should(Succeed())

	// Untargeting one Bundle keeps the copy for the other.
	update(g, a.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Targets[0].ClusterSelector = sel("env", "none") })
	g.Eventually(func(g Gomega) {
		g.Expect(deployments(g, a)).To(BeEmpty())
		s := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, key, s)).To(Succeed())
		g.Expect(s.OwnerReferences).To(ConsistOf(HaveField("UID", deployments(g, b)["prod-1"].UID)))
	}, timeout, interval).Should(Succeed())

	// A secret of that name helmops did not create is never overwritten.
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: nss["dev-1"]},
		StringData: map[string]string{"mine": "yes"}})).To(Succeed())
	c := newBundle(t, ns, "c", withSecret("shared"), withTargets(v1alpha1.BundleTarget{ClusterName: "dev-1"}))
	g.Eventually(func(g Gomega) {
		cond := meta.FindStatusCondition(getBundle(g, c).Status.Conditions, v1alpha1.TargetedCondition)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonCredentialsCopyFailed))
		g.Expect(cond.Message).To(ContainSubstring("secret " + nss["dev-1"] + "/shared exists and is not managed by helmops"))
	}, timeout, interval).Should(Succeed())
	s := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nss["dev-1"], Name: "shared"}, s)).To(Succeed())
	g.Expect(s.Data).To(Equal(map[string][]byte{"mine": []byte("yes")}))
}
