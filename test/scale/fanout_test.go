package scale

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

const workspace = "fleet-default"

// clusters creates n Clusters in the workspace and waits until the controller gave each its
// namespace.
func clusters(t *testing.T, g Gomega, c client.Client, n int) {
	t.Helper()
	objs := make([]client.Object, n)
	for i := range objs {
		objs[i] = &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c-%03d", i), Namespace: workspace}}
	}
	createAll(g, c, objs)
	g.Eventually(func(g Gomega) {
		list := &v1alpha1.ClusterList{}
		g.Expect(c.List(context.Background(), list, client.InNamespace(workspace))).To(Succeed())
		ready := 0
		for _, cl := range list.Items {
			if cl.Status.Namespace != "" {
				ready++
			}
		}
		g.Expect(ready).To(Equal(n))
	}, 10*time.Minute, time.Second).Should(Succeed())
}

// bundleDeployments counts the BundleDeployments of the workspace's clusters and those at
// exactly version, and names one that is not.
// publishNewVersion publishes app 1.1.0 and asks each of the n HelmOps of ns to look at its
// repository now, as `helmops reconcile` does. It returns when it published.
func publishNewVersion(g Gomega, repo *testenv.ChartRepo, c client.Client, ns string, n int) time.Time {
	published := time.Now()
	g.Expect(repo.Publish("app", "1.1.0")).To(Succeed())
	now := published.UTC().Format(time.RFC3339Nano)
	for i := range n {
		op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("op-%04d", i)}}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.ReconcileRequestedAnnotation, now)
		g.Expect(c.Patch(context.Background(), op, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	}
	return published
}

func bundleDeployments(g Gomega, c client.Reader, version string) (all, exact int, bad string) {
	list := &v1alpha1.BundleDeploymentList{}
	g.Expect(c.List(context.Background(), list)).To(Succeed())
	for _, bd := range list.Items {
		all++
		if v := bd.Spec.Options.HelmOrEmpty().Version; v == version {
			exact++
		} else if bad == "" {
			bad = fmt.Sprintf("%s/%s at %q", bd.Namespace, bd.Name, v)
		}
	}
	return all, exact, bad
}

// TestFanOutToManyClusters: HelmOps × Clusters BundleDeployments on one management cluster,
// written by `helmops controller` with its default flags. Every BundleDeployment exists with the
// exact version; after a new version is published and every HelmOp is asked to look (what
// `helmops reconcile` and a registry notification do), every one carries it. The HelmOps poll
// hourly, so the time measured is the fan-out's, not a polling interval's.
// Sizes: 10 HelmOps × 20 Clusters in `make test`, 100 × 100 with HELMOPS_SCALE=full.
func TestFanOutToManyClusters(t *testing.T) {
	nOps, nClusters := size(10, 100), size(20, 100)
	want := nOps * nClusters
	g := NewWithT(t)
	cp := controlPlane(t, "scale-fanout")
	seen := watched(t, cp)
	repo := chartRepo(t, "app", "1.0.0")
	namespace(t, cp.Client, workspace)
	proxy := newCountingProxy(t, cp, "controller")
	ctrl := startController(t, proxy.kubeconfig)
	clusters(t, g, cp.Client, nClusters)

	start := time.Now()
	createAll(g, cp.Client, helmOps(workspace, nOps, repo.URL, "app", "1.x", polling(time.Hour), func(op *v1alpha1.HelmOp) {
		op.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
	}))
	wait := func(version string) {
		g.Eventually(func(g Gomega) {
			all, exact, bad := bundleDeployments(g, seen, version)
			g.Expect(all).To(Equal(want), "BundleDeployments")
			g.Expect(exact).To(Equal(want), "BundleDeployments at %s; first not: %s", version, bad)
		}, 20*time.Minute, time.Second).Should(Succeed())
	}
	wait("1.0.0")
	created := time.Since(start)
	createRate, createPeak := proxy.rate(start, time.Now())
	rssCreated := ctrl.peakRSS()

	published := publishNewVersion(g, repo, cp.Client, workspace, nOps)
	wait("1.1.0")
	rolled := time.Since(published)
	rollRate, rollPeak := proxy.rate(published, time.Now())
	g.Eventually(func(g Gomega) {
		got, bad := accepted(g, seen, workspace, "1.1.0")
		g.Expect(got).To(Equal(nOps), "first not yet: %s", bad)
	}, 5*time.Minute, time.Second).Should(Succeed())

	t.Logf("%d HelmOps × %d Clusters: all %d BundleDeployments exact after %.1fs (controller requests %.0f/s mean, %d/s peak); new version on all %d after %.1fs from publishing (%.0f/s mean, %d/s peak); controller peak RSS %.0f MiB after creation, %.0f MiB at the end; writes: %v",
		nOps, nClusters, want, created.Seconds(), createRate, createPeak, want, rolled.Seconds(), rollRate, rollPeak, rssCreated, ctrl.peakRSS(), proxy.snapshot().writes())
}
