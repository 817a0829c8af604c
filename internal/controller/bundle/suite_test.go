package bundle_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/bundle"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

var (
	cp    *testenv.ControlPlane
	k8s   client.Client
	clock *clocktesting.FakePassiveClock
	// bundleClock bounds the bundle controller's wait for uninstalls.
	bundleClock *clocktesting.FakePassiveClock
	// failClusterLists makes the bundle controller's Cluster lists fail in the namespaces it
	// holds, as an unavailable API server would (a real one cannot be made to fail one list).
	failClusterLists sync.Map
)

const (
	timeout  = 60 * time.Second
	interval = 100 * time.Millisecond
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if os.Getenv("HELMOPS_TEST_LOG") != "" {
		ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1}))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	var err error
	if cp, err = testenv.Start(ctx, testenv.Options{Name: "bundle"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	k8s = cp.Client
	clock = clocktesting.NewFakePassiveClock(time.Now())
	bundleClock = clocktesting.NewFakePassiveClock(time.Now())
	stop, err := cp.StartManager(ctx, ctrl.Options{}, func(mgr ctrl.Manager) error {
		c := failingClusterLists{mgr.GetClient()}
		if err := (&bundle.Reconciler{Client: c, Clock: bundleClock, UninstallTimeout: 10 * time.Minute}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&cluster.Reconciler{Client: mgr.GetClient(), Clock: clock}).SetupWithManager(mgr)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

// failingClusterLists is the manager's client, except that listing the Clusters of a namespace
// in failClusterLists fails.
type failingClusterLists struct{ client.Client }

func (c failingClusterLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := &client.ListOptions{}
	lo.ApplyOptions(opts)
	if _, ok := list.(*v1alpha1.ClusterList); ok {
		if _, fail := failClusterLists.Load(lo.Namespace); fail {
			return apierrors.NewServiceUnavailable("the Cluster list fails in this test")
		}
	}
	return c.Client.List(ctx, list, opts...)
}

// workspace creates a namespace for one test.
func workspace(t *testing.T) string {
	t.Helper()
	name := "ws-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-")
	NewWithT(t).Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

func newCluster(t *testing.T, ns, name string, lbls map[string]string) *v1alpha1.Cluster {
	t.Helper()
	c := testutil.Cluster(ns, name, testutil.WithLabels(lbls))
	NewWithT(t).Expect(k8s.Create(context.Background(), c)).To(Succeed())
	return c
}

// clusterNamespace waits for the cluster controller to give the cluster its namespace.
func clusterNamespace(t *testing.T, ns, name string) string {
	t.Helper()
	var out string
	NewWithT(t).Eventually(func(g Gomega) {
		c := &v1alpha1.Cluster{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c)).To(Succeed())
		g.Expect(c.Status.Namespace).NotTo(BeEmpty())
		out = c.Status.Namespace
	}, timeout, interval).Should(Succeed())
	return out
}

// threeClusters creates dev-1 and dev-2 (env=dev) and prod-1 (env=prod) and returns their
// cluster namespaces by name.
func threeClusters(t *testing.T, ns string) map[string]string {
	newCluster(t, ns, "dev-1", map[string]string{"env": "dev", "region": "eu"})
	newCluster(t, ns, "dev-2", map[string]string{"env": "dev", "region": "us"})
	newCluster(t, ns, "prod-1", map[string]string{"env": "prod", "region": "eu"})
	return map[string]string{
		"dev-1":  clusterNamespace(t, ns, "dev-1"),
		"dev-2":  clusterNamespace(t, ns, "dev-2"),
		"prod-1": clusterNamespace(t, ns, "prod-1"),
	}
}

type bundleOption = testutil.BundleOption

var (
	withTargets = testutil.WithTargets
	withSecret  = testutil.WithBundleSecret
	vals        = testutil.Values
)

// newBundle creates a Bundle as the HelmOp controller writes it.
func newBundle(t *testing.T, ns, name string, opts ...bundleOption) *v1alpha1.Bundle {
	t.Helper()
	defaults := []bundleOption{testutil.WithValues(map[string]any{"color": "gray", "data": map[string]any{"a": "1"}})}
	b := testutil.Bundle(ns, name, append(defaults, opts...)...)
	NewWithT(t).Expect(k8s.Create(context.Background(), b)).To(Succeed())
	return b
}

// deployments returns the Bundle's BundleDeployments by cluster name.
func deployments(g Gomega, b *v1alpha1.Bundle) map[string]*v1alpha1.BundleDeployment {
	list := &v1alpha1.BundleDeploymentList{}
	g.Expect(k8s.List(context.Background(), list, client.MatchingLabels{
		v1alpha1.BundleNameLabel: b.Name, v1alpha1.BundleNamespaceLabel: b.Namespace,
	})).To(Succeed())
	out := map[string]*v1alpha1.BundleDeployment{}
	for i := range list.Items {
		bd := &list.Items[i]
		if bd.DeletionTimestamp.IsZero() {
			out[bd.Labels[v1alpha1.ClusterLabel]] = bd
		}
	}
	return out
}

func getBundle(g Gomega, b *v1alpha1.Bundle) *v1alpha1.Bundle {
	out := &v1alpha1.Bundle{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(b), out)).To(Succeed())
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// update re-reads obj, applies mutate and writes it, retrying when a controller's status write
// got in between.
func update[T client.Object](g Gomega, obj T, mutate func(T)) {
	g.Expect(retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return k8s.Update(context.Background(), obj)
	})).To(Succeed())
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}
