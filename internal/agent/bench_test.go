package agent

import (
	"context"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/kube"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/chartarchive"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/testenv"
)

// BenchmarkInSyncReconcile measures what a deployed, unchanged BundleDeployment costs at every
// drift interval: read the Helm history, read and compare each resource, patch the status. No
// download and no Helm revision happen.
func BenchmarkInSyncReconcile(b *testing.B) {
	ctx := context.Background()
	if err := repo.Publish("bench", "0.1.0", testenv.WithValues(map[string]any{"data": map[string]any{"a": "1", "b": "2"}})); err != nil {
		b.Fatal(err)
	}
	bd := bundleDeployment(mainNS, "bench", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "bench", Version: "0.1.0"})
	if err := upstream.Client.Create(ctx, bd); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		got := &v1alpha1.BundleDeployment{}
		if err := upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), got); err == nil && got.Status.Ready {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("BundleDeployment never became ready")
		}
		time.Sleep(interval)
	}
	cache, err := chartarchive.NewCache(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	r := &Reconciler{Upstream: upstream.Client, Downstream: downstream.Client, Helm: helm, Cache: cache,
		Fetcher: ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{Network: testNetwork})}, WaitStrategy: kube.HookOnlyStrategy, DriftInterval: time.Minute}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bd)}
	before := repo.Requests("/charts/bench-0.1.0.tgz")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Reconcile(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := repo.Requests("/charts/bench-0.1.0.tgz"); n != before {
		b.Fatalf("an in-sync reconcile downloaded the chart (%d → %d requests)", before, n)
	}
	hist, err := helm.History(ctx, "bench", "bench")
	if err != nil || len(hist) != 1 {
		b.Fatalf("an in-sync reconcile made a Helm revision: %d revisions, %v", len(hist), err)
	}
}
