package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/testenv"
)

func TestInstallNoOpAndUpgrade(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("hello", "0.1.0")).To(Succeed())
	g.Expect(repo.Publish("hello", "0.2.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "hello", v1alpha1.HelmOptions{
		Repo: repo.URL, Chart: "hello", Version: "0.1.0",
		Values: values(map[string]any{"data": map[string]any{"greeting": "from-values"}}),
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())

	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		g.Expect(got.Status.Release).To(Equal(&v1alpha1.ReleaseInfo{Name: "hello", Namespace: "hello", Revision: 1, ChartVersion: "0.1.0", Status: "deployed"}))
		g.Expect(got.Status.Resources).To(ConsistOf(v1alpha1.BundleDeploymentResource{Kind: "ConfigMap", APIVersion: "v1", Namespace: "hello", Name: "hello-config"}))
		expectCoherent(g, got)
	}, timeout, interval).Should(Succeed())
	cm := configMap(g, "hello", "hello")
	g.Expect(cm.Data).To(HaveKeyWithValue("greeting", "from-values"))
	g.Expect(cm.Data).To(HaveKeyWithValue("chartVersion", "0.1.0"))
	g.Expect(repo.Requests("/charts/hello-0.1.0.tgz")).To(Equal(1))

	// Reconciles without a change (the drift interval is 1s, plus an explicit request) neither
	// download the chart again nor create a Helm revision.
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		metav1.SetMetaDataAnnotation(&b.ObjectMeta, v1alpha1.ReconcileRequestedAnnotation, time.Now().Format(time.RFC3339))
	})
	g.Consistently(func(g Gomega) {
		hist, err := helm.History(ctx, "hello", "hello")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hist).To(HaveLen(1))
		g.Expect(repo.Requests("/charts/hello-0.1.0.tgz")).To(Equal(1))
	}, 4*time.Second, interval).Should(Succeed())

	setVersion(g, bd, "0.2.0", "v:0.2.0")
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		g.Expect(got.Status.Release.Revision).To(Equal(2))
		g.Expect(got.Status.Release.ChartVersion).To(Equal("0.2.0"))
		g.Expect(configMap(g, "hello", "hello").Data).To(HaveKeyWithValue("chartVersion", "0.2.0"))
		expectCoherent(g, got)
	}, timeout, interval).Should(Succeed())
}

