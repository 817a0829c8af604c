package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
)

// bundleDeployments lists the BundleDeployments of a HelmOp's Bundle by cluster name.
func bundleDeployments(g Gomega, bundle string) map[string]v1alpha1.BundleDeployment {
	bds := &v1alpha1.BundleDeploymentList{}
	g.Expect(mgmt().List(context.Background(), bds, client.MatchingLabels{v1alpha1.BundleNameLabel: bundle})).To(Succeed())
	out := map[string]v1alpha1.BundleDeployment{}
	for _, bd := range bds.Items {
		out[bd.Labels[v1alpha1.ClusterLabel]] = bd
	}
	return out
}

// TestWaitForJobsAndTimeoutSecondsAreHonoured: on a cluster with simulated nodes, a chart whose
// Job never completes installs Ready without waitForJobs; with waitForJobs the agent waits
// timeoutSeconds, then the BundleDeployment, the Bundle and the HelmOp say which Job and why.
func TestWaitForJobsAndTimeoutSecondsAreHonoured(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("e2e-task", "1.0.0", localenv.WithTemplate("job.yaml", localenv.TaskJob),
		localenv.WithValues(map[string]any{"unschedulable": true}))).To(Succeed())
	onDev := func(name string, waitForJobs bool) *v1alpha1.HelmOp {
		return helmOp(name, "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "e2e-task", Version: "1.0.0",
			TimeoutSeconds: 5, WaitForJobs: waitForJobs}, func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = name
			h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
		})
	}
	waits, noWait := onDev("e2e-jobs-wait", true), onDev("e2e-jobs-nowait", false)
	g.Expect(mgmt().Create(ctx, waits)).To(Succeed())
	g.Expect(mgmt().Create(ctx, noWait)).To(Succeed())

	g.Eventually(func(g Gomega) {
		expectReady(g, client.ObjectKeyFromObject(noWait))
	}, timeout, interval).Should(Succeed())
	job := &batchv1.Job{}
	g.Expect(env.Downstreams["dev"].Client.Get(ctx, client.ObjectKey{Namespace: "e2e-jobs-nowait", Name: "e2e-jobs-nowait-task-1-0-0"}, job)).To(Succeed())
	g.Expect(job.Status.Succeeded).To(BeZero(), "Ready without waiting for the Job")

	g.Eventually(func(g Gomega) {
		bd, ok := bundleDeployments(g, waits.Name)["dev"]
		g.Expect(ok).To(BeTrue())
		c := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInstallFailed))
		g.Expect(c.Message).To(And(ContainSubstring("timed out after 5s (helm.timeoutSeconds)"),
			ContainSubstring("Job e2e-jobs-wait/e2e-jobs-wait-task-1-0-0"), ContainSubstring("Insufficient cpu")))

		h := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(waits), h)).To(Succeed())
		g.Expect(h.Status.Summary.NonReadyResources).To(HaveLen(1))
		g.Expect(h.Status.Summary.NonReadyResources[0].Name).To(Equal("dev"))
		g.Expect(h.Status.Summary.NonReadyResources[0].Message).To(And(ContainSubstring("Job e2e-jobs-wait/e2e-jobs-wait-task-1-0-0"), ContainSubstring("Insufficient cpu")))
		ready := meta.FindStatusCondition(h.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Message).To(And(ContainSubstring("dev"), ContainSubstring("Insufficient cpu")))
	}, timeout, interval).Should(Succeed())
}

// TestFailingHookIsReportedUpToTheHelmOp: a pre-install hook Job that fails on both clusters is
// named, with its Pod's reason, by each BundleDeployment and by the HelmOp's summary; a version
// whose hook succeeds becomes Ready.
func TestFailingHookIsReportedUpToTheHelmOp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for v, fail := range map[string]bool{"1.0.0": true, "1.1.0": false} {
		g.Expect(env.Repo.Publish("e2e-hook", v, localenv.WithTemplate("job.yaml", localenv.HookJob),
			localenv.WithTemplate("configmap.yaml", localenv.DefaultTemplate), localenv.WithValues(map[string]any{"fail": fail}))).To(Succeed())
	}
	h := helmOp("e2e-hook", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "e2e-hook", Version: "1.0.0"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "e2e-hook"
		h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: everyCluster()}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		bds := bundleDeployments(g, "e2e-hook")
		g.Expect(bds).To(HaveLen(2))
		for cluster, bd := range bds {
			c := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(c).NotTo(BeNil(), cluster)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), cluster)
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInstallFailed), cluster)
			g.Expect(c.Message).To(And(ContainSubstring("failed hook (pre-install,post-upgrade): Job e2e-hook/e2e-hook-migrate Failed"),
				ContainSubstring("containerFailed"), ContainSubstring("failed pre-install")), cluster)
		}
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(h), got)).To(Succeed())
		g.Expect(got.Status.Summary.NonReadyResources).To(HaveLen(2))
		for _, r := range got.Status.Summary.NonReadyResources {
			g.Expect(r.Message).To(And(ContainSubstring("failed hook"), ContainSubstring("e2e-hook-migrate"), ContainSubstring("containerFailed")), r.Name)
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Message).To(ContainSubstring("failed hook"))
	}, timeout, interval).Should(Succeed())

	g.Eventually(func() error {
		cur := &v1alpha1.HelmOp{}
		if err := mgmt().Get(ctx, client.ObjectKeyFromObject(h), cur); err != nil {
			return err
		}
		cur.Spec.Helm.Version = "1.1.0"
		return mgmt().Update(ctx, cur)
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.Version).To(Equal("1.1.0"))
		g.Expect(got.Status.ReadyClusters).To(Equal(2))
	}, timeout, interval).Should(Succeed())
}
