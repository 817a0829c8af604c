package bundle_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/helmops/helmops/api/v1alpha1"
)

// These tests simulate the agents: a goroutine writes BundleDeployment status the way the
// agent does (appliedDeploymentID, ready, the Installed/Deployed/Monitored/Ready conditions)
// when it sees a new deployment ID. What they test is decided upstream by the bundle
// controller, and twelve downstream control planes with an agent each would not fit the
// machines the suite runs on; the agent's own installs are tested in internal/agent, and
// test/e2e halts a rollout with a real agent and a failing chart.

// outcome is what a simulated agent does with a deployment: nil deploys it and reports it
// ready; an error reports the apply failed; errHold leaves it unapplied.
type outcome func(bd *v1alpha1.BundleDeployment) error

var errHold = fmt.Errorf("hold")

// simulateAgents answers every BundleDeployment of the workspace's cluster namespaces until the
// test ends, as decide says.
func simulateAgents(t *testing.T, ws string, decide outcome) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: k8s.Scheme()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	list := &v1alpha1.BundleDeploymentList{}
	w, err := wc.Watch(ctx, list, client.MatchingLabels{v1alpha1.ClusterNamespaceLabel: ws})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); w.Stop(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.ResultChan() {
			bd, ok := ev.Object.(*v1alpha1.BundleDeployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			answer(ctx, bd, decide)
		}
	}()
}

// answer writes the status an agent would write for the BundleDeployment's spec.
func answer(ctx context.Context, seen *v1alpha1.BundleDeployment, decide outcome) {
	_ = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		bd := &v1alpha1.BundleDeployment{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(seen), bd); err != nil {
			return client.IgnoreNotFound(err)
		}
		err := decide(bd)
		if err == errHold {
			return nil
		}
		orig := bd.DeepCopy()
		cond := func(t string, ok bool, reason, msg string) {
			s := metav1.ConditionFalse
			if ok {
				s = metav1.ConditionTrue
			}
			meta.SetStatusCondition(&bd.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason,
				Message: msg, ObservedGeneration: bd.Generation})
		}
		bd.Status.ObservedGeneration = bd.Generation
		if err != nil {
			if meta.IsStatusConditionFalse(bd.Status.Conditions, v1alpha1.DeployedCondition) &&
				bd.Status.ObservedGeneration == orig.Status.ObservedGeneration {
				return nil // already reported
			}
			bd.Status.Ready = false
			for _, t := range []string{v1alpha1.InstalledCondition, v1alpha1.DeployedCondition, v1alpha1.ReadyCondition} {
				cond(t, false, v1alpha1.ReasonUpgradeFailed, err.Error())
			}
			bd.Status.Display.State = "ErrApplied"
		} else {
			if bd.Status.AppliedDeploymentID == bd.Spec.DeploymentID && bd.Status.Ready {
				return nil
			}
			bd.Status.AppliedDeploymentID = bd.Spec.DeploymentID
			bd.Status.Ready, bd.Status.NonModified = true, true
			cond(v1alpha1.InstalledCondition, true, v1alpha1.ReasonSucceeded, "chart installed")
			cond(v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed")
			cond(v1alpha1.MonitoredCondition, true, v1alpha1.ReasonSucceeded, "1 resources checked")
			cond(v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded, "release deployed and every resource ready")
			bd.Status.Release = &v1alpha1.ReleaseInfo{Name: bd.Name, Namespace: "app", ChartVersion: bd.Spec.Options.HelmOrEmpty().Version, Status: "deployed"}
			bd.Status.Display = v1alpha1.BundleDeploymentDisplay{Deployed: "Yes", Monitored: "Yes", State: "Ready"}
		}
		return k8s.Status().Patch(ctx, bd, client.MergeFrom(orig))
	})
}

func deployAll(*v1alpha1.BundleDeployment) error { return nil }

