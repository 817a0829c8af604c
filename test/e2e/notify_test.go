package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

// TestNotificationsThroughTheBinary runs `helmops controller` for its own shard with the
// notification endpoint on, and the Distribution registry configured to notify it: a push with
// Helm's registry client moves a HelmOp that polls once an hour.
func TestNotificationsThroughTheBinary(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	token := "e2e-notification-token-0123456789"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helmops-webhook-e2e", Namespace: "default"}, StringData: map[string]string{"token": token}}
	g.Expect(mgmt().Create(ctx, secret)).To(Succeed())
	webhook := freePort(t)
	logPath := filepath.Join(t.TempDir(), "controller.log")
	logFile, err := os.Create(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	// Its own shard, so that the environment's controller leaves the HelmOp alone; a free port
	// for the endpoint and the metrics, so that parallel runs on one machine do not collide.
	cmd := exec.Command(helmopsBinary, "controller", "--kubeconfig", env.State.Kubeconfigs["management"],
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--webhook-bind-address", webhook,
		"--webhook-secret", "default/helmops-webhook-e2e", "--shard-id", "notify", "--bootstrap=false",
		"--allow-loopback") // the registry listens on loopback
	cmd.Stdout, cmd.Stderr = logFile, logFile
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{Notifications: configuration.Notifications{
		Endpoints: []configuration.Endpoint{{
			Name: "helmops", URL: "http://" + webhook + "/notify", Timeout: 5 * time.Second, Threshold: 3, Backoff: time.Second,
			Headers: http.Header{"Authorization": {"Bearer " + token}},
			Ignore:  configuration.Ignore{Actions: []string{"pull"}},
		}},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "notified", "0.1.0")
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(mgmt().Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain-oci", Namespace: "fleet-default"},
		StringData: map[string]string{"basicHTTP": "true"}})).To(Succeed())
	h := helmOp("notified", "fleet-default", v1alpha1.HelmOptions{Repo: ref, Version: "0.x"}, func(h *v1alpha1.HelmOp) {
		h.Labels = map[string]string{v1alpha1.ShardLabel: "notify"}
		h.Spec.HelmSecretName = "plain-oci"
		h.Spec.PollingInterval = &metav1.Duration{Duration: time.Hour}
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())
	bundleVersion := func() string {
		b := &v1alpha1.Bundle{}
		if err := mgmt().Get(ctx, keyOf(h), b); err != nil {
			return ""
		}
		return b.Spec.HelmOrEmpty().Version
	}
	g.Eventually(bundleVersion, time.Minute, 50*time.Millisecond).Should(Equal("0.1.0"))

	start := time.Now()
	_, err = reg.Publish(ctx, "notified", "0.2.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(bundleVersion, time.Minute, 20*time.Millisecond).Should(Equal("0.2.0"), func() string {
		b, _ := os.ReadFile(logPath)
		return tail(string(b))
	})
	t.Logf("push to Bundle through the helmops binary: %v (the push itself included)", time.Since(start))
}
