package scale

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

func namespace(t *testing.T, c client.Client, name string) string {
	t.Helper()
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func chartRepo(t *testing.T, chart string, versions ...string) *testenv.ChartRepo {
	t.Helper()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Stop)
	for _, v := range versions {
		if err := repo.Publish(chart, v); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

func helmOp(ns, name, repo, chart, version string, mutate ...func(*v1alpha1.HelmOp)) *v1alpha1.HelmOp {
	op := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{Repo: repo, Chart: chart, Version: version},
		}},
	}
	for _, m := range mutate {
		m(op)
	}
	return op
}

func polling(d time.Duration) func(*v1alpha1.HelmOp) {
	return func(op *v1alpha1.HelmOp) { op.Spec.PollingInterval = &metav1.Duration{Duration: d} }
}

// createAll creates the objects 20 at a time.
func createAll(g Gomega, c client.Client, objs []client.Object) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for _, o := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.Expect(c.Create(context.Background(), o)).To(Succeed())
		}()
	}
	wg.Wait()
}

// createAndWait creates the HelmOps and waits until every one of ns is Accepted at version with
// an exact Bundle.
func createAndWait(g Gomega, c client.Client, seen client.Reader, ns, version string, ops []client.Object) {
	createAll(g, c, ops)
	g.Eventually(func(g Gomega) {
		got, bad := accepted(g, seen, ns, version)
		g.Expect(got).To(Equal(len(ops)), "first not yet: %s", bad)
	}, 10*time.Minute, time.Second).Should(Succeed())
}

func helmOps(ns string, n int, repo, chart, version string, mutate ...func(*v1alpha1.HelmOp)) []client.Object {
	out := make([]client.Object, n)
	for i := range out {
		out[i] = helmOp(ns, fmt.Sprintf("op-%04d", i), repo, chart, version, mutate...)
	}
	return out
}

// accepted counts the HelmOps of ns that are Accepted=True at version with a Bundle at exactly
// version, and returns the first one that is not, for the failure message.
func accepted(g Gomega, c client.Reader, ns, version string) (int, string) {
	ctx := context.Background()
	ops := &v1alpha1.HelmOpList{}
	g.Expect(c.List(ctx, ops, client.InNamespace(ns))).To(Succeed())
	bundles := &v1alpha1.BundleList{}
	g.Expect(c.List(ctx, bundles, client.InNamespace(ns))).To(Succeed())
	bundleVersion := map[string]string{}
	for _, b := range bundles.Items {
		bundleVersion[b.Name] = b.Spec.HelmOrEmpty().Version
	}
	n, bad := 0, ""
	for i := range ops.Items {
		op := &ops.Items[i]
		if meta.IsStatusConditionTrue(op.Status.Conditions, v1alpha1.AcceptedCondition) && op.Status.Version == version && bundleVersion[op.Name] == version {
			n++
		} else if bad == "" {
			bad = fmt.Sprintf("%s: version %q, Bundle %q, conditions %v", op.Name, op.Status.Version, bundleVersion[op.Name], op.Status.Conditions)
		}
	}
	return n, bad
}

// TestThousandHelmOpsCreatedAtOnce: HelmOps with the constraint 1.x on one repository (1.0.0,
// 1.1.0, 1.2.0, 2.0.0), created at once. Every HelmOp ends Accepted=True at 1.2.0 with a Bundle
// at exactly 1.2.0; the repository is asked for its index at most once per revalidation window.
// Sizes: 200 in `make test`, 1,000 with HELMOPS_SCALE=full.
func TestThousandHelmOpsCreatedAtOnce(t *testing.T) {
	n := size(200, 1000)
	g := NewWithT(t)
	cp := controlPlane(t, "scale-helmops")
	seen := watched(t, cp)
	repo := chartRepo(t, "app", "1.0.0", "1.1.0", "1.2.0", "2.0.0")
	ns := namespace(t, cp.Client, "many")
	proxy := newCountingProxy(t, cp, "controller")
	ctrl := startController(t, proxy.kubeconfig)

	start := time.Now()
	createAll(g, cp.Client, helmOps(ns, n, repo.URL, "app", "1.x"))
	created := time.Since(start)
	g.Eventually(func(g Gomega) {
		got, bad := accepted(g, seen, ns, "1.2.0")
		g.Expect(got).To(Equal(n), "first not yet: %s", bad)
	}, 10*time.Minute, time.Second).Should(Succeed())
	elapsed := time.Since(start)
	requests := repo.Requests("/index.yaml")
	g.Expect(requests).To(BeNumerically("<=", int(elapsed.Seconds())/2+2), "the HelmOps share the index: one request per 2s revalidation window at most")
	mean, peak := proxy.rate(start, time.Now())
	t.Logf("%d HelmOps (created in %.1fs): all Accepted=True with an exact Bundle %.1fs after the first was created; %d index requests; controller peak RSS %.0f MiB; controller requests %.0f/s mean, %d/s peak; by kind: %v",
		n, created.Seconds(), elapsed.Seconds(), requests, ctrl.peakRSS(), mean, peak, proxy.snapshot().writes())
}

