package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// controlPlaneProcesses lists the pids of running control-plane and helmops processes.
func controlPlaneProcesses() map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch name {
		case "kube-apiserver", "etcd", "kube-controller", "kube-scheduler", "kwok", "helmops":
			out[e.Name()] = name
		}
	}
	return out
}

// TestDevRunsTheExamplesAndCtrlCStopsEverything runs `helmops dev` as a user does (its default
// addresses, which the examples use), waits until every example HelmOp is deployed (Deployments,
// CRDs and a hook Job among them), publishes a version, then a failing one, presses Ctrl-C and checks that nothing it started is left running.
func TestDevRunsTheExamplesAndCtrlCStopsEverything(t *testing.T) {
	g := NewWithT(t)
	before := controlPlaneProcesses()
	dir := t.TempDir()
	cmd := exec.Command(helmopsBinary, "dev", "--dir", dir)
	stdout, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var transcript strings.Builder
	wait := func(what string) {
		t.Helper()
		deadline := time.After(4 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helmops dev ended before %q:\n%s", what, transcript.String())
				}
				transcript.WriteString(l + "\n")
				if strings.Contains(l, what) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q within 4 minutes:\n%s", what, transcript.String())
			}
		}
	}
	wait("All example HelmOps deployed")
	t.Logf("helmops dev: start to all examples deployed in %.1fs", time.Since(start).Seconds())
	for _, name := range []string{"management", "dev", "prod"} {
		g.Expect(filepath.Join(dir, "kubeconfigs", name+".yaml")).To(BeAnExistingFile())
	}

	// A published version reaches the running environment and polling rolls it out.
	out, err := exec.Command(helmopsBinary, "dev", "publish", "hello", "0.4.0", "--dir", dir).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("Published hello 0.4.0"))
	wait("0.x → 0.4.0")

	// A version of the Deployment chart whose Pods crash-loop: both clusters say NotReady and why.
	out, err = exec.Command(helmopsBinary, "dev", "publish", "web", "1.2.0", "--failing", "--dir", dir).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	wait("fleet-default/web on dev: NotReady")
	wait("CrashLoopBackOff")

	g.Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
	exited := make(chan error, 1)
	go func() {
		for l := range lines {
			transcript.WriteString(l + "\n")
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		g.Expect(err).NotTo(HaveOccurred(), transcript.String())
	case <-time.After(time.Minute):
		t.Fatal("helmops dev did not stop within a minute of Ctrl-C")
	}
	g.Expect(transcript.String()).To(ContainSubstring("nothing is left running"))
	g.Eventually(func() []string {
		var left []string
		for pid, name := range controlPlaneProcesses() {
			if _, ok := before[pid]; !ok {
				left = append(left, pid+" "+name)
			}
		}
		return left
	}, 20*time.Second, 200*time.Millisecond).Should(BeEmpty(), "processes left running after Ctrl-C")
	g.Expect(filepath.Join(dir, "state.json")).NotTo(BeAnExistingFile())
}