func TestPrivateRepositoryThroughTheCopiedSecret(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	private, err := testenv.StartChartRepo(testenv.RepoOptions{TLS: true, Username: "user", Password: "s3cret-pass"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(private.Stop)
	g.Expect(private.Publish("private", "1.0.0")).To(Succeed())
	g.Expect(private.Publish("denied", "1.0.0")).To(Succeed())

	good := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "repo-creds", Namespace: mainNS},
		Type: v1alpha1.SecretTypeHelmOpsAccess, StringData: map[string]string{"username": "user", "password": "s3cret-pass"}}
	wrong := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong-creds", Namespace: mainNS},
		Type: v1alpha1.SecretTypeHelmOpsAccess, StringData: map[string]string{"username": "user", "password": "not-it"}}
	g.Expect(upstream.Client.Create(ctx, good)).To(Succeed())
	g.Expect(upstream.Client.Create(ctx, wrong)).To(Succeed())

	withSecret := func(name string) func(*v1alpha1.BundleDeployment) {
		return func(b *v1alpha1.BundleDeployment) {
			b.Spec.HelmChartOptions = &v1alpha1.BundleHelmOptions{SecretName: name, CABundle: private.CAPEM()}
		}
	}
	ok := bundleDeployment(mainNS, "private", v1alpha1.HelmOptions{Repo: private.URL, Chart: "private", Version: "1.0.0"}, withSecret("repo-creds"))
	denied := bundleDeployment(mainNS, "denied", v1alpha1.HelmOptions{Repo: private.URL, Chart: "denied", Version: "1.0.0"}, withSecret("wrong-creds"))
	g.Expect(upstream.Client.Create(ctx, ok)).To(Succeed())
	g.Expect(upstream.Client.Create(ctx, denied)).To(Succeed())

	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, ok))
		g.Expect(configMap(g, "private", "private").Data).To(HaveKeyWithValue("chartVersion", "1.0.0"))
	}, timeout, interval).Should(Succeed())

	g.Eventually(func(g Gomega) {
		got := getBD(g, denied)
		c := expectFalse(g, got, v1alpha1.DeployedCondition, v1alpha1.ReasonDownloadFailed, "401")
		g.Expect(got.Status.Display.State).To(Equal("ErrApplied"))
		for _, c := range got.Status.Conditions {
			g.Expect(c.Message).NotTo(ContainSubstring("not-it"))
		}
		t.Logf("Deployed: %s", c.Message)
	}, timeout, interval).Should(Succeed())

	// Failures back off: over 5 seconds the agent tries a handful of times, not hundreds.
	before := private.Requests("/index.yaml") + private.Requests("/charts/denied-1.0.0.tgz")
	time.Sleep(5 * time.Second)
	after := private.Requests("/index.yaml") + private.Requests("/charts/denied-1.0.0.tgz")
	t.Logf("requests to the private repository for the failing chart in 5s: %d", after-before)
	g.Expect(after - before).To(BeNumerically("<", 15))

	// Fixing the copied secret recovers without touching the BundleDeployment.
	fixed := &corev1.Secret{}
	g.Expect(upstream.Client.Get(ctx, client.ObjectKeyFromObject(wrong), fixed)).To(Succeed())
	fixed.Data = map[string][]byte{"username": []byte("user"), "password": []byte("s3cret-pass")}
	g.Expect(upstream.Client.Update(ctx, fixed)).To(Succeed())
	eventuallyReady(g, denied)
}

func TestOCIAndTarballSources(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{TLS: true})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "from-oci", "3.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Publish("from-tarball", "0.4.0")).To(Succeed())

	oci := bundleDeployment(mainNS, "from-oci", v1alpha1.HelmOptions{Repo: ref, Version: "3.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.HelmChartOptions = &v1alpha1.BundleHelmOptions{CABundle: reg.CAPEM()}
	})
	tarball := bundleDeployment(mainNS, "from-tarball", v1alpha1.HelmOptions{Chart: repo.URL + "/charts/from-tarball-0.4.0.tgz"})
	// The same registry without its CA: refused, unless TLS verification is skipped.
	untrusted := bundleDeployment(mainNS, "untrusted-oci", v1alpha1.HelmOptions{Repo: ref, Version: "3.1.0", ReleaseName: "untrusted-oci"})
	insecure := bundleDeployment(mainNS, "insecure-oci", v1alpha1.HelmOptions{Repo: ref, Version: "3.1.0", ReleaseName: "insecure-oci"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.HelmChartOptions = &v1alpha1.BundleHelmOptions{InsecureSkipTLSVerify: true}
	})
	for _, bd := range []*v1alpha1.BundleDeployment{oci, tarball, untrusted, insecure} {
		g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, untrusted).Status.Conditions, v1alpha1.DeployedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonDownloadFailed))
		g.Expect(c.Message).To(ContainSubstring("certificate"))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, insecure))
		expectCoherent(g, expectReady(g, oci))
		expectCoherent(g, expectReady(g, tarball))
		g.Expect(configMap(g, "from-oci", "from-oci").Data).To(HaveKeyWithValue("chartVersion", "3.1.0"))
		g.Expect(configMap(g, "from-tarball", "from-tarball").Data).To(HaveKeyWithValue("chartVersion", "0.4.0"))
	}, timeout, interval).Should(Succeed())
}

