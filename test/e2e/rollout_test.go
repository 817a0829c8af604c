package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
)

// brokenTemplate makes Helm's install or upgrade fail: the API server rejects the name.
const brokenTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: Not_A_Valid_Name
data:
  chartVersion: {{ .Chart.Version | quote }}
`

// TestRolloutHaltsWithARealAgent: dev is the first partition, prod the second, one cluster
// unavailable at a time. A version whose install fails on dev's real agent halts the rollout
// there: prod keeps the previous version; publishing a good version resumes.
func TestRolloutHaltsWithARealAgent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("halting", "1.0.0")).To(Succeed())
	one := intstr.FromInt32(1)
	h := helmOp("halting", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "halting", Version: "*"},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "halting"
			h.Spec.PollingInterval = &metav1.Duration{Duration: 2 * time.Second}
			h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
			h.Spec.RolloutStrategy = &v1alpha1.RolloutStrategy{MaxUnavailable: &one, Partitions: []v1alpha1.Partition{
				{Name: "canary", ClusterName: "dev"}, {Name: "stable", ClusterName: "prod"},
			}}
		})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"dev", "prod"} {
			g.Expect(configMap(g, env.Downstreams[name], "halting", "halting").Data).To(HaveKeyWithValue("chartVersion", "1.0.0"), name)
		}
		expectReady(g, keyOf(h))
	}, timeout, interval).Should(Succeed())

	g.Expect(env.Repo.Publish("halting", "2.0.0", localenv.WithTemplate("configmap.yaml", brokenTemplate))).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(h), got)).To(Succeed())
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonRolloutHalted), ready.Message)
		g.Expect(ready.Message).To(ContainSubstring("rollout of version 2.0.0 halted at partition canary: failed on dev ("))
		g.Expect(got.Status.Display.State).To(Equal(v1alpha1.ReasonRolloutHalted))
	}, timeout, interval).Should(Succeed())

	// prod never gets 2.0.0 while dev fails.
	prodNS := clusterNamespaceOf(g, "fleet-default", "prod")
	g.Consistently(func(g Gomega) {
		bd := &v1alpha1.BundleDeployment{}
		g.Expect(mgmt().Get(ctx, keyOfName(prodNS, "halting"), bd)).To(Succeed())
		g.Expect(bd.Spec.Options.HelmOrEmpty().Version).To(Equal("1.0.0"))
		g.Expect(configMap(g, env.Downstreams["prod"], "halting", "halting").Data).To(HaveKeyWithValue("chartVersion", "1.0.0"))
	}, 5*time.Second, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(helmOpEvents(g, h, v1alpha1.ReasonRolloutHalted)).NotTo(BeEmpty(), "a RolloutHalted event on the HelmOp")
	}, timeout, interval).Should(Succeed())

	// A good version resumes: dev first, then prod.
	g.Expect(env.Repo.Publish("halting", "2.0.1")).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"dev", "prod"} {
			g.Expect(configMap(g, env.Downstreams[name], "halting", "halting").Data).To(HaveKeyWithValue("chartVersion", "2.0.1"), name)
		}
		expectReady(g, keyOf(h))
	}, timeout, interval).Should(Succeed())
}

func clusterNamespaceOf(g Gomega, ns, name string) string {
	c := &v1alpha1.Cluster{}
	g.Expect(mgmt().Get(context.Background(), keyOfName(ns, name), c)).To(Succeed())
	g.Expect(c.Status.Namespace).NotTo(BeEmpty())
	return c.Status.Namespace
}

// TestRolloutOverTwelveClustersWithOneMinutePoll measures a three-partition rollout over twelve
// clusters driven by the real controller with a one-minute pollingInterval: from publishing
// the version to every cluster running it. The twelve clusters' agents are simulated by this
// test (it writes BundleDeployment status as the agent does, as soon as it sees a new
// deployment): what is measured is the controller's poll and its staging, not Helm.
// The durations are logged; they decide nothing.
func TestRolloutOverTwelveClustersWithOneMinutePoll(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := "fleet-rollout"
	g.Expect(mgmt().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ws}})).To(Succeed())
	stages := map[string]string{}
	for i := 1; i <= 12; i++ {
		name := fmt.Sprintf("c%02d", i)
		stages[name] = []string{"canary", "early", "late"}[(i-1)/4]
		g.Expect(mgmt().Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ws,
			Labels: map[string]string{"stage": stages[name]}}})).To(Succeed())
	}

	// The simulated agents, and the record of when each cluster got the new version.
	var mu sync.Mutex
	given := map[string]time.Time{}
	wc, err := client.NewWithWatch(env.Management.Config, client.Options{Scheme: localenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &v1alpha1.BundleDeploymentList{},
		client.MatchingLabels{v1alpha1.ClusterNamespaceLabel: ws})
	g.Expect(err).NotTo(HaveOccurred())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			bd, ok := ev.Object.(*v1alpha1.BundleDeployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if bd.Spec.Options.HelmOrEmpty().Version == "2.0.0" {
				mu.Lock()
				if _, seen := given[bd.Labels[v1alpha1.ClusterLabel]]; !seen {
					given[bd.Labels[v1alpha1.ClusterLabel]] = time.Now()
				}
				mu.Unlock()
			}
			if bd.Status.AppliedDeploymentID != bd.Spec.DeploymentID || !bd.Status.Ready {
				simulateReady(ctx, bd)
			}
		}
	}()
	defer func() { cancel(); w.Stop(); <-done }()

	g.Expect(env.Repo.Publish("staged", "1.0.0")).To(Succeed())
	two := intstr.FromInt32(2)
	rs := &v1alpha1.RolloutStrategy{}
	for _, stage := range []string{"canary", "early", "late"} {
		rs.Partitions = append(rs.Partitions, v1alpha1.Partition{Name: stage, MaxUnavailable: &two,
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": stage}}})
	}
	h := helmOp("staged", ws, v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "staged", Version: "*"}, func(h *v1alpha1.HelmOp) {
		h.Spec.PollingInterval = &metav1.Duration{Duration: time.Minute}
		h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
		h.Spec.RolloutStrategy = rs
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := expectReady(g, keyOf(h))
		g.Expect(got.Status.ReadyClusters).To(Equal(12))
	}, timeout, interval).Should(Succeed())

	published := time.Now()
	g.Expect(env.Repo.Publish("staged", "2.0.0")).To(Succeed())
	var resolved time.Time
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(h), got)).To(Succeed())
		if got.Status.Version == "2.0.0" && resolved.IsZero() {
			resolved = time.Now()
		}
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue())
		g.Expect(got.Status.Version).To(Equal("2.0.0"))
		g.Expect(got.Status.ReadyClusters).To(Equal(12))
	}, 2*time.Minute+timeout, 100*time.Millisecond).Should(Succeed())
	finished := time.Now()

	mu.Lock()
	defer mu.Unlock()
	g.Expect(given).To(HaveLen(12))
	first := map[string]time.Time{}
	var clusters []string
	for c, at := range given {
		clusters = append(clusters, c)
		if f, ok := first[stages[c]]; !ok || at.Before(f) {
			first[stages[c]] = at
		}
	}
	sort.Strings(clusters)
	g.Expect(first["canary"].Before(first["early"])).To(BeTrue(), "canary before early")
	g.Expect(first["early"].Before(first["late"])).To(BeTrue(), "early before late")
	var starts []string
	for _, p := range []string{"canary", "early", "late"} {
		starts = append(starts, fmt.Sprintf("%s at +%.1fs", p, first[p].Sub(published).Seconds()))
	}
	t.Logf("3 partitions x 4 clusters, pollingInterval 1m: publish → version resolved %.1fs, → all 12 ready %.1fs (rollout after resolution %.1fs); partitions started: %s",
		resolved.Sub(published).Seconds(), finished.Sub(published).Seconds(), finished.Sub(resolved).Seconds(), strings.Join(starts, ", "))
}

// simulateReady writes the status an agent writes after deploying the spec and finding every
// resource ready.
func simulateReady(ctx context.Context, seen *v1alpha1.BundleDeployment) {
	_ = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		bd := &v1alpha1.BundleDeployment{}
		if err := mgmt().Get(ctx, client.ObjectKeyFromObject(seen), bd); err != nil {
			return client.IgnoreNotFound(err)
		}
		if bd.Status.AppliedDeploymentID == bd.Spec.DeploymentID && bd.Status.Ready {
			return nil
		}
		orig := bd.DeepCopy()
		bd.Status.ObservedGeneration = bd.Generation
		bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
		bd.Status.Ready, bd.Status.NonModified = true, true
		for _, c := range []struct{ t, msg string }{
			{v1alpha1.InstalledCondition, "chart installed"}, {v1alpha1.DeployedCondition, "release deployed"},
			{v1alpha1.MonitoredCondition, "1 resources checked"}, {v1alpha1.ReadyCondition, "release deployed and every resource ready"},
		} {
			meta.SetStatusCondition(&bd.Status.Conditions, metav1.Condition{Type: c.t, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonSucceeded, Message: c.msg, ObservedGeneration: bd.Generation})
		}
		bd.Status.Release = &v1alpha1.ReleaseInfo{Name: bd.Name, Namespace: "default", ChartVersion: bd.Spec.Options.HelmOrEmpty().Version, Status: "deployed"}
		bd.Status.Display = v1alpha1.BundleDeploymentDisplay{Deployed: "Yes", Monitored: "Yes", State: "Ready"}
		return mgmt().Status().Patch(ctx, bd, client.MergeFrom(orig))
	})
}

// TestDependsOnAcrossHelmOps: HelmOp "backend" deploys to dev only; "frontend" deploys to dev
// and prod and depends on backend. On dev frontend is installed once backend is Ready there; on
// prod it waits, and its HelmOp says for what.
func TestDependsOnAcrossHelmOps(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("backend", "1.0.0")).To(Succeed())
	g.Expect(env.Repo.Publish("frontend", "1.0.0")).To(Succeed())
	frontend := helmOp("frontend", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "frontend", Version: "1.0.0"},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "deps"
			h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
			h.Spec.DependsOn = []v1alpha1.BundleRef{{Name: "backend"}}
		})
	g.Expect(mgmt().Create(ctx, frontend)).To(Succeed())
	// Before backend exists, frontend waits everywhere.
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(frontend), got)).To(Succeed())
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonRollingOut))
		g.Expect(ready.Message).To(ContainSubstring("waiting for dependencies: no Bundle matches name backend"))
	}, timeout, interval).Should(Succeed())
	for _, name := range []string{"dev", "prod"} {
		bd := &v1alpha1.BundleDeployment{}
		err := mgmt().Get(ctx, keyOfName(clusterNamespaceOf(g, "fleet-default", name), "frontend"), bd)
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		g.Expect(err).To(HaveOccurred(), "no frontend BundleDeployment on %s yet", name)
	}

	backend := helmOp("backend", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "backend", Version: "1.0.0"},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "deps"
			h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
		})
	g.Expect(mgmt().Create(ctx, backend)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "deps", "frontend").Data).To(HaveKeyWithValue("chartVersion", "1.0.0"))
		// Backend was Ready on dev before frontend's deployment was written there.
		devNS := clusterNamespaceOf(g, "fleet-default", "dev")
		be, fe := &v1alpha1.BundleDeployment{}, &v1alpha1.BundleDeployment{}
		g.Expect(mgmt().Get(ctx, keyOfName(devNS, "backend"), be)).To(Succeed())
		g.Expect(mgmt().Get(ctx, keyOfName(devNS, "frontend"), fe)).To(Succeed())
		readySince := meta.FindStatusCondition(be.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(readySince).NotTo(BeNil())
		g.Expect(readySince.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(fe.CreationTimestamp.Time).NotTo(BeTemporally("<", readySince.LastTransitionTime.Time))

		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(frontend), got)).To(Succeed())
		g.Expect(got.Condition(v1alpha1.ReadyCondition).Message).To(ContainSubstring(
			"prod (Pending: waiting for dependencies: backend (not deployed on this cluster) not Ready)"))
	}, timeout, interval).Should(Succeed())
	err := env.Downstreams["prod"].Client.Get(ctx, keyOfName("deps", "frontend-config"), &corev1.ConfigMap{})
	g.Expect(client.IgnoreNotFound(err)).To(Succeed())
	g.Expect(err).To(HaveOccurred(), "frontend is not installed on prod")
}