// stagedClusters creates twelve clusters, c01…c12, labelled stage=canary, early or late, four
// each, and waits for their namespaces.
func stagedClusters(t *testing.T, ws string) map[string]string {
	stages := map[string]string{}
	for i := 1; i <= 12; i++ {
		name := fmt.Sprintf("c%02d", i)
		stages[name] = []string{"canary", "early", "late"}[(i-1)/4]
		newCluster(t, ws, name, map[string]string{"stage": stages[name]})
	}
	for name := range stages {
		clusterNamespace(t, ws, name)
	}
	return stages
}

func threePartitions(perPartition intstr.IntOrString, total *intstr.IntOrString) bundleOption {
	return func(b *v1alpha1.Bundle) {
		b.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
		rs := &v1alpha1.RolloutStrategy{MaxUnavailable: total}
		for _, stage := range []string{"canary", "early", "late"} {
			mu := perPartition
			rs.Partitions = append(rs.Partitions, v1alpha1.Partition{Name: stage, MaxUnavailable: &mu, ClusterSelector: sel("stage", stage)})
		}
		b.Spec.RolloutStrategy = rs
	}
}

func version(v string) bundleOption {
	return func(b *v1alpha1.Bundle) { b.Spec.Helm.Version = v }
}

func setVersion(g Gomega, b *v1alpha1.Bundle, v string) {
	update(g, b.DeepCopy(), func(got *v1alpha1.Bundle) { got.Spec.Helm.Version = v })
}

func waitReady(t *testing.T, b *v1alpha1.Bundle, n int) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(),
			"%v", got.Condition(v1alpha1.ReadyCondition))
		g.Expect(got.Status.Summary.Ready).To(Equal(n))
	}, 2*timeout, interval).Should(Succeed())
}

// observer follows every BundleDeployment of a workspace's clusters through one watch, so it
// sees each write in the order the API server made it, and calls check after each with the
// BundleDeployments by "<bundle>/<cluster>".
type observer struct {
	mu    sync.Mutex
	bds   map[string]*v1alpha1.BundleDeployment
	fails []string
}

func observe(t *testing.T, ws string, check func(bds map[string]*v1alpha1.BundleDeployment) string) *observer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: k8s.Scheme()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &v1alpha1.BundleDeploymentList{}, client.MatchingLabels{v1alpha1.ClusterNamespaceLabel: ws})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	o := &observer{bds: map[string]*v1alpha1.BundleDeployment{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			bd, ok := ev.Object.(*v1alpha1.BundleDeployment)
			if !ok {
				continue
			}
			o.mu.Lock()
			key := bd.Labels[v1alpha1.BundleNameLabel] + "/" + bd.Labels[v1alpha1.ClusterLabel]
			if ev.Type == watch.Deleted {
				delete(o.bds, key)
			} else {
				o.bds[key] = bd
			}
			if msg := check(o.bds); msg != "" {
				o.fails = append(o.fails, fmt.Sprintf("after %s of %s (resourceVersion %s): %s", ev.Type, bd.Namespace, bd.ResourceVersion, msg))
			}
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return o
}

func (o *observer) failures() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.fails...)
}

func unavailable(bd *v1alpha1.BundleDeployment) bool {
	return bd.Status.AppliedDeploymentID != bd.Spec.DeploymentID || !bd.Status.Ready
}

func runsVersion(bd *v1alpha1.BundleDeployment, v string) bool {
	return bd.Spec.Options.HelmOrEmpty().Version == v
}

