package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestControllerProcess runs `helmops controller` as a Deployment would: leader election, probes,
// metrics with Fleet's gauges, its own shard, and a clean exit on SIGTERM.
func TestControllerProcess(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	metrics, probes := freePort(t), freePort(t)
	logPath := filepath.Join(t.TempDir(), "controller.log")
	logFile, err := os.Create(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(helmopsBinary, "controller", "--kubeconfig", env.State.Kubeconfigs["management"],
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probes, "--webhook-bind-address", "0",
		"--leader-elect", "--leader-election-namespace", "default", "--shard-id", "probe", "--bootstrap=false",
		"--allow-loopback") // the environment's repositories listen on loopback
	cmd.Stdout, cmd.Stderr = logFile, logFile
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	h := helmOp("sharded", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "hello", Version: "0.1.x"}, func(h *v1alpha1.HelmOp) {
		h.Labels = map[string]string{v1alpha1.ShardLabel: "probe"}
		h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())

	controllerLog := func() string {
		log, _ := os.ReadFile(logPath)
		return "the controller's log ends:\n" + tail(string(log))
	}
	g.Eventually(func() int { code, _ := httpGet("http://" + probes + "/readyz"); return code }, timeout, 200*time.Millisecond).Should(Equal(http.StatusOK), controllerLog)
	g.Eventually(func(g Gomega) {
		code, _ := httpGet("http://" + probes + "/healthz")
		g.Expect(code).To(Equal(http.StatusOK))
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, keyOf(h), got)).To(Succeed())
		g.Expect(got.Status.Version).To(Equal("0.1.0"))
		g.Expect(got.Status.ReadyClusters).To(Equal(1))
		_, body := httpGet("http://" + metrics + "/metrics")
		g.Expect(body).To(ContainSubstring(`fleet_helmop_ready_clusters{chart="hello",name="sharded",namespace="fleet-default",repo="` + env.State.RepoURL + `",version="0.1.0"} 1`))
		g.Expect(body).To(ContainSubstring("helmops_index_requests_total"))
	}, timeout, 250*time.Millisecond).Should(Succeed(), controllerLog)

	lease := &metav1.PartialObjectMetadata{}
	lease.SetGroupVersionKind(coordinationLease)
	g.Expect(mgmt().Get(ctx, keyOfName("default", "helmops-controller-probe"), lease)).To(Succeed())

	g.Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		log, _ := os.ReadFile(logPath)
		g.Expect(err).NotTo(HaveOccurred(), "exit 0 on SIGTERM:\n%s", tail(string(log)))
	case <-time.After(30 * time.Second):
		t.Fatal("the controller did not stop within 30s of SIGTERM")
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
