package helmop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// expectCurrent checks the HelmOp is kstatus Current, as a healthy object must end.
func expectCurrent(g Gomega, h *v1alpha1.HelmOp) {
	obj, err := runtimeToUnstructured(h)
	g.Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(obj)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Status).To(Equal(status.CurrentStatus), res.Message)
}

func runtimeToUnstructured(h *v1alpha1.HelmOp) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(h)
	return &unstructured.Unstructured{Object: m}, err
}

// markBundleReady plays the bundle controller: it reports one ready cluster.
func markBundleReady(g Gomega, b *v1alpha1.Bundle) {
	get(g, b)
	b.Status.ObservedGeneration = b.Generation
	b.Status.Summary = v1alpha1.BundleSummary{Ready: 1, DesiredReady: 1}
	b.Status.ReadyClusters, b.Status.DesiredReadyClusters = 1, 1
	b.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Ready", LastTransitionTime: metav1.Now()}}
	g.Expect(k8s.Status().Update(context.Background(), b)).To(Succeed())
}

func TestVersionsResolveToAnExactBundle(t *testing.T) {
	repo := chartRepo(t, testenv.RepoOptions{})
	for i, version := range []string{"", "*", "0.2.x", "> 0.1", "0.x.x"} {
		t.Run(version, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := newNamespace(t)
			op := newHelmOp(ns, "alpine", repo.URL, "alpine", withVersion(version), func(h *v1alpha1.HelmOp) {
				h.Spec.HelmSecretName = ""
				h.Spec.InsecureSkipTLSVerify = i%2 == 0
				h.Spec.Labels = map[string]string{"team": "a"}
			})
			g.Expect(k8s.Create(ctx, op)).To(Succeed())

			b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "alpine", Namespace: ns}}
			g.Eventually(func(g Gomega) {
				get(g, b)
				g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
			}, timeout, interval).Should(Succeed())
			g.Expect(b.Labels).To(Equal(map[string]string{"team": "a", v1alpha1.HelmOpLabel: "alpine"}))
			g.Expect(b.Spec.Targets).To(Equal([]v1alpha1.BundleTarget{{Name: "default", ClusterGroup: "default"}}))
			archive, ok := repo.Archive("alpine", "0.2.0")
			g.Expect(ok).To(BeTrue())
			sum := sha256.Sum256(archive)
			g.Expect(b.Spec.HelmOpOptions).To(Equal(&v1alpha1.BundleHelmOptions{InsecureSkipTLSVerify: i%2 == 0, ChartDigest: "sha256:" + hex.EncodeToString(sum[:])}))
			g.Expect(metav1.IsControlledBy(b, op)).To(BeTrue())

			g.Eventually(func(g Gomega) {
				get(g, op)
				g.Expect(op.Status.Version).To(Equal("0.2.0"))
				g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
				g.Expect(op.Status.ObservedGeneration).To(Equal(op.Generation))
			}, timeout, interval).Should(Succeed())

			// An exact version afterwards.
			update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.Helm.Version = "0.1.0" })
			g.Eventually(func(g Gomega) {
				get(g, b)
				g.Expect(b.Spec.Helm.Version).To(Equal("0.1.0"))
				get(g, op)
				g.Expect(op.Status.Version).To(Equal("0.1.0"))
			}, timeout, interval).Should(Succeed())

			// Ready once the Bundle is deployed, and kstatus Current.
			markBundleReady(g, b)
			g.Eventually(func(g Gomega) {
				get(g, op)
				g.Expect(condition(op, v1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
				g.Expect(op.Status.Display.ReadyBundleDeployments).To(Equal("1/1"))
				expectCurrent(g, op)
			}, timeout, interval).Should(Succeed())
		})
	}
}

func TestTargetsAreCopiedAndNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "targets", repo.URL, "alpine", func(h *v1alpha1.HelmOp) {
		h.Spec.Targets = []v1alpha1.BundleTarget{
			{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}},
			{Name: "prod", ClusterName: "prod-1", Helm: &v1alpha1.HelmOptions{Version: "0.1.x"}},
		}
	})
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "targets", Namespace: ns}}
	g.Eventually(func(g Gomega) { get(g, b) }, timeout, interval).Should(Succeed())
	g.Expect(b.Spec.Targets).To(HaveLen(2))
	g.Expect(b.Spec.Targets[0].Name).To(Equal("target000"))
	g.Expect(b.Spec.Targets[0].ClusterSelector.MatchLabels).To(HaveKeyWithValue("env", "dev"))
	g.Expect(b.Spec.Targets[1].Name).To(Equal("prod"))
	g.Expect(b.Spec.Targets[1].Helm.Version).To(Equal("0.1.0"), "a per-target constraint is resolved centrally too")
	g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
}

func TestInvalidSpecsAreExplainedAndHeal(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)

	empty := newHelmOp(ns, "empty", "", "")
	g.Expect(k8s.Create(ctx, empty)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, empty)
		c := condition(empty, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("spec.helm.chart"))
		g.Expect(condition(empty, v1alpha1.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(condition(empty, v1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())

	op := newHelmOp(ns, "alpine", repo.URL, "alpine", withVersion("0.3.x"))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNoMatchingVersion))
		g.Expect(c.Message).To(ContainSubstring(`no version of chart "alpine" matches "0.3.x"`))
		g.Expect(c.Message).To(ContainSubstring("newest: 0.2.0, 0.1.0"))
	}, timeout, interval).Should(Succeed())

	update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.Helm.Version = "foo" })
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Message).To(ContainSubstring(`improper constraint: "foo"`))
		g.Expect(c.Message).To(ContainSubstring("spec.helm.version"))
		g.Expect(condition(op, v1alpha1.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
	for _, name := range []string{"empty", "alpine"} {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.Bundle{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no Bundle for an invalid HelmOp")
	}

	update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.Helm.Version = "0.1.x" })
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).NotTo(ContainSubstring("improper"))
		g.Expect(op.Status.Version).To(Equal("0.1.0"))
		g.Expect(condition(op, v1alpha1.StalledCondition).Type).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

func TestPollingSurvivesAnOutageAndPicksUpNewVersions(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "poll", repo.URL, "alpine", withVersion("0.x.x"), withPolling(time.Second))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.Version).To(Equal("0.2.0"))
	}, timeout, interval).Should(Succeed())

	// No-op polls still advance lastPollingTriggered.
	first := op.Status.LastPollingTime.Time
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.LastPollingTime.Time.After(first)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	repo.Stop()
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.PolledCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("refused"))
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue), "the Bundle keeps its version")
	}, timeout, interval).Should(Succeed())
	failedAt := op.Status.LastPollingTime.Time
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.LastPollingTime.Time.After(failedAt)).To(BeTrue(), "every failed attempt advances lastPollingTriggered")
		g.Expect(condition(op, v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "poll", Namespace: ns}}
	get(g, b)
	g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))

	g.Expect(repo.Restart()).To(Succeed())
	g.Expect(repo.Publish("alpine", "0.3.0")).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.Version).To(Equal("0.3.0"))
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.3.0"))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		events := &corev1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		var msgs []string
		for _, e := range events.Items {
			if e.Reason == "GotNewChartVersion" {
				msgs = append(msgs, e.Message)
			}
		}
		g.Expect(msgs).To(ContainElement(ContainSubstring("from 0.2.0 to 0.3.0")))
	}, timeout, interval).Should(Succeed())
}

func TestPollingAnOCIRegistry(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "alpine", "0.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = reg.Publish(ctx, "alpine", "0.2.0+up1.0")
	g.Expect(err).NotTo(HaveOccurred())
	ns := newNamespace(t)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns},
		StringData: map[string]string{"basicHTTP": "true"}})).To(Succeed())
	op := newHelmOp(ns, "oci", ref, "", withVersion("0.x"), withPolling(time.Second), func(h *v1alpha1.HelmOp) { h.Spec.HelmSecretName = "plain" })
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.Version).To(Equal("0.2.0+up1.0"))
	}, timeout, interval).Should(Succeed())
	_, err = reg.Publish(ctx, "alpine", "0.3.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "oci", Namespace: ns}}
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.3.0"))
		g.Expect(b.Spec.HelmOpOptions.SecretName).To(Equal("plain"))
	}, timeout, interval).Should(Succeed())
}