func TestValuesFromDownstreamConfigMapAndSecret(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("layered", "0.1.0")).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "layered"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared-values"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "base", Namespace: "layered"},
		Data: map[string]string{"values.yaml": "data:\n  fromConfigMap: cm\n  overridden: by-configmap\n  layer: configmap\n"}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret-values", Namespace: "shared-values"},
		StringData: map[string]string{"custom.yaml": "data:\n  fromSecret: sec\n  layer: secret\n"}})).To(Succeed())

	bd := bundleDeployment(mainNS, "layered", v1alpha1.HelmOptions{
		Repo: repo.URL, Chart: "layered", Version: "0.1.0",
		ValuesFrom: []v1alpha1.ValuesFrom{
			{ConfigMapKeyRef: &v1alpha1.ConfigMapKeySelector{Name: "base"}},
			{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "secret-values", Namespace: "shared-values", Key: "custom.yaml"}},
		},
		Values: values(map[string]any{"data": map[string]any{"overridden": "by-values"}}),
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		g.Expect(configMap(g, "layered", "layered").Data).To(And(
			HaveKeyWithValue("fromConfigMap", "cm"),
			HaveKeyWithValue("fromSecret", "sec"),
			HaveKeyWithValue("layer", "secret"),
			HaveKeyWithValue("overridden", "by-values"),
		))
	}, timeout, interval).Should(Succeed())
}

func TestDeletionUninstallsUnlessKeepResources(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("removed", "0.1.0")).To(Succeed())
	g.Expect(repo.Publish("kept", "0.1.0")).To(Succeed())
	removed := bundleDeployment(mainNS, "removed", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "removed", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DeleteNamespace = true
	})
	kept := bundleDeployment(mainNS, "kept", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "kept", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.KeepResources = true
	})
	g.Expect(upstream.Client.Create(ctx, removed)).To(Succeed())
	g.Expect(upstream.Client.Create(ctx, kept)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectReady(g, removed)
		expectReady(g, kept)
	}, timeout, interval).Should(Succeed())

	g.Expect(upstream.Client.Delete(ctx, removed)).To(Succeed())
	g.Expect(upstream.Client.Delete(ctx, kept)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, bd := range []*v1alpha1.BundleDeployment{removed, kept} {
			err := upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s still exists: %v", bd.Name, err)
		}
	}, timeout, interval).Should(Succeed())

	err := downstream.Client.Get(ctx, client.ObjectKey{Namespace: "removed", Name: "removed-config"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "ConfigMap of the uninstalled release: %v", err)
	g.Eventually(func(g Gomega) {
		ns := &corev1.Namespace{}
		err := downstream.Client.Get(ctx, client.ObjectKey{Name: "removed"}, ns)
		g.Expect(apierrors.IsNotFound(err) || !ns.DeletionTimestamp.IsZero()).To(BeTrue(), "namespace removed: %v", err)
	}, timeout, interval).Should(Succeed())

	g.Expect(configMap(g, "kept", "kept").Data).To(HaveKeyWithValue("chartVersion", "0.1.0"))
	hist, err := helm.History(ctx, "kept", "kept")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(BeEmpty(), "the release records are gone, the resources stay")
}