// TestRolloutStagesPartitionsInOrder: twelve clusters in three partitions of four (at most 2
// unavailable each, at most 3 over the Bundle). After a version change, at no moment the
// watch shows are more than 3 clusters unavailable or more than 2 of one partition moving, and
// a partition gets the version only when the one before it is within its maxUnavailable.
func TestRolloutStagesPartitionsInOrder(t *testing.T) {
	ws := workspace(t)
	stages := stagedClusters(t, ws)
	simulateAgents(t, ws, deployAll)
	total := intstr.FromInt32(3)
	b := newBundle(t, ws, "staged", threePartitions(intstr.FromInt32(2), &total), version("1.0.0"))
	waitReady(t, b, 12)

	order := []string{"canary", "early", "late"}
	started := map[string]int{} // partition -> index of the watch event that first gave it 2.0.0
	events := 0
	obs := observe(t, ws, func(bds map[string]*v1alpha1.BundleDeployment) string {
		events++
		down := 0
		moving := map[string]int{}
		notDone := map[string]int{}
		for key, bd := range bds {
			c := strings.TrimPrefix(key, "staged/")
			if unavailable(bd) {
				down++
			}
			if runsVersion(bd, "2.0.0") && unavailable(bd) {
				moving[stages[c]]++
			}
			if !runsVersion(bd, "2.0.0") || unavailable(bd) {
				notDone[stages[c]]++
			}
			if _, ok := started[stages[c]]; !ok && runsVersion(bd, "2.0.0") {
				started[stages[c]] = events
				for i, p := range order {
					if p != stages[c] || i == 0 {
						continue
					}
					if notDone[order[i-1]] > 2 {
						return fmt.Sprintf("partition %s started while %d clusters of %s were not done (2 allowed)", p, notDone[order[i-1]], order[i-1])
					}
				}
			}
		}
		var out []string
		if down > 3 {
			out = append(out, fmt.Sprintf("%d clusters unavailable, 3 allowed", down))
		}
		for p, n := range moving {
			if n > 2 {
				out = append(out, fmt.Sprintf("%d clusters of %s moving, 2 allowed", n, p))
			}
		}
		return strings.Join(out, "; ")
	})
	// The watch starts with the current objects: wait until it has seen all twelve.
	NewWithT(t).Eventually(func() int { obs.mu.Lock(); defer obs.mu.Unlock(); return len(obs.bds) }, timeout, interval).Should(Equal(12))

	g := NewWithT(t)
	setVersion(g, b, "2.0.0")
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(),
			"%v", got.Condition(v1alpha1.ReadyCondition))
		for c, bd := range deployments(g, b) {
			g.Expect(bd.Status.Release.ChartVersion).To(Equal("2.0.0"), c)
		}
	}, 3*timeout, interval).Should(Succeed())

	g.Expect(obs.failures()).To(BeEmpty())
	obs.mu.Lock()
	g.Expect(started).To(HaveLen(3))
	g.Expect(started["canary"]).To(BeNumerically("<", started["early"]))
	g.Expect(started["early"]).To(BeNumerically("<", started["late"]))
	obs.mu.Unlock()

	got := getBundle(g, b)
	g.Expect(got.Status.PartitionStatus).To(HaveLen(3))
	for i, p := range got.Status.PartitionStatus {
		g.Expect(p.Name).To(Equal(order[i]))
		g.Expect(p.Count).To(Equal(4))
		g.Expect(p.MaxUnavailable).To(Equal(2))
		g.Expect(p.Unavailable).To(BeZero())
		g.Expect(p.Summary.Ready).To(Equal(4))
	}
	g.Expect(got.Status.MaxUnavailable).To(Equal(3))
	g.Expect(got.Status.Unavailable).To(BeZero())
}

