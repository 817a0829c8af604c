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
	"github.com/helmops/helmops/internal/testutil"
)

var (
	cp  *testenv.ControlPlane
	k8s client.Client
)

// testNetwork lets resolvers reach the test servers, which listen on loopback: an opt-in, as
// for helmops dev (--allow-loopback).
var testNetwork = chartsource.NetworkPolicy{AllowLoopback: true}

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	cp, err = testenv.Start(ctx, testenv.Options{Name: "helmop"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = cp.Client
	// The slow-fetch bound is the controller's default (--max-slow-fetches).
	stop, err := startManager(ctx, "", chartsource.NewResolver(chartsource.Options{Network: testNetwork, MinRevalidate: time.Second,
		MaxSlowFetches: chartsource.DefaultMaxSlowFetches}))
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
	return startManagerWith(ctx, shardID, func(r *Reconciler) { r.Resolver = resolver })
}

// startManagerWith is startManager with a reconciler changed by configure.
func startManagerWith(ctx context.Context, shardID string, configure func(*Reconciler)) (stop func(), err error) {
	sel := shard.Selector(shardID)
	return cp.StartManager(ctx, ctrl.Options{Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
		&v1alpha1.HelmOp{}: {Label: sel},
		&v1alpha1.Bundle{}: {Label: sel},
	}}}, func(mgr ctrl.Manager) error {
		r := &Reconciler{Client: mgr.GetClient(), ShardID: shardID}
		configure(r)
		return r.SetupWithManager(mgr)
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

type opOption = testutil.HelmOpOption

var (
	withVersion = testutil.WithVersion
	withPolling = testutil.WithPolling
	withShard   = testutil.WithShard
)

func newHelmOp(ns, name, repo, chart string, opts ...opOption) *v1alpha1.HelmOp {
	return testutil.HelmOp(ns, name, append([]opOption{testutil.WithChart(repo, chart)}, opts...)...)
}

func get(g Gomega, obj client.Object) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
}

// update changes the newest op and writes it, again on a conflict with the controller's status write.
func update(g Gomega, op *v1alpha1.HelmOp, change func(*v1alpha1.HelmOp)) {
	g.Expect(testutil.Update(context.Background(), k8s, op, change)).To(Succeed())
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