func TestDriftIsReportedThenCorrected(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("drifty", "0.1.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "drifty", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "drifty", Version: "0.1.0",
		Values: values(map[string]any{"data": map[string]any{"greeting": "original"}})})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	eventuallyReady(g, bd)

	cm := configMap(g, "drifty", "drifty")
	cm.Data["greeting"] = "edited by hand"
	g.Expect(downstream.Client.Update(ctx, cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getBD(g, bd)
		g.Expect(got.Status.ModifiedStatus).To(ConsistOf(And(
			HaveField("Kind", "ConfigMap"), HaveField("Namespace", "drifty"), HaveField("Name", "drifty-config"),
			HaveField("Missing", false), HaveField("Patch", ContainSubstring("data.greeting")),
		)))
		g.Expect(got.Status.NonModified).To(BeFalse())
		g.Expect(got.Status.Display.State).To(Equal("Modified"))
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonModified))
	}, timeout, interval).Should(Succeed())
	// Reported only: the edit stays.
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, "drifty", "drifty").Data).To(HaveKeyWithValue("greeting", "edited by hand"))
	}, 2*time.Second, interval).Should(Succeed())

	corrections := testutil.ToFloat64(DriftCorrections.WithLabelValues("success"))
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.CorrectDrift = &v1alpha1.CorrectDrift{Enabled: true}
	})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, "drifty", "drifty").Data).To(HaveKeyWithValue("greeting", "original"))
		got := expectReady(g, bd)
		g.Expect(got.Status.ModifiedStatus).To(BeEmpty())
		expectCoherent(g, got)
	}, timeout, interval).Should(Succeed())
	g.Expect(testutil.ToFloat64(DriftCorrections.WithLabelValues("success"))).To(BeNumerically(">", corrections))

	// A deleted resource is reported missing and restored too.
	g.Expect(downstream.Client.Delete(ctx, configMap(g, "drifty", "drifty"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, "drifty", "drifty").Data).To(HaveKeyWithValue("greeting", "original"))
		expectCoherent(g, expectReady(g, bd))
	}, timeout, interval).Should(Succeed())
}

func TestRenderFailureReportsHelmsMessageAndRecovers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("fragile", "0.1.0", testenv.WithTemplate("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }-broken\n"))).To(Succeed())
	g.Expect(repo.Publish("fragile", "0.2.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "fragile", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "fragile", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getBD(g, bd)
		c := expectFalse(g, got, v1alpha1.DeployedCondition, v1alpha1.ReasonInstallFailed, "broken.yaml")
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready.Message).To(Equal(c.Message))
		g.Expect(got.Status.AppliedDeploymentID).To(BeEmpty())
		t.Logf("Deployed: %s", c.Message)
	}, timeout, interval).Should(Succeed())

	setVersion(g, bd, "0.2.0", "v:0.2.0")
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		g.Expect(configMap(g, "fragile", "fragile").Data).To(HaveKeyWithValue("chartVersion", "0.2.0"))
	}, timeout, interval).Should(Succeed())
}

func TestReleaseLeftPendingByACrashIsRecovered(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	stop, ns, err := startAgent(ctx, "crashy", false)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Publish("crashy", "0.1.0")).To(Succeed())
	g.Expect(repo.Publish("crashy", "0.2.0")).To(Succeed())
	bd := bundleDeployment(ns, "crashy", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "crashy", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) { expectReady(g, bd) }, timeout, interval).Should(Succeed())

	// The agent dies in the middle of an upgrade: the newest revision stays pending-upgrade.
	stop()
	hist, err := helm.History(ctx, "crashy", "crashy")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(HaveLen(1))
	g.Expect(helm.SetStatus(ctx, hist[0], rcommon.StatusPendingUpgrade, "Preparing upgrade")).To(Succeed())
	setVersion(g, bd, "0.2.0", "v:0.2.0")

	stop, _, err = startAgent(ctx, "crashy", false)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		expectCoherent(g, got)
		g.Expect(got.Status.Release.Status).To(Equal("deployed"))
		g.Expect(got.Status.Release.ChartVersion).To(Equal("0.2.0"))
		g.Expect(configMap(g, "crashy", "crashy").Data).To(HaveKeyWithValue("chartVersion", "0.2.0"))
	}, timeout, interval).Should(Succeed())
}