func TestCredentialsAndTLS(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{TLS: true, Username: "user", Password: "s3cret-pass"})
	ns := newNamespace(t)

	op := newHelmOp(ns, "tls", repo.URL, "alpine")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Message).To(ContainSubstring("x509"))
	}, timeout, interval).Should(Succeed())

	// The secret is missing: say so; creating it heals the HelmOp without touching the HelmOp.
	update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.HelmSecretName = "creds" })
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Reason).To(Equal(v1alpha1.ReasonSecretNotFound))
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Message).To(ContainSubstring("secret " + ns + "/creds"))
	}, timeout, interval).Should(Succeed())

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		StringData: map[string]string{"username": "user", "password": "wrong-pass", "cacerts": string(repo.CAPEM())}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Message).To(ContainSubstring("401"))
		g.Expect(c.Message).NotTo(ContainSubstring("wrong-pass"))
	}, timeout, interval).Should(Succeed())

	get(g, secret)
	secret.Data["password"] = []byte("s3cret-pass")
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.Version).To(Equal("0.2.0"))
	}, timeout, interval).Should(Succeed())

	insecure := newHelmOp(ns, "insecure", repo.URL, "alpine", func(h *v1alpha1.HelmOp) {
		h.Spec.InsecureSkipTLSVerify = true
		h.Spec.HelmSecretName = "plain-creds"
	})
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain-creds", Namespace: ns},
		StringData: map[string]string{"username": "user", "password": "s3cret-pass"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, insecure)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, insecure)
		g.Expect(insecure.Status.Version).To(Equal("0.2.0"))
	}, timeout, interval).Should(Succeed())
}

func TestForeignBundleIsNeverOverwritten(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	foreign := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns},
		Spec: v1alpha1.BundleSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{Helm: &v1alpha1.HelmOptions{Chart: "other", Version: "9.9.9"}}}}
	g.Expect(k8s.Create(ctx, foreign)).To(Succeed())
	op := newHelmOp(ns, "mine", repo.URL, "alpine")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonBundleConflict))
		g.Expect(c.Message).To(ContainSubstring("not created from this HelmOp"))
	}, timeout, interval).Should(Succeed())
	get(g, foreign)
	g.Expect(foreign.Spec.Helm.Version).To(Equal("9.9.9"))
}

// TestEditedBundleIsWrittenBack: someone who may write Bundles (but not the HelmOp) changes the
// Bundle's version and points it at another repository; the controller, which writes the spec
// with a merge patch, writes back exactly what the HelmOp resolved, extra fields removed.
func TestEditedBundleIsWrittenBack(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "kept", repo.URL, "alpine")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: ns}}
	var want v1alpha1.BundleSpec
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).NotTo(BeEmpty())
		want = *b.Spec.DeepCopy()
	}, timeout, interval).Should(Succeed())

	g.Expect(testutil.Update(ctx, k8s, b, func(b *v1alpha1.Bundle) {
		b.Spec.Helm.Version = "9.9.9"
		b.Spec.Helm.Repo = "https://attacker.example.com/charts"
		b.Spec.Helm.ReleaseName = "someone-elses-release"
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec).To(Equal(want))
	}, timeout, interval).Should(Succeed())
}

func TestDeletingAHelmOpDeletesItsBundle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "gone", repo.URL, "alpine")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		get(g, op)
		g.Expect(op.Finalizers).To(ContainElement(v1alpha1.HelmOpFinalizer))
	}, timeout, interval).Should(Succeed())
	g.Expect(b.Finalizers).To(ConsistOf(v1alpha1.BundleFinalizer), "created with the bundle controller's finalizer")
	g.Expect(k8s.Delete(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		// Deleted; the bundle controller (not running in this suite) releases it once its
		// BundleDeployments are gone.
		get(g, b)
		g.Expect(b.DeletionTimestamp).NotTo(BeNil())
		g.Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(op), op))).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