// TestRolloutHaltsOnFailureAndResumes: a version that fails on the first partition stops
// there; the other partitions keep the previous version; a good version resumes.
func TestRolloutHaltsOnFailureAndResumes(t *testing.T) {
	ws := workspace(t)
	stages := stagedClusters(t, ws)
	simulateAgents(t, ws, func(bd *v1alpha1.BundleDeployment) error {
		if runsVersion(bd, "2.0.0") {
			return fmt.Errorf("upgrade failed: release bad-2.0.0 failed: the chart's hook failed")
		}
		return nil
	})
	total := intstr.FromString("100%")
	b := newBundle(t, ws, "halting", threePartitions(intstr.FromInt32(2), &total), version("1.0.0"))
	waitReady(t, b, 12)

	obs := observe(t, ws, func(bds map[string]*v1alpha1.BundleDeployment) string {
		for key, bd := range bds {
			c := strings.TrimPrefix(key, "halting/")
			if stages[c] != "canary" && runsVersion(bd, "2.0.0") {
				return fmt.Sprintf("cluster %s of partition %s got the failing version", c, stages[c])
			}
		}
		return ""
	})
	g := NewWithT(t)
	setVersion(g, b, "2.0.0")
	var halted *v1alpha1.Bundle
	g.Eventually(func(g Gomega) {
		halted = getBundle(g, b)
		ready := halted.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonRolloutHalted), ready.Message)
	}, 2*timeout, interval).Should(Succeed())

	// Two canary clusters got 2.0.0, as maxUnavailable allows; once both have failed the
	// message names them.
	g.Eventually(func(g Gomega) {
		halted = getBundle(g, b)
		var failed []string
		for c, bd := range deployments(g, b) {
			if runsVersion(bd, "2.0.0") {
				failed = append(failed, c)
			} else {
				g.Expect(bd.Status.Release.ChartVersion).To(Equal("1.0.0"), "%s keeps the last good version", c)
			}
		}
		g.Expect(failed).To(HaveLen(2))
		msg := halted.Condition(v1alpha1.ReadyCondition).Message
		g.Expect(msg).To(ContainSubstring("rollout of version 2.0.0 halted at partition canary"))
		for _, c := range failed {
			g.Expect(stages[c]).To(Equal("canary"))
			g.Expect(msg).To(ContainSubstring(c + " (upgrade failed"))
		}
		g.Expect(halted.Status.Display.State).To(Equal(v1alpha1.ReasonRolloutHalted))
	}, timeout, interval).Should(Succeed())

	// The halt stays: nothing else moves while the failures last.
	g.Consistently(func(g Gomega) {
		n := 0
		for _, bd := range deployments(g, b) {
			if runsVersion(bd, "2.0.0") {
				n++
			}
		}
		g.Expect(n).To(Equal(2))
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())

	// An event on the Bundle, and the metric.
	g.Eventually(func(g Gomega) {
		evs := &corev1.EventList{}
		g.Expect(k8s.List(context.Background(), evs, client.InNamespace(ws))).To(Succeed())
		var reasons []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Bundle" && e.InvolvedObject.Name == b.Name {
				reasons = append(reasons, e.Reason)
			}
		}
		g.Expect(reasons).To(ContainElement(v1alpha1.ReasonRolloutHalted))
	}, timeout, interval).Should(Succeed())
	g.Expect(gauge("helmops_bundle_rollout_halted", ws, b.Name)).To(Equal(1.0))
	g.Expect(gauge("helmops_bundle_rollout_halts_total", ws, b.Name)).To(Equal(1.0))

	// A good version resumes: every cluster reaches it.
	setVersion(g, b, "2.0.1")
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(),
			"%v", got.Condition(v1alpha1.ReadyCondition))
		for c, bd := range deployments(g, b) {
			g.Expect(bd.Status.Release.ChartVersion).To(Equal("2.0.1"), c)
		}
	}, 3*timeout, interval).Should(Succeed())
	g.Expect(gauge("helmops_bundle_rollout_halted", ws, b.Name)).To(Equal(0.0))
	g.Expect(obs.failures()).To(BeEmpty())
}

// TestRolloutHaltsAtTheProgressDeadline: a cluster that never becomes ready with the new
// version halts the rollout once the default progress deadline (10 minutes, on the
// reconciler's clock) has passed.
func TestRolloutHaltsAtTheProgressDeadline(t *testing.T) {
	ws := workspace(t)
	stages := stagedClusters(t, ws)
	simulateAgents(t, ws, func(bd *v1alpha1.BundleDeployment) error {
		if runsVersion(bd, "2.0.0") {
			return errHold // the agent never gets it ready
		}
		return nil
	})
	total := intstr.FromString("100%")
	b := newBundle(t, ws, "slow", threePartitions(intstr.FromInt32(3), &total), version("1.0.0"))
	waitReady(t, b, 12)
	g := NewWithT(t)
	setVersion(g, b, "2.0.0")
	var moved []string
	g.Eventually(func(g Gomega) {
		moved = nil
		for c, bd := range deployments(g, b) {
			if runsVersion(bd, "2.0.0") {
				moved = append(moved, c)
			}
		}
		g.Expect(moved).To(HaveLen(3))
	}, timeout, interval).Should(Succeed())
	// The status is patched at the end of the reconcile that wrote the deployments.
	g.Eventually(func(g Gomega) {
		g.Expect(getBundle(g, b).Condition(v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonRollingOut))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getBundle(g, b).Condition(v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonRollingOut))
	}, time.Second, interval).Should(Succeed(), "within the deadline the rollout only waits")

	bundleClock.SetTime(time.Now().Add(11 * time.Minute))
	t.Cleanup(func() { bundleClock.SetTime(time.Now()) })
	// Any change to a deployment reconciles the Bundle on the moved clock.
	update(g, deployments(g, b)[moved[0]], func(bd *v1alpha1.BundleDeployment) {
		bd.Annotations["test/poke"] = "1"
	})
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonRolloutHalted), ready.Message)
		g.Expect(ready.Message).To(ContainSubstring("not ready 10m0s after it was given this version"))
	}, timeout, interval).Should(Succeed())
	for c, bd := range deployments(g, b) {
		if stages[c] != "canary" {
			g.Expect(runsVersion(bd, "1.0.0")).To(BeTrue(), c)
		}
	}
}

