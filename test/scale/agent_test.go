package scale

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

// deployed counts the BundleDeployments whose release runs exactly version with their current
// deployment ID applied, and names one that does not.
func deployed(g Gomega, c client.Reader, version string) (int, string) {
	list := &v1alpha1.BundleDeploymentList{}
	g.Expect(c.List(context.Background(), list)).To(Succeed())
	n, bad := 0, ""
	for _, bd := range list.Items {
		r := bd.Status.Release
		if r != nil && r.ChartVersion == version && bd.Status.AppliedDeploymentID == bd.Spec.DeploymentID && bd.Status.Ready {
			n++
		} else if bad == "" {
			bad = fmt.Sprintf("%s/%s: release %+v, applied %q of %q, ready %v", bd.Namespace, bd.Name, r, bd.Status.AppliedDeploymentID, bd.Spec.DeploymentID, bd.Status.Ready)
		}
	}
	return n, bad
}

// TestOneAgentWithManyBundleDeployments: one `helmops agent` (default flags) deploys a chart of
// one ConfigMap for each of many HelmOps into its own control plane; after a new version is
// published (and every HelmOp asked to look, as in TestFanOutToManyClusters) every release is
// upgraded. Reported: the time to converge, the agent's peak RSS and its request rate to the
// management cluster.
// Sizes: 30 BundleDeployments in `make test`, 500 with HELMOPS_SCALE=full.
func TestOneAgentWithManyBundleDeployments(t *testing.T) {
	n := size(30, 500)
	g := NewWithT(t)
	mgmt := controlPlane(t, "scale-agent-mgmt")
	downstream := controlPlane(t, "scale-agent-down")
	seen := watched(t, mgmt)
	repo := chartRepo(t, "app", "1.0.0")
	namespace(t, mgmt.Client, workspace)
	ctrlProxy := newCountingProxy(t, mgmt, "controller")
	startController(t, ctrlProxy.kubeconfig)
	upProxy := newCountingProxy(t, mgmt, "agent-upstream")
	downProxy := newCountingProxy(t, downstream, "agent-downstream")
	agent := start(t, "agent", extraArgs(t, "HELMOPS_SCALE_AGENT_ARGS", "agent", "--upstream-kubeconfig", upProxy.kubeconfig,
		"--kubeconfig", downProxy.kubeconfig, "--cluster-name", "agent-1", "--workspace", workspace, "--register",
		"--metrics-bind-address", "0", "--allow-loopback")...)
	g.Eventually(func(g Gomega) {
		c := &v1alpha1.Cluster{}
		g.Expect(mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: workspace, Name: "agent-1"}, c)).To(Succeed())
		g.Expect(c.Status.Namespace).NotTo(BeEmpty())
	}, 5*time.Minute, 200*time.Millisecond).Should(Succeed())

	start := time.Now()
	createAll(g, mgmt.Client, helmOps(workspace, n, repo.URL, "app", "1.x", polling(time.Hour), func(op *v1alpha1.HelmOp) {
		op.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "agent-1"}}
	}))
	wait := func(version string) {
		g.Eventually(func(g Gomega) {
			got, bad := deployed(g, seen, version)
			g.Expect(got).To(Equal(n), "first not yet: %s", bad)
		}, 20*time.Minute, time.Second).Should(Succeed())
	}
	wait("1.0.0")
	installed := time.Since(start)
	installUp, installUpPeak := upProxy.rate(start, time.Now())
	installDown, _ := downProxy.rate(start, time.Now())

	published := publishNewVersion(g, repo, mgmt.Client, workspace, n)
	wait("1.1.0")
	upgraded := time.Since(published)
	upRate, upPeak := upProxy.rate(published, time.Now())
	downRate, downPeak := downProxy.rate(published, time.Now())
	t.Logf("one agent, %d BundleDeployments: all installed and ready %.1fs after the HelmOps were created (upstream %.0f/s mean, %d/s peak; downstream %.0f/s); all upgraded %.1fs after publishing (upstream %.0f/s mean, %d/s peak; downstream %.0f/s mean, %d/s peak); agent peak RSS %.0f MiB; upstream writes %v",
		n, installed.Seconds(), installUp, installUpPeak, installDown, upgraded.Seconds(), upRate, upPeak, downRate, downPeak, agent.peakRSS(), upProxy.snapshot().writes())
}
