package scale

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// TestRequestsOfOneHelmOp counts the API requests `helmops controller` makes for one HelmOp
// that targets no cluster: its first reconcile, a poll that finds nothing new and a poll that
// finds a new version. It runs against the real binary, so what it counts is what a user's
// apiserver gets, watches and caches included.
func TestRequestsOfOneHelmOp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp := controlPlane(t, "scale-requests")
	repo := chartRepo(t, "app", "1.0.0")
	ns := namespace(t, cp.Client, "counted")
	proxy := newCountingProxy(t, cp, "controller")
	startController(t, proxy.kubeconfig)
	// Wait until the controller's caches are up: its bootstrap wrote fleet-local and the watches run.
	g.Eventually(func() int { return proxy.snapshot()["watch helmops"] }, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", 1))
	time.Sleep(2 * time.Second)

	// A poll interval long enough to see each phase alone, short enough for the test.
	const interval = 6 * time.Second
	op := helmOp(ns, "counted", repo.URL, "app", "1.x", polling(interval))
	get := func(g Gomega) *v1alpha1.HelmOp {
		got := &v1alpha1.HelmOp{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(op), got)).To(Succeed())
		return got
	}
	// quiet waits until the controller made no request for a second.
	quiet := func() requestCounts {
		last := proxy.snapshot()
		for {
			time.Sleep(time.Second)
			now := proxy.snapshot()
			if now.since(last).total() == 0 {
				return now
			}
			last = now
		}
	}

	// 1. The first reconcile, until the HelmOp's status settled.
	before := quiet()
	g.Expect(cp.Client.Create(ctx, op)).To(Succeed())
	var firstPoll metav1.Time
	g.Eventually(func(g Gomega) {
		got := get(g)
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.AcceptedCondition)).To(BeTrue())
		g.Expect(got.Status.Version).To(Equal("1.0.0"))
		g.Expect(got.Status.LastPollingTime).NotTo(BeNil())
		firstPoll = *got.Status.LastPollingTime
	}, time.Minute, 50*time.Millisecond).Should(Succeed())
	afterFirst := quiet()
	first := afterFirst.since(before)

	// 2. A poll that finds nothing new.
	g.Eventually(func(g Gomega) {
		g.Expect(get(g).Status.LastPollingTime.Time).To(BeTemporally(">", firstPoll.Time))
	}, time.Minute, 50*time.Millisecond).Should(Succeed())
	afterUnchanged := quiet()
	unchanged := afterUnchanged.since(afterFirst)
	secondPoll := *get(g).Status.LastPollingTime

	// 3. A poll that finds a new version.
	g.Expect(repo.Publish("app", "1.1.0")).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := get(g)
		g.Expect(got.Status.LastPollingTime.Time).To(BeTemporally(">", secondPoll.Time))
		g.Expect(got.Status.Version).To(Equal("1.1.0"))
	}, time.Minute, 50*time.Millisecond).Should(Succeed())
	newVersion := quiet().since(afterUnchanged)
	b := &v1alpha1.Bundle{}
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(op), b)).To(Succeed())
	g.Expect(b.Spec.HelmOrEmpty().Version).To(Equal("1.1.0"))

	t.Logf("first reconcile: %v", first)
	t.Logf("poll, nothing new: %v", unchanged)
	t.Logf("poll, new version: %v", newVersion)

	// Reads come from the caches; only writes reach the apiserver, and only those that change
	// something. Events are counted apart: they are the record users read with kubectl describe.
	// Where a write follows the cache, a reconcile that read it before it caught up costs one
	// more request (a conflict, or a patch that repeats the last one): those counts have a range.
	expectWrites(t, "first reconcile", first, map[string][2]int{
		"patch helmops":  {1, 1}, // the finalizer
		"create bundles": {1, 1}, // with the bundle controller's finalizer: no patch for it
		// The bundle controller's summary of the new Bundle; its finalizer's own event can bring
		// the Bundle back before the cache holds the first status.
		"patch bundles/status": {1, 2},
		"patch helmops/status": {2, 2}, // the resolution, then the Bundle's summary
	})
	expectWrites(t, "poll that finds nothing new", unchanged, map[string][2]int{
		"patch helmops/status": {1, 1}, // lastPollingTriggered advances on every attempt
	})
	expectWrites(t, "poll that finds a new version", newVersion, map[string][2]int{
		"patch bundles":        {1, 1}, // the spec, with a merge patch
		"patch bundles/status": {1, 1},
		"patch helmops/status": {2, 2}, // the resolution, then the Bundle's summary
	})
}

// expectWrites checks the writes among counts (events apart) against [min, max] per key, and
// allows at most one conflict (a stale read retried) per phase.
func expectWrites(t *testing.T, phase string, counts requestCounts, want map[string][2]int) {
	t.Helper()
	g := NewWithT(t)
	writes := counts.without("events").writes()
	g.Expect(slices.Sorted(maps.Keys(writes))).To(Equal(slices.Sorted(maps.Keys(want))), "%s: %v", phase, counts)
	for k, r := range want {
		g.Expect(writes[k]).To(BeNumerically(">=", r[0]), "%s: %s: %v", phase, k, counts)
		g.Expect(writes[k]).To(BeNumerically("<=", r[1]), "%s: %s: %v", phase, k, counts)
	}
	conflicts := 0
	for k, v := range counts {
		if strings.HasPrefix(k, "conflict ") {
			conflicts += v
		}
	}
	g.Expect(conflicts).To(BeNumerically("<=", 1), "%s: %v", phase, counts)
}
