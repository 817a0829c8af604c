package agent

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
	"github.com/helmops/helmops/internal/testenv"
)

// The charts of these tests run real Pods on the downstream's simulated nodes. A value picks how
// they fail: crashLoop makes the containers wait in CrashLoopBackOff, fail makes them exit 1,
// unschedulable asks for more CPU than any node has, so the Pod is never scheduled.

const appDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
        {{- if .Values.crashLoop }}
        ` + localenv.CrashLoopLabel + `: "true"
        {{- end }}
      annotations:
        chart-version: {{ .Chart.Version | quote }}
    spec:
      containers:
        - name: app
          image: example.com/app:1
`

// readyCondition returns the BundleDeployment's Ready condition, failing when it has none.
func readyCondition(g Gomega, bd *v1alpha1.BundleDeployment) *metav1.Condition {
	c := meta.FindStatusCondition(getBD(g, bd).Status.Conditions, v1alpha1.ReadyCondition)
	g.Expect(c).NotTo(BeNil())
	return c
}

func newestRevision(g Gomega, name, ns string) string {
	hist, err := helm.History(context.Background(), name, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).NotTo(BeEmpty())
	return hist[len(hist)-1].Info.Status.String()
}

// TestDeploymentReadyFollowsItsPods: Ready waits for the Deployment to be Available; a version
// whose Pods crash-loop is not Ready, naming the Deployment and the Pods' reason, whether Helm
// waits (timeoutSeconds) or only the agent's readiness check sees it.
func TestDeploymentReadyFollowsItsPods(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("app", "0.1.0", testenv.WithTemplate("deployment.yaml", appDeployment))).To(Succeed())
	g.Expect(repo.Publish("app", "0.2.0", testenv.WithTemplate("deployment.yaml", appDeployment),
		testenv.WithValues(map[string]any{"crashLoop": true}))).To(Succeed())
	bd := bundleDeployment(mainNS, "app", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "app", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	eventuallyReady(g, bd)
	d := &appsv1.Deployment{}
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "app", Name: "app"}, d)).To(Succeed())
	g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)), "Ready only once every replica is available")

	// Helm does not wait (no timeoutSeconds): the release is deployed, the readiness check
	// reports the Pods.
	setVersion(g, bd, "0.2.0", "v:0.2.0")
	g.Eventually(func(g Gomega) {
		got := getBD(g, bd)
		g.Expect(got.Status.Release.ChartVersion).To(Equal("0.2.0"))
		expectFalse(g, got, v1alpha1.ReadyCondition, v1alpha1.ReasonResourcesNotReady, "Deployment app/app", "CrashLoopBackOff")
		g.Expect(got.Status.NonReadyStatus).To(ContainElement(HaveField("Name", "app")))
		g.Expect(got.Status.Ready).To(BeFalse())
	}, timeout, interval).Should(Succeed())
	g.Expect(newestRevision(g, "app", "app")).To(Equal(rcommon.StatusDeployed.String()))

	// With timeoutSeconds Helm waits for the Deployment and fails the upgrade when the time is
	// up; the condition names what it waited for and why it is not ready.
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.TimeoutSeconds = 3
		b.Spec.DeploymentID = "v:0.2.0-wait"
	})
	g.Eventually(func(g Gomega) {
		expectFalse(g, getBD(g, bd), v1alpha1.ReadyCondition, v1alpha1.ReasonUpgradeFailed,
			"Deployment app/app", "CrashLoopBackOff", "3s (helm.timeoutSeconds)")
		g.Expect(newestRevision(g, "app", "app")).To(Equal(rcommon.StatusFailed.String()))
	}, timeout, interval).Should(Succeed())
	t.Logf("Ready: %s", readyCondition(g, bd).Message)

	// Back to a good version: Ready again.
	setVersion(g, bd, "0.1.0", "v:0.1.0-again")
	eventuallyReady(g, bd)
}

// TestWaitForJobsHonoursTheTimeout: with waitForJobs, Helm waits for the chart's Job to
// complete for timeoutSeconds, then the release fails and Ready says which Job and why; without
// waitForJobs, the same Job (started, never finishing) is not waited for.
func TestWaitForJobsHonoursTheTimeout(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("task", "0.1.0", testenv.WithTemplate("job.yaml", localenv.TaskJob),
		testenv.WithValues(map[string]any{"unschedulable": true}))).To(Succeed())
	g.Expect(repo.Publish("task", "0.2.0", testenv.WithTemplate("job.yaml", localenv.TaskJob))).To(Succeed())

	waits := bundleDeployment(mainNS, "task-waits", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "task", Version: "0.1.0",
		WaitForJobs: true, TimeoutSeconds: 5})
	noWait := bundleDeployment(mainNS, "task-nowait", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "task", Version: "0.1.0",
		TimeoutSeconds: 5})
	g.Expect(upstream.Client.Create(ctx, waits)).To(Succeed())
	g.Expect(upstream.Client.Create(ctx, noWait)).To(Succeed())

	eventuallyReady(g, noWait)
	job := &batchv1.Job{}
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "task-nowait", Name: "task-nowait-task-0-1-0"}, job)).To(Succeed())
	g.Expect(job.Status.Succeeded).To(BeZero(), "Ready without waiting for the Job")

	g.Eventually(func(g Gomega) {
		got := getBD(g, waits)
		c := expectFalse(g, got, v1alpha1.ReadyCondition, v1alpha1.ReasonInstallFailed,
			"Job task-waits/task-waits-task-0-1-0", "Insufficient cpu", "5s (helm.timeoutSeconds)")
		// Helm gave up only once the timeout had passed (both times have whole seconds).
		g.Expect(c.LastTransitionTime.Sub(got.CreationTimestamp.Time)).To(BeNumerically(">=", 5*time.Second))
		g.Expect(newestRevision(g, "task-waits", "task-waits")).To(Equal(rcommon.StatusFailed.String()))
	}, timeout, interval).Should(Succeed())
	t.Logf("Ready: %s", readyCondition(g, waits).Message)

	// A version whose Job completes: Ready once it has.
	setVersion(g, waits, "0.2.0", "v:0.2.0")
	eventuallyReady(g, waits)
	g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "task-waits", Name: "task-waits-task-0-2-0"}, job)).To(Succeed())
	g.Expect(job.Status.Succeeded).To(Equal(int32(1)))
}

// TestFailingHookIsReported: a pre-install hook Job that fails fails the install, a
// post-upgrade one the upgrade; Ready names the hook, its Job and the Pod's reason, and a
// version whose hook succeeds recovers.
func TestFailingHookIsReported(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for v, fail := range map[string]bool{"0.1.0": true, "0.2.0": false, "0.3.0": true} {
		g.Expect(repo.Publish("hooked", v, testenv.WithTemplate("job.yaml", localenv.HookJob), testenv.WithTemplate("configmap.yaml", testenv.DefaultTemplate),
			testenv.WithValues(map[string]any{"fail": fail}))).To(Succeed())
	}
	bd := bundleDeployment(mainNS, "hooked", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "hooked", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectFalse(g, getBD(g, bd), v1alpha1.ReadyCondition, v1alpha1.ReasonInstallFailed,
			"pre-install", "Job hooked/hooked-migrate", "containerFailed")
	}, timeout, interval).Should(Succeed())
	t.Logf("Ready: %s", readyCondition(g, bd).Message)

	setVersion(g, bd, "0.2.0", "v:0.2.0")
	eventuallyReady(g, bd)

	setVersion(g, bd, "0.3.0", "v:0.3.0")
	g.Eventually(func(g Gomega) {
		expectFalse(g, getBD(g, bd), v1alpha1.ReadyCondition, v1alpha1.ReasonUpgradeFailed,
			"post-upgrade", "Job hooked/hooked-migrate", "containerFailed")
	}, timeout, interval).Should(Succeed())
	t.Logf("Ready: %s", readyCondition(g, bd).Message)
}