// TestNewHelmOpIsNotStarvedByPolls: while many HelmOps poll every 10s, a new HelmOp gets its
// Bundle; it is queued ahead of the polls. Sizes: 200 polling in `make test`, 1,000 with
// HELMOPS_SCALE=full. The time to its Bundle is reported (goal: ≤ 2s).
func TestNewHelmOpIsNotStarvedByPolls(t *testing.T) {
	n := size(200, 1000)
	g := NewWithT(t)
	cp := controlPlane(t, "scale-starve")
	seen := watched(t, cp)
	repo := chartRepo(t, "app", "1.0.0", "1.1.0")
	ns := namespace(t, cp.Client, "pollers")
	proxy := newCountingProxy(t, cp, "controller")
	ctrl := startController(t, proxy.kubeconfig)
	ctx := context.Background()

	createAndWait(g, cp.Client, seen, ns, "1.1.0", helmOps(ns, n, repo.URL, "app", "1.x", polling(10*time.Second)))
	// Let the polls run for more than one interval, so they fill the queue.
	time.Sleep(12 * time.Second)

	var latencies []time.Duration
	for i := range 3 {
		op := helmOp(ns, fmt.Sprintf("newcomer-%d", i), repo.URL, "app", "1.x", polling(10*time.Second))
		created := time.Now()
		g.Expect(cp.Client.Create(ctx, op)).To(Succeed())
		g.Eventually(func(g Gomega) {
			b := &v1alpha1.Bundle{}
			g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(op), b)).To(Succeed())
			g.Expect(b.Spec.HelmOrEmpty().Version).To(Equal("1.1.0"))
		}, 5*time.Minute, 20*time.Millisecond).Should(Succeed())
		latencies = append(latencies, time.Since(created))
		time.Sleep(3 * time.Second)
	}

	// The polls kept going for every HelmOp meanwhile.
	since := time.Now()
	g.Eventually(func(g Gomega) {
		ops := &v1alpha1.HelmOpList{}
		g.Expect(seen.List(ctx, ops, client.InNamespace(ns))).To(Succeed())
		for i := range ops.Items {
			last := ops.Items[i].Status.LastPollingTime
			g.Expect(last).NotTo(BeNil(), ops.Items[i].Name)
			g.Expect(last.Time).To(BeTemporally(">=", since.Add(-time.Second)), "%s polled", ops.Items[i].Name)
		}
	}, 5*time.Minute, time.Second).Should(Succeed())
	mean, peak := proxy.rate(since.Add(-20*time.Second), since)
	t.Logf("%d HelmOps polling every 10s: a new HelmOp got its exact Bundle after %v; controller requests %.0f/s mean, %d/s peak while polling; peak RSS %.0f MiB",
		n, latencies, mean, peak, ctrl.peakRSS())
}

// TestManyHelmOpsPollingEveryTwoSeconds: 100 HelmOps poll one repository every 2s; every
// HelmOp's lastPollingTriggered keeps advancing, and the repository gets at most one index
// request per revalidation window (2s). The longest gap between two polls of one HelmOp is
// reported (goal: ≤ 4s).
func TestManyHelmOpsPollingEveryTwoSeconds(t *testing.T) {
	n := 100
	g := NewWithT(t)
	cp := controlPlane(t, "scale-polling")
	seen := watched(t, cp)
	repo := chartRepo(t, "app", "1.0.0")
	ns := namespace(t, cp.Client, "pollers")
	proxy := newCountingProxy(t, cp, "controller")
	ctrl := startController(t, proxy.kubeconfig)
	ctx := context.Background()

	createAndWait(g, cp.Client, seen, ns, "1.0.0", helmOps(ns, n, repo.URL, "app", "1.x", polling(2*time.Second)))

	// Observe for 20s: every distinct lastPollingTriggered of every HelmOp.
	const window = 20 * time.Second
	pollTimes := map[string][]time.Time{}
	repo.ResetCounters()
	start := time.Now()
	for time.Since(start) < window {
		ops := &v1alpha1.HelmOpList{}
		g.Expect(seen.List(ctx, ops, client.InNamespace(ns))).To(Succeed())
		for i := range ops.Items {
			op := &ops.Items[i]
			if op.Status.LastPollingTime == nil {
				continue
			}
			ts := op.Status.LastPollingTime.Time
			if l := pollTimes[op.Name]; len(l) == 0 || !l[len(l)-1].Equal(ts) {
				pollTimes[op.Name] = append(l, ts)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	requests := repo.Requests("/index.yaml")
	maxGap, polls := time.Duration(0), 0
	g.Expect(pollTimes).To(HaveLen(n))
	for name, ts := range pollTimes {
		// Polling continues for every HelmOp: it polled several times in the window.
		g.Expect(len(ts)).To(BeNumerically(">=", 3), "%s polled %d times in %v", name, len(ts), window)
		polls += len(ts) - 1
		for i := 1; i < len(ts); i++ {
			maxGap = max(maxGap, ts[i].Sub(ts[i-1]))
		}
	}
	g.Expect(requests).To(BeNumerically("<=", int(elapsed.Seconds())/2+2), "one index request per 2s revalidation window at most")
	mean, peak := proxy.rate(start, time.Now())
	t.Logf("%d HelmOps polling every 2s, observed %.0fs: %d polls (%.1f/s), longest gap between two polls of one HelmOp %v; %d index requests (%.2f per 2s); controller requests %.0f/s mean, %d/s peak; peak RSS %.0f MiB",
		n, elapsed.Seconds(), polls, float64(polls)/elapsed.Seconds(), maxGap.Round(10*time.Millisecond), requests, float64(requests)/elapsed.Seconds()*2, mean, peak, ctrl.peakRSS())
}