func TestAgentStoppedDuringAnUpgradeEndsHealthy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	stop, ns, err := startAgent(ctx, "killed", false)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Publish("killed", "0.1.0")).To(Succeed())
	// 0.2.0 has a post-upgrade hook Job: Helm waits for it, and its Pod is never scheduled (it
	// asks for more CPU than any node has), so the upgrade is still running when the agent is
	// stopped (its context cancelled).
	g.Expect(repo.Publish("killed", "0.2.0", testenv.WithTemplate("configmap.yaml", testenv.DefaultTemplate),
		testenv.WithTemplate("hook.yaml", hookJob))).To(Succeed())
	g.Expect(repo.Publish("killed", "0.3.0")).To(Succeed())
	bd := bundleDeployment(ns, "killed", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "killed", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) { expectReady(g, bd) }, timeout, interval).Should(Succeed())

	setVersion(g, bd, "0.2.0", "v:0.2.0")
	g.Eventually(func(g Gomega) {
		hist, err := helm.History(ctx, "killed", "killed")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hist).To(HaveLen(2))
		g.Expect(hist[1].Info.Status).To(Equal(rcommon.StatusPendingUpgrade))
	}, timeout, interval).Should(Succeed())
	stop()
	hist, err := helm.History(ctx, "killed", "killed")
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("after the agent stopped, the newest revision is %s: %s", hist[len(hist)-1].Info.Status, hist[len(hist)-1].Info.Description)

	// The fixed version is rolled out by a new agent process.
	setVersion(g, bd, "0.3.0", "v:0.3.0")
	stop, _, err = startAgent(ctx, "killed", false)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		expectCoherent(g, got)
		g.Expect(got.Status.Release.ChartVersion).To(Equal("0.3.0"))
		g.Expect(configMap(g, "killed", "killed").Data).To(HaveKeyWithValue("chartVersion", "0.3.0"))
	}, timeout, interval).Should(Succeed())
}

// hookJob is a post-upgrade hook that never completes: its Pod asks for more CPU than any
// simulated node has.
const hookJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-post-upgrade
  annotations:
    helm.sh/hook: post-upgrade
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: wait
          image: busybox
          command: ["true"]
          resources:
            requests:
              cpu: "1000"
