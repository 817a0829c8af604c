// Package e2e runs the whole chain with real processes: the helmops binary as controller and
// agents, three control planes, Helm repositories and an OCI registry. HelmOp → Bundle →
// BundleDeployments → agents → Helm releases in the downstream control planes.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/devenv"
	"github.com/helmops/helmops/internal/localenv"
	"github.com/helmops/helmops/internal/testenv"
)

var (
	env           *devenv.Env
	helmopsBinary string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The tests' clients log nothing worth reading; the processes log to files.
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()
	work, err := os.MkdirTemp("", "helmops-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	bin, err := testenv.BuildHelmops(work)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	helmopsBinary = bin
	env, err = devenv.Start(ctx, devenv.Options{
		Dir: work, Binary: bin,
		RepoAddr: "127.0.0.1:0", PrivateRepoAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0",
		Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		for _, name := range []string{"controller", "agent-local", "agent-dev", "agent-prod"} {
			if b, err := os.ReadFile(env.LogPath(name)); err == nil {
				tail := b
				if len(tail) > 6000 {
					tail = tail[len(tail)-6000:]
				}
				fmt.Fprintf(os.Stderr, "---- last lines of %s ----\n%s\n", name, tail)
			}
		}
	}
	env.Stop()
	return code
}

const (
	timeout  = 3 * time.Minute
	interval = 250 * time.Millisecond
)

func mgmt() client.Client { return env.Management.Client }

func helmOp(name, ns string, helm v1alpha1.HelmOptions, mutate ...func(*v1alpha1.HelmOp)) *v1alpha1.HelmOp {
	h := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{Helm: &helm}},
	}
	for _, m := range mutate {
		m(h)
	}
	return h
}

// configMap reads the demo chart's ConfigMap of a release from a cluster.
func configMap(g Gomega, cp *localenv.ControlPlane, namespace, release string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	err := cp.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: release + "-config"}, cm)
	g.Expect(err).NotTo(HaveOccurred())
	return cm
}

func expectReady(g Gomega, key client.ObjectKey) *v1alpha1.HelmOp {
	h := &v1alpha1.HelmOp{}
	g.Expect(mgmt().Get(context.Background(), key, h)).To(Succeed())
	g.Expect(meta.IsStatusConditionTrue(h.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "HelmOp %s Ready: %v", key, h.Status.Conditions)
	return h
}

func TestSpecExampleDeploysToLocal(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := helmOp("my-awesome-helmop", "fleet-local", v1alpha1.HelmOptions{
		ReleaseName: "my-fantastic-chart", Repo: env.State.PrivateRepoURL, Chart: "fantastic-chart", Version: "",
	}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "that-amazing-namespace"
		h.Spec.HelmSecretName = devenv.SecretName
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())

	// The local agent installs into the management cluster itself.
	g.Eventually(func(g Gomega) {
		cm := configMap(g, env.Management, "that-amazing-namespace", "my-fantastic-chart")
		g.Expect(cm.Data).To(HaveKeyWithValue("chartVersion", "1.1.0"))
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.Version).To(Equal("1.1.0"))
		g.Expect(got.Status.ReadyClusters).To(Equal(1))
	}, timeout, interval).Should(Succeed())
}

func TestPollingUpgradesEveryCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("poller", "1.0.0")).To(Succeed())
	h := helmOp("poller", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "poller", Version: "1.x"},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "poller"
			h.Spec.PollingInterval = &metav1.Duration{Duration: 2 * time.Second}
			h.Spec.Targets = []v1alpha1.BundleTarget{{Name: "all", ClusterSelector: &metav1.LabelSelector{}}}
		})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	for _, name := range []string{"dev", "prod"} {
		g.Eventually(func(g Gomega) {
			g.Expect(configMap(g, env.Downstreams[name], "poller", "poller").Data).To(HaveKeyWithValue("chartVersion", "1.0.0"))
		}, timeout, interval).Should(Succeed(), "installed on %s", name)
	}

	published := time.Now()
	g.Expect(env.Repo.Publish("poller", "1.1.0")).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"dev", "prod"} {
			g.Expect(configMap(g, env.Downstreams[name], "poller", "poller").Data).To(HaveKeyWithValue("chartVersion", "1.1.0"), name)
		}
	}, timeout, 100*time.Millisecond).Should(Succeed())
	t.Logf("publish → both clusters upgraded: %.1fs (polling interval 2s)", time.Since(published).Seconds())

	g.Eventually(func(g Gomega) {
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.Version).To(Equal("1.1.0"))
		g.Expect(got.Status.Display.ReadyBundleDeployments).To(Equal("2/2"))
	}, timeout, interval).Should(Succeed())
}

