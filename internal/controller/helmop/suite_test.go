package helmop

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/testenv"
)

var (
	cp  *testenv.ControlPlane
	k8s client.Client
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	cp, err = testenv.Start(ctx, testenv.Options{Name: "helmop"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = cp.Client
	stop, err := startManager(ctx, "", chartsource.NewResolver(chartsource.Options{MinRevalidate: time.Second}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	cancel()
	_ = cp.Stop()
	os.Exit(code)
}

// startManager runs a manager with the HelmOp reconciler for one shard, caching only that
// shard's HelmOps and Bundles as `helmops controller` does.
func startManager(ctx context.Context, shardID string, resolver Resolver) (stop func(), err error) {
	sel := shard.Selector(shardID)
	return cp.StartManager(ctx, ctrl.Options{Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
		&v1alpha1.HelmOp{}: {Label: sel},
		&v1alpha1.Bundle{}: {Label: sel},
	}}}, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Resolver: resolver, ShardID: shardID}).SetupWithManager(mgr)
	})
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "helmop-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// chartRepo starts a repository with alpine 0.1.0 and 0.2.0 and nginx 1.1.0.
func chartRepo(t *testing.T, opts testenv.RepoOptions) *testenv.ChartRepo {
	t.Helper()
	r, err := testenv.StartChartRepo(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	for _, c := range []struct{ name, version string }{{"alpine", "0.1.0"}, {"alpine", "0.2.0"}, {"nginx", "1.1.0"}} {
		if err := r.Publish(c.name, c.version); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

type opOption func(*v1alpha1.HelmOp)

func withVersion(v string) opOption { return func(h *v1alpha1.HelmOp) { h.Spec.Helm.Version = v } }
func withPolling(d time.Duration) opOption {
	return func(h *v1alpha1.HelmOp) { h.Spec.PollingInterval = &metav1.Duration{Duration: d} }
}
func withShard(id string) opOption {
	return func(h *v1alpha1.HelmOp) { h.Labels = map[string]string{v1alpha1.ShardLabel: id} }
}

func newHelmOp(ns, name, repo, chart string, opts ...opOption) *v1alpha1.HelmOp {
	h := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{Repo: repo, Chart: chart},
		}},
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

func get(g Gomega, obj client.Object) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
}

func condition(h *v1alpha1.HelmOp, t string) metav1.Condition {
	if c := meta.FindStatusCondition(h.Status.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)