// TestDependsOnWaitsPerCluster: B depends on A; on each cluster B's deployment is created only
// once A is Ready there, and B's status says what it waits for.
func TestDependsOnWaitsPerCluster(t *testing.T) {
	ws := workspace(t)
	nss := threeClusters(t, ws)
	var mu sync.Mutex
	release := map[string]bool{} // cluster namespace -> A may become ready there
	simulateAgents(t, ws, func(bd *v1alpha1.BundleDeployment) error {
		mu.Lock()
		defer mu.Unlock()
		if bd.Labels[v1alpha1.BundleNameLabel] == "a" && !release[bd.Namespace] {
			return errHold
		}
		return nil
	})
	all := withTargets(v1alpha1.BundleTarget{Name: "all", ClusterSelector: &metav1.LabelSelector{}})
	a := newBundle(t, ws, "a", all)
	b := newBundle(t, ws, "b", all, func(b *v1alpha1.Bundle) { b.Spec.DependsOn = []v1alpha1.BundleRef{{Name: "a"}} })

	// Whenever B's deployment exists on a cluster, A's is Ready there: both seen through one
	// watch, in the API server's order.
	obs := observe(t, ws, func(bds map[string]*v1alpha1.BundleDeployment) string {
		for key := range bds {
			c, ok := strings.CutPrefix(key, "b/")
			if !ok {
				continue
			}
			if ad := bds["a/"+c]; ad == nil || unavailable(ad) {
				return "B deployed on " + c + " before A was ready there"
			}
		}
		return ""
	})

	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		got := getBundle(g, b)
		g.Expect(got.Status.Summary.Pending).To(Equal(3))
		ready := got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Message).To(ContainSubstring("waiting for dependencies: a (WaitApplied) not Ready"))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(deployments(g, b)).To(BeEmpty()) }, 2*time.Second, 200*time.Millisecond).Should(Succeed())

	// A becomes ready on dev-1 only: B follows there, and only there.
	mu.Lock()
	release[nss["dev-1"]] = true
	mu.Unlock()
	update(g, &v1alpha1.BundleDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: nss["dev-1"], Name: "a"}},
		func(bd *v1alpha1.BundleDeployment) { bd.Annotations = map[string]string{"test/poke": "1"} })
	g.Eventually(func(g Gomega) { g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1")) }, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(keys(deployments(g, b))).To(ConsistOf("dev-1")) }, 2*time.Second, 200*time.Millisecond).Should(Succeed())

	mu.Lock()
	release[nss["dev-2"]], release[nss["prod-1"]] = true, true
	mu.Unlock()
	for _, c := range []string{"dev-2", "prod-1"} {
		update(g, &v1alpha1.BundleDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: nss[c], Name: "a"}},
			func(bd *v1alpha1.BundleDeployment) { bd.Annotations = map[string]string{"test/poke": "1"} })
	}
	waitReady(t, a, 3)
	waitReady(t, b, 3)
	g.Expect(obs.failures()).To(BeEmpty())
}

func ptrTo[T any](v T) *T { return &v }

// gauge reads one series of a helmops metric from the controller-runtime registry.
func gauge(name, namespace, bundleName string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "namespace") == namespace && label(m, "name") == bundleName {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