func TestOCIWithCredentialsAndTarball(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{Username: "oci-user", Password: "oci-pass"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "private", "2.0.0")
	g.Expect(err).NotTo(HaveOccurred())

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oci-creds", Namespace: "fleet-default"},
		StringData: map[string]string{"username": "oci-user", "password": "oci-pass", "basicHTTP": "true"}}
	g.Expect(mgmt().Create(ctx, secret)).To(Succeed())
	oci := helmOp("private-oci", "fleet-default", v1alpha1.HelmOptions{Repo: ref, Version: "2.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "private-oci"
		h.Spec.HelmSecretName = "oci-creds"
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, oci)).To(Succeed())

	tarball := helmOp("tarball", "fleet-default", v1alpha1.HelmOptions{Chart: env.State.RepoURL + "/charts/hello-0.2.0.tgz"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "tarball"
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "prod"}}
	})
	g.Expect(mgmt().Create(ctx, tarball)).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "private-oci", "private-oci").Data).To(HaveKeyWithValue("chartVersion", "2.0.0"))
		g.Expect(configMap(g, env.Downstreams["prod"], "tarball", "tarball").Data).To(HaveKeyWithValue("chartVersion", "0.2.0"))
		expectReady(g, client.ObjectKeyFromObject(oci))
		expectReady(g, client.ObjectKeyFromObject(tarball))
	}, timeout, interval).Should(Succeed())

	// The credentials went only to the targeted cluster's namespace.
	for name, want := range map[string]bool{"dev": true, "prod": false} {
		cluster := &v1alpha1.Cluster{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: name}, cluster)).To(Succeed())
		err := mgmt().Get(ctx, client.ObjectKey{Namespace: cluster.Status.Namespace, Name: "oci-creds"}, &corev1.Secret{})
		g.Expect(err == nil).To(Equal(want), "copied secret in %s's namespace", name)
	}
}

func TestTargetsByLabelSendDifferentValues(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	values := func(color string) *v1alpha1.GenericMap {
		return &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"color": color}}}
	}
	h := helmOp("colors", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.2.x", Values: values("gray")},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "colors"
			h.Spec.Targets = []v1alpha1.BundleTarget{
				{Name: "dev", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}, Helm: &v1alpha1.HelmOptions{Values: values("blue")}},
				{Name: "prod", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Helm: &v1alpha1.HelmOptions{Values: values("green")}},
			}
		})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "colors", "colors").Data).To(And(HaveKeyWithValue("color", "blue"), HaveKeyWithValue("chartVersion", "0.2.0")))
		g.Expect(configMap(g, env.Downstreams["prod"], "colors", "colors").Data).To(And(HaveKeyWithValue("color", "green"), HaveKeyWithValue("chartVersion", "0.2.0")))
		expectReady(g, client.ObjectKeyFromObject(h))
	}, timeout, interval).Should(Succeed())
}

func TestDeletingTheHelmOpUninstallsEverywhere(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gone-creds", Namespace: "fleet-default"},
		StringData: map[string]string{"username": devenv.PrivateUsername, "password": devenv.PrivatePassword}}
	g.Expect(mgmt().Create(ctx, secret)).To(Succeed())
	h := helmOp("gone", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.PrivateRepoURL, Chart: "hello"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "gone"
		h.Spec.HelmSecretName = "gone-creds"
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterSelector: &metav1.LabelSelector{}}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"dev", "prod"} {
			configMap(g, env.Downstreams[name], "gone", "gone")
		}
		expectReady(g, client.ObjectKeyFromObject(h))
	}, timeout, interval).Should(Succeed())
	clusterNamespaces := map[string]string{}
	for _, name := range []string{"dev", "prod"} {
		cluster := &v1alpha1.Cluster{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: name}, cluster)).To(Succeed())
		clusterNamespaces[name] = cluster.Status.Namespace
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: cluster.Status.Namespace, Name: "gone-creds"}, &corev1.Secret{})).To(Succeed())
	}

	g.Expect(mgmt().Delete(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for name, ns := range clusterNamespaces {
			err := env.Downstreams[name].Client.Get(ctx, client.ObjectKey{Namespace: "gone", Name: "gone-config"}, &corev1.ConfigMap{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "release uninstalled on %s", name)
			err = mgmt().Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone-creds"}, &corev1.Secret{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "copied secret removed from %s", ns)
			err = mgmt().Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, &v1alpha1.BundleDeployment{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "BundleDeployment removed from %s", ns)
		}
		err := mgmt().Get(ctx, client.ObjectKeyFromObject(h), &v1alpha1.HelmOp{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

var coordinationLease = schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}

func keyOf(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

func keyOfName(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

// Without polling a constraint is resolved when the spec changes; `helmops reconcile helmop`
// asks for a poll now and returns once the controller has made it.
func TestReconcileCommandPollsNow(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("ondemand", "1.0.0")).To(Succeed())
	h := helmOp("ondemand", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "ondemand", Version: "1.x"}, func(h *v1alpha1.HelmOp) {
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(expectReady(g, client.ObjectKeyFromObject(h)).Status.Version).To(Equal("1.0.0"))
	}, timeout, interval).Should(Succeed())

	g.Expect(env.Repo.Publish("ondemand", "1.1.0")).To(Succeed())
	out, err := exec.Command(helmopsBinary, "reconcile", "helmop", "ondemand", "-n", "fleet-default",
		"--kubeconfig", env.State.Kubeconfigs["management"]).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("Reconciled: version 1.1.0"))
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, env.Downstreams["dev"], "default", "ondemand").Data).To(HaveKeyWithValue("chartVersion", "1.1.0"))
	}, timeout, interval).Should(Succeed())
}
