package agent

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/kube"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/helmaction"
	"github.com/helmops/helmops/internal/apiclient"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

var (
	upstream, downstream *testenv.ControlPlane
	repo                 *testenv.ChartRepo
	// mainAgent serves the cluster namespace most tests create BundleDeployments in.
	mainNS string
	helm   *helmaction.Client
)

const (
	timeout  = 90 * time.Second
	interval = 200 * time.Millisecond
	// workspace holds the test Clusters upstream.
	workspace = "fleet-default"
)

// testNetwork lets resolvers reach the test servers, which listen on loopback: an opt-in, as
// for helmops dev (--allow-loopback).
var testNetwork = chartsource.NetworkPolicy{AllowLoopback: true}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChildAgent())
	}
	os.Exit(run(m))
}

// childEnv makes the test binary run only an agent, so a test can kill a real agent process.
const childEnv = "HELMOPS_TEST_AGENT_CHILD"

// runChildAgent runs an agent configured by environment variables until it is killed.
func runChildAgent() int {
	up, err := clientcmd.BuildConfigFromFlags("", os.Getenv("HELMOPS_TEST_UPSTREAM"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	down, err := clientcmd.BuildConfigFromFlags("", os.Getenv("HELMOPS_TEST_DOWNSTREAM"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctrl.SetLogger(logr.Discard())
	o := Options{
		Upstream: up, Downstream: down, ClusterName: os.Getenv(childEnv), Workspace: workspace,
		HeartbeatInterval: time.Second, DriftInterval: time.Second, MetricsBindAddress: "0",
		WaitStrategy: kube.HookOnlyStrategy,
		Fetcher:      ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{Network: testNetwork})},
	}
	if err := Run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctrl.SetLogger(logr.Discard())
	var err error
	if upstream, err = testenv.Start(ctx, testenv.Options{Name: "upstream"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer upstream.Stop()
	// Simulated nodes run the Pods of the charts, so readiness means what it means on a real
	// cluster (workloads_test.go).
	if downstream, err = testenv.Start(ctx, testenv.Options{Name: "downstream", Nodes: 2}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer downstream.Stop()
	if repo, err = testenv.StartChartRepo(testenv.RepoOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer repo.Stop()
	if helm, err = helmaction.New(downstream.Config, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := upstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workspace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, ns, err := startAgent(ctx, "main", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	mainNS = ns
	return m.Run()
}

// standInClusterController does what the cluster controller does for a new Cluster: create its
// namespace and the agent's heartbeat Lease there, and write status.namespace.
func standInClusterController(ctx context.Context, name string) (string, error) {
	ns := "cluster-" + workspace + "-" + name
	err := upstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	err = upstream.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: clusterns.AgentLease, Namespace: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	cl := &v1alpha1.Cluster{}
	if err := upstream.Client.Get(ctx, client.ObjectKey{Namespace: workspace, Name: name}, cl); err != nil {
		return "", err
	}
	patch := client.MergeFrom(cl.DeepCopy())
	cl.Status.Namespace = ns
	return ns, upstream.Client.Status().Patch(ctx, cl, patch)
}

func agentOptions(name string, register bool) Options {
	return Options{
		// The limits `helmops agent` ships with, not the test rig's.
		Upstream:    apiclient.WithLimits(upstream.Config, apiclient.AgentUpstreamQPS, apiclient.AgentUpstreamBurst),
		Downstream:  apiclient.WithLimits(downstream.Config, apiclient.AgentDownstreamQPS, apiclient.AgentDownstreamBurst),
		ClusterName: name, Workspace: workspace, Register: register,
		HeartbeatInterval: time.Second, DriftInterval: time.Second,
		MetricsBindAddress: "0",
		// Helm waits as `helmops agent` does by default (kstatus), the downstream has nodes.
		WaitStrategy: kube.StatusWatcherStrategy,
		Fetcher:      ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{Network: testNetwork})},
		// The tests run several agents in this process.
		Controller: config.Controller{SkipNameValidation: ptrTo(true)},
	}
}

// startAgent creates the Cluster (unless the agent registers it), plays the cluster controller
// and runs an agent until stop is called.
func startAgent(ctx context.Context, name string, register bool) (stop func(), ns string, err error) {
	if !register {
		cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workspace}}
		if err := upstream.Client.Create(ctx, cl); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, "", err
		}
		if ns, err = standInClusterController(ctx, name); err != nil {
			return nil, "", err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := Run(ctx, agentOptions(name, register)); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "agent %s: %v\n", name, err)
		}
	}()
	return func() { cancel(); wg.Wait() }, ns, nil
}

// bundleDeployment builds a BundleDeployment as the bundle controller writes it.
func bundleDeployment(ns, name string, h v1alpha1.HelmOptions, mutate ...func(*v1alpha1.BundleDeployment)) *v1alpha1.BundleDeployment {
	opts := make([]testutil.BundleDeploymentOption, 0, len(mutate))
	for _, m := range mutate {
		opts = append(opts, m)
	}
	return testutil.BundleDeployment(ns, name, workspace, h, opts...)
}

var values = testutil.Values

func getBD(g Gomega, bd *v1alpha1.BundleDeployment) *v1alpha1.BundleDeployment {
	got := &v1alpha1.BundleDeployment{}
	g.Expect(upstream.Client.Get(context.Background(), client.ObjectKeyFromObject(bd), got)).To(Succeed())
	return got
}

// expectFalse checks that got has a condition of type t that is False for reason, its message
// containing every one of parts, and returns that condition.
func expectFalse(g Gomega, got *v1alpha1.BundleDeployment, t, reason string, parts ...string) *metav1.Condition {
	c := meta.FindStatusCondition(got.Status.Conditions, t)
	g.Expect(c).NotTo(BeNil(), t)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse), t)
	g.Expect(c.Reason).To(Equal(reason), t)
	for _, part := range parts {
		g.Expect(c.Message).To(ContainSubstring(part), t)
	}
	return c
}

