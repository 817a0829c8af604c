package helmop

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

// TestScaleThousandHelmOps is the scale run of docs/benchmarks.md: 1,000 HelmOps with the
// constraint 1.x on one repository, created concurrently. It reports the time until every one is
// Accepted with a Bundle at the exact version, the index requests and the peak RSS of this process
// (which runs the controller). It asserts only correctness and the request count.
// Run it with HELMOPS_SCALE=1000 go test ./internal/controller/helmop -run TestScale -v
func TestScaleThousandHelmOps(t *testing.T) {
	n := 300 // the integration test: a few hundred, 100% exact
	if v := os.Getenv("HELMOPS_SCALE"); v != "" {
		fmt.Sscan(v, &n)
	}
	g := NewWithT(t)
	ctx := context.Background()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(repo.Stop)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "2.0.0"} {
		g.Expect(repo.Publish("app", v)).To(Succeed())
	}
	ns := newNamespace(t)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			op := newHelmOp(ns, fmt.Sprintf("app-%04d", i), repo.URL, "app", withVersion("1.x"))
			g.Expect(k8s.Create(ctx, op)).To(Succeed())
		}(i)
	}
	wg.Wait()
	g.Eventually(func(g Gomega) {
		ops := &v1alpha1.HelmOpList{}
		g.Expect(k8s.List(ctx, ops, client.InNamespace(ns))).To(Succeed())
		accepted := 0
		for i := range ops.Items {
			if condition(&ops.Items[i], v1alpha1.AcceptedCondition).Status == metav1.ConditionTrue && ops.Items[i].Status.Version == "1.2.0" {
				accepted++
			}
		}
		g.Expect(accepted).To(Equal(n))
	}, 5*time.Minute, time.Second).Should(Succeed())
	elapsed := time.Since(start)
	bundles := &v1alpha1.BundleList{}
	g.Expect(k8s.List(ctx, bundles, client.InNamespace(ns))).To(Succeed())
	g.Expect(bundles.Items).To(HaveLen(n))
	for _, b := range bundles.Items {
		g.Expect(b.Spec.Helm.Version).To(Equal("1.2.0"), "Bundle %s carries the exact version", b.Name)
	}
	requests := repo.Requests("/index.yaml")
	// One conditional request per revalidation window (1s) at most: the rest share it.
	g.Expect(requests).To(BeNumerically("<=", int(elapsed.Seconds())+2), "the HelmOps share the index")
	t.Logf("%d HelmOps: all Accepted with an exact Bundle after %.1fs; %d index requests; peak RSS of the test process (controller + client) %s",
		n, elapsed.Seconds(), requests, peakRSS())
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "unknown"
}