`

func TestRegisterCreatesTheClusterAndTheHeartbeatAdvances(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	o := agentOptions("registered", true)
	o.Labels = map[string]string{"env": "test", "region": "eu"}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, o) }()
	t.Cleanup(func() { cancel(); <-done })

	cl := &v1alpha1.Cluster{}
	g.Eventually(func() error {
		return upstream.Client.Get(ctx, client.ObjectKey{Namespace: workspace, Name: "registered"}, cl)
	}, timeout, interval).Should(Succeed())
	g.Expect(cl.Labels).To(Equal(o.Labels))
	g.Expect(cl.Status.Agent.LastSeen).To(BeNil(), "no heartbeat before the cluster has a namespace")

	ns, err := standInClusterController(ctx, "registered")
	g.Expect(err).NotTo(HaveOccurred())
	var first time.Time
	lease := &coordinationv1.Lease{}
	leaseKey := client.ObjectKey{Namespace: ns, Name: clusterns.AgentLease}
	g.Eventually(func(g Gomega) {
		g.Expect(upstream.Client.Get(ctx, leaseKey, lease)).To(Succeed())
		g.Expect(lease.Spec.RenewTime).NotTo(BeNil())
		g.Expect(lease.Annotations[clusterns.AgentVersionAnnotation]).NotTo(BeEmpty())
		first = lease.Spec.RenewTime.Time
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(upstream.Client.Get(ctx, leaseKey, lease)).To(Succeed())
		g.Expect(lease.Spec.RenewTime.Time).To(BeTemporally(">", first))
		// The agent writes nothing on its Cluster.
		g.Expect(upstream.Client.Get(ctx, client.ObjectKeyFromObject(cl), cl)).To(Succeed())
		g.Expect(cl.Status.Namespace).To(Equal(ns))
		g.Expect(cl.Status.Agent.LastSeen).To(BeNil())
	}, timeout, interval).Should(Succeed())

	// It works in the namespace it was given.
	g.Expect(repo.Publish("registered", "0.1.0")).To(Succeed())
	bd := bundleDeployment(ns, "registered", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "registered", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	eventuallyReady(g, bd)
	g.Expect(strings.HasPrefix(ns, "cluster-")).To(BeTrue())
}

func TestPausedThenMovedRelease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("mover", "0.1.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "mover", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "mover", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Paused = true
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, bd).Status.Conditions, v1alpha1.DeployedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonPaused))
	}, timeout, interval).Should(Succeed())
	g.Expect(repo.Requests("/charts/mover-0.1.0.tgz")).To(BeZero(), "a paused BundleDeployment downloads nothing")

	update(g, bd, func(b *v1alpha1.BundleDeployment) { b.Spec.Paused = false })
	eventuallyReady(g, bd)

	// A new release name and namespace: the old release goes, the new one comes.
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.ReleaseName = "moved"
		b.Spec.Options.Namespace = "moved-here"
	})
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		expectCoherent(g, got)
		g.Expect(got.Status.Release.Name).To(Equal("moved"))
		g.Expect(got.Status.Release.Namespace).To(Equal("moved-here"))
		g.Expect(configMap(g, "moved-here", "moved").Data).To(HaveKeyWithValue("chartVersion", "0.1.0"))
		err := downstream.Client.Get(ctx, client.ObjectKey{Namespace: "mover", Name: "mover-config"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "old release uninstalled: %v", err)
	}, timeout, interval).Should(Succeed())
	g.Expect(repo.Requests("/charts/mover-0.1.0.tgz")).To(Equal(1), "the cached archive served the moved release")
}

func TestCreateNamespaceFalse(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("no-ns", "0.1.0")).To(Succeed())
	bd := bundleDeployment(mainNS, "no-ns", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "no-ns", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.CreateNamespace = ptrTo(false)
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, bd).Status.Conditions, v1alpha1.DeployedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInstallFailed))
		g.Expect(c.Message).To(ContainSubstring(`"no-ns" not found`))
	}, timeout, interval).Should(Succeed())

	// Once someone creates the namespace, the retry succeeds.
	g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "no-ns"}})).To(Succeed())
	eventuallyReady(g, bd)
}

func TestServiceAccountImpersonation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("as-sa", "0.1.0")).To(Succeed())
	g.Expect(repo.Publish("as-nobody", "0.1.0")).To(Succeed())
	for _, ns := range []string{"as-sa", "as-nobody"} {
		g.Expect(downstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(downstream.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}})).To(Succeed())
	}
	// Only the first namespace's deployer may manage ConfigMaps and Helm's release Secrets.
	g.Expect(downstream.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "as-sa"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"*"}}}})).To(Succeed())
	g.Expect(downstream.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "as-sa"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: "as-sa"}}})).To(Succeed())

	withSA := func(b *v1alpha1.BundleDeployment) { b.Spec.Options.ServiceAccount = "deployer" }
	allowed := bundleDeployment(mainNS, "as-sa", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "as-sa", Version: "0.1.0"}, withSA)
	denied := bundleDeployment(mainNS, "as-nobody", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "as-nobody", Version: "0.1.0"}, withSA)
	g.Expect(upstream.Client.Create(ctx, allowed)).To(Succeed())
	g.Expect(upstream.Client.Create(ctx, denied)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, allowed))
		g.Expect(configMap(g, "as-sa", "as-sa").Data).To(HaveKeyWithValue("chartVersion", "0.1.0"))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, denied).Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring(`"system:serviceaccount:as-nobody:deployer"`))
	}, timeout, interval).Should(Succeed())
	err := downstream.Client.Get(ctx, client.ObjectKey{Namespace: "as-nobody", Name: "as-nobody-config"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing deployed without rights: %v", err)
}

// startChildAgent runs an agent in a separate process (this test binary, see TestMain).
func startChildAgent(t *testing.T, cluster string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+cluster,
		"HELMOPS_TEST_UPSTREAM="+upstream.KubeconfigPath, "HELMOPS_TEST_DOWNSTREAM="+downstream.KubeconfigPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestAgentProcessKilledDuringAnUpgradeRecovers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "sigkill", Namespace: workspace}}
	g.Expect(upstream.Client.Create(ctx, cl)).To(Succeed())
	ns, err := standInClusterController(ctx, "sigkill")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Publish("sigkill", "0.1.0")).To(Succeed())
	g.Expect(repo.Publish("sigkill", "0.2.0", testenv.WithTemplate("configmap.yaml", testenv.DefaultTemplate),
		testenv.WithTemplate("hook.yaml", hookJob))).To(Succeed())
	g.Expect(repo.Publish("sigkill", "0.3.0")).To(Succeed())

	first := startChildAgent(t, "sigkill")
	bd := bundleDeployment(ns, "sigkill", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "sigkill", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) { expectReady(g, bd) }, timeout, interval).Should(Succeed())

	// The upgrade to 0.2.0 waits for a hook Job that never completes (hookJob); the process is killed
	// (SIGKILL: no chance to clean up) while Helm holds the release pending-upgrade.
	setVersion(g, bd, "0.2.0", "v:0.2.0")
	g.Eventually(func(g Gomega) {
		hist, err := helm.History(ctx, "sigkill", "sigkill")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hist).To(HaveLen(2))
		g.Expect(hist[1].Info.Status).To(Equal(rcommon.StatusPendingUpgrade))
	}, timeout, interval).Should(Succeed())
	g.Expect(first.Process.Kill()).To(Succeed())
	_ = first.Wait()
	hist, err := helm.History(ctx, "sigkill", "sigkill")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist[len(hist)-1].Info.Status).To(Equal(rcommon.StatusPendingUpgrade), "the killed agent left the release locked")

	setVersion(g, bd, "0.3.0", "v:0.3.0")
	startChildAgent(t, "sigkill")
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		expectCoherent(g, got)
		g.Expect(got.Status.Release.Status).To(Equal("deployed"))
		g.Expect(got.Status.Release.ChartVersion).To(Equal("0.3.0"))
		g.Expect(configMap(g, "sigkill", "sigkill").Data).To(HaveKeyWithValue("chartVersion", "0.3.0"))
	}, timeout, interval).Should(Succeed())
	hist, err = helm.History(ctx, "sigkill", "sigkill")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist[1].Info.Status).To(Equal(rcommon.StatusFailed), "the interrupted revision was marked failed")
}

func TestAtomicAndMaxHistory(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// 0.1.0 renders, but the API server rejects it (a ConfigMap name must be a DNS subdomain).
	g.Expect(repo.Publish("atomic", "0.1.0", testenv.WithTemplate("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n"))).To(Succeed())
	for _, v := range []string{"0.2.0", "0.3.0", "0.4.0", "0.5.0"} {
		g.Expect(repo.Publish("atomic", v)).To(Succeed())
	}
	bd := bundleDeployment(mainNS, "atomic", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "atomic", Version: "0.1.0", Atomic: true, MaxHistory: 2, TimeoutSeconds: 30})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getBD(g, bd).Status.Conditions, v1alpha1.DeployedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInstallFailed))
		g.Expect(c.Message).To(ContainSubstring("Not_A_Valid_Name"))
	}, timeout, interval).Should(Succeed())
	// atomic: the failed install was removed, no failed revision stays behind.
	hist, err := helm.History(ctx, "atomic", "atomic")
	g.Expect(err).NotTo(HaveOccurred())
	for _, r := range hist {
		g.Expect(r.Info.Status).NotTo(Equal(rcommon.StatusFailed))
	}

	for _, v := range []string{"0.2.0", "0.3.0", "0.4.0", "0.5.0"} {
		setVersion(g, bd, v, "v:"+v)
		g.Eventually(func(g Gomega) {
			g.Expect(expectReady(g, bd).Status.Release.ChartVersion).To(Equal(v))
		}, timeout, interval).Should(Succeed())
	}
	hist, err = helm.History(ctx, "atomic", "atomic")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(hist)).To(BeNumerically("<=", 2), "maxHistory 2")
	g.Expect(hist[len(hist)-1].Chart.Metadata.Version).To(Equal("0.5.0"))
}

// TestRepublishedChartRefused: a chart version re-published with other content after the
// controller pinned its digest is refused, naming both digests, and the installed release is
// left as it was.
func TestRepublishedChartRefused(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// A repository of its own: no resolver has its index cached from another test.
	r, err := testenv.StartChartRepo(testenv.RepoOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	defer r.Stop()
	digest := func(version string) string {
		data, ok := r.Archive("pinned", version)
		g.Expect(ok).To(BeTrue())
		sum := sha256.Sum256(data)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	g.Expect(r.Publish("pinned", "1.0.0", testenv.WithValues(map[string]any{"data": map[string]any{"content": "original"}}))).To(Succeed())
	v1 := digest("1.0.0")
	bd := bundleDeployment(mainNS, "pinned", v1alpha1.HelmOptions{Repo: r.URL, Chart: "pinned", Version: "1.0.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.HelmChartOptions = &v1alpha1.BundleHelmOptions{ChartDigest: v1}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	eventuallyReady(g, bd)
	g.Expect(configMap(g, "pinned", "pinned").Data).To(HaveKeyWithValue("content", "original"))

	// 2.0.0 is resolved (its digest pinned), then re-published with other content.
	g.Expect(r.Publish("pinned", "2.0.0", testenv.WithValues(map[string]any{"data": map[string]any{"content": "resolved"}}))).To(Succeed())
	resolved := digest("2.0.0")
	original, _ := r.Archive("pinned", "2.0.0")
	g.Expect(r.Republish("pinned", "2.0.0", testenv.WithValues(map[string]any{"data": map[string]any{"content": "swapped"}}))).To(Succeed())
	swapped := digest("2.0.0")
	g.Expect(swapped).NotTo(Equal(resolved))
	update(g, bd, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.Version = "2.0.0"
		b.Spec.DeploymentID = "v:2.0.0"
		b.Spec.HelmChartOptions.ChartDigest = resolved
	})
	g.Eventually(func(g Gomega) {
		got := getBD(g, bd)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		for _, t := range []string{v1alpha1.InstalledCondition, v1alpha1.DeployedCondition, v1alpha1.ReadyCondition} {
			expectFalse(g, got, t, v1alpha1.ReasonChartDigestMismatch, resolved, swapped)
		}
		g.Expect(got.Status.Ready).To(BeFalse())
		g.Expect(got.Status.AppliedDeploymentID).NotTo(Equal("v:2.0.0"))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		e := refusalEvent(g, bd)
		g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
		g.Expect(e.Message).To(And(ContainSubstring(resolved), ContainSubstring(swapped)))
	}, timeout, interval).Should(Succeed())
	// Nothing installed changed: still revision 1 of 1.0.0 with the original content.
	g.Consistently(func(g Gomega) {
		hist, err := helm.History(ctx, "pinned", "pinned")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hist).To(HaveLen(1))
		g.Expect(configMap(g, "pinned", "pinned").Data).To(HaveKeyWithValue("content", "original"))
	}, 3*time.Second, interval).Should(Succeed())

	// The content the controller resolved comes back: the upgrade goes through.
	g.Expect(r.RepublishArchive(original)).To(Succeed())
	g.Expect(digest("2.0.0")).To(Equal(resolved))
	g.Eventually(func(g Gomega) {
		got := expectReady(g, bd)
		g.Expect(got.Status.Release.ChartVersion).To(Equal("2.0.0"))
		g.Expect(configMap(g, "pinned", "pinned").Data).To(HaveKeyWithValue("content", "resolved"))
	}, timeout, interval).Should(Succeed())
}