func expectReady(g Gomega, bd *v1alpha1.BundleDeployment) *v1alpha1.BundleDeployment {
	got := getBD(g, bd)
	g.Expect(got.Status.AppliedDeploymentID).To(Equal(got.Spec.DeploymentID))
	g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "conditions: %+v", got.Status.Conditions)
	return got
}

// configMap reads the default test chart's ConfigMap of a release downstream.
func configMap(g Gomega, namespace, release string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	g.Expect(downstream.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: release + "-config"}, cm)).To(Succeed())
	return cm
}

// update re-reads the BundleDeployment and applies a change, retrying on conflicts.
func update(g Gomega, bd *v1alpha1.BundleDeployment, change func(*v1alpha1.BundleDeployment)) {
	g.Eventually(func() error {
		got := &v1alpha1.BundleDeployment{}
		if err := upstream.Client.Get(context.Background(), client.ObjectKeyFromObject(bd), got); err != nil {
			return err
		}
		change(got)
		return upstream.Client.Update(context.Background(), got)
	}, timeout, interval).Should(Succeed())
}

// setVersion asks bd for another chart version, under a new deployment ID.
func setVersion(g Gomega, bd *v1alpha1.BundleDeployment, version, deploymentID string) {
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.Version = version
		b.Spec.DeploymentID = deploymentID
	})
}

// eventuallyReady waits until bd is Ready and coherent (see expectCoherent).
func eventuallyReady(g Gomega, bd *v1alpha1.BundleDeployment) {
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
	}, timeout, interval).Should(Succeed())
}

// expectCoherent checks the end state every integration test should reach: kstatus-style
// conditions that agree with the summary fields.
func expectCoherent(g Gomega, got *v1alpha1.BundleDeployment) {
	g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	for _, t := range []string{v1alpha1.InstalledCondition, v1alpha1.DeployedCondition, v1alpha1.MonitoredCondition, v1alpha1.ReadyCondition} {
		c := meta.FindStatusCondition(got.Status.Conditions, t)
		g.Expect(c).NotTo(BeNil(), t)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", t, c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
	}
	g.Expect(got.Status.Ready).To(BeTrue())
	g.Expect(got.Status.NonModified).To(BeTrue())
	g.Expect(got.Status.Display.State).To(Equal("Ready"))
	g.Expect(got.Finalizers).To(ContainElement(v1alpha1.BundleDeploymentFinalizer))
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(got)
	g.Expect(err).NotTo(HaveOccurred())
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: u})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Status).To(Equal(kstatus.CurrentStatus), res.Message)
}