// TestRestartKeepsThePollSchedule: the schedule is the HelmOp's lastPollingTriggered, not the
// process's memory. Both managers run on one fake clock, so "mid-interval" and "due" are exact
// instants, whatever the machine's speed.
func TestRestartKeepsThePollSchedule(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	clk := clocktesting.NewFakePassiveClock(time.Now())
	start := func() (stop func()) {
		stop, err := startManagerWith(ctx, "restart", func(r *Reconciler) {
			r.Resolver = chartsource.NewResolver(chartsource.Options{Network: testNetwork})
			r.Clock = clk
		})
		g.Expect(err).NotTo(HaveOccurred())
		return stop
	}
	stop := start()
	ns := newNamespace(t)
	op := newHelmOp(ns, "sched", repo.URL, "alpine", withVersion("0.x"), withPolling(8*time.Second), withShard("restart"))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.LastPollingTime).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
	polledAt := op.Status.LastPollingTime.Time
	g.Expect(polledAt).To(Equal(clk.Now().Truncate(time.Second)), "the first poll, at creation")
	stop()

	// Restarted mid-interval: the new manager does not poll at once, however long it runs ...
	clk.SetTime(clk.Now().Add(3 * time.Second))
	before := repo.Requests("/index.yaml")
	defer start()()
	g.Consistently(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.LastPollingTime.Time).To(Equal(polledAt))
	}, 3*time.Second, interval).Should(Succeed())
	g.Expect(repo.Requests("/index.yaml")).To(Equal(before))

	// ... but once the interval (and the HelmOp's fixed jitter) has passed, on its own schedule:
	// the requeue the restarted manager set, with no event.
	due := polledAt.Add(8*time.Second + jitter(op))
	clk.SetTime(due)
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.LastPollingTime.Time).To(Equal(due.Truncate(time.Second)))
	}, timeout, interval).Should(Succeed())
	g.Expect(repo.Requests("/index.yaml")).To(BeNumerically(">", before))
}

func TestShardsHandleOnlyTheirHelmOps(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	for _, id := range []string{"a", "b"} {
		stop, err := startManager(ctx, id, chartsource.NewResolver(chartsource.Options{Network: testNetwork}))
		g.Expect(err).NotTo(HaveOccurred())
		defer stop()
	}
	ns := newNamespace(t)
	a := newHelmOp(ns, "in-a", repo.URL, "alpine", withShard("a"))
	b := newHelmOp(ns, "in-b", repo.URL, "alpine", withShard("b"))
	none := newHelmOp(ns, "in-none", repo.URL, "alpine", withShard("c"))
	for _, op := range []*v1alpha1.HelmOp{a, b, none} {
		g.Expect(k8s.Create(ctx, op)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, op := range []*v1alpha1.HelmOp{a, b} {
			bundle := &v1alpha1.Bundle{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(op), bundle)).To(Succeed())
			g.Expect(bundle.Labels).To(HaveKeyWithValue(v1alpha1.ShardLabel, op.Labels[v1alpha1.ShardLabel]))
		}
	}, timeout, interval).Should(Succeed())
	g.Consistently(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(none), &v1alpha1.Bundle{}))
	}, 2*time.Second, interval).Should(BeTrue(), "no controller runs shard c")
}

func TestSpecExampleIsAccepted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{Username: "u", Password: "p"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(repo.Stop)
	g.Expect(repo.Publish("fantastic-chart", "1.0.0")).To(Succeed())
	raw, err := os.ReadFile("testdata/spec-helmop.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(strings.Replace(string(raw), "https://foo.bar/baz", repo.URL, 1)), &u.Object)).To(Succeed())
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fleet-local"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "my-top-secret-helm-access", Namespace: "fleet-local"},
		StringData: map[string]string{"username": "u", "password": "p"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, u)).To(Succeed())
	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "my-awesome-helmop", Namespace: "fleet-local"}}
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(op.Status.Version).To(Equal("1.0.0"))
		g.Expect(condition(op, v1alpha1.PolledCondition).Type).To(BeEmpty(), "no polling without a pollingInterval")
	}, timeout, interval).Should(Succeed())
}
