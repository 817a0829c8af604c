package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// descendants lists the control-plane and helmops processes below pid, by pid, with their names.
// Other test packages start the same programs at the same time, so only the process tree of the
// `helmops dev` under test counts.
func descendants(pid int) map[string]string {
	parent := map[string]string{}
	name := map[string]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 {
			continue
		}
		parent[e.Name()], name[e.Name()] = fields[1], s[open+1:closing]
	}
	out := map[string]string{}
	root := strconv.Itoa(pid)
	for p := range parent {
		for q := p; q != "" && q != "1" && q != "0"; q = parent[q] {
			if parent[q] == root {
				switch name[p] {
				case "kube-apiserver", "etcd", "kube-controller", "kube-scheduler", "kwok", "helmops":
					out[p] = name[p]
				}
				break
			}
		}
	}
	return out
}

// running keeps the processes of procs that still run under the same name.
func running(procs map[string]string) []string {
	var left []string
	for pid, name := range procs {
		comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			left = append(left, pid+" "+name)
		}
	}
	return left
}

// TestDevRunsTheExamplesAndCtrlCStopsEverything runs `helmops dev` as a user does (its default
// addresses, which the examples use), waits until every example HelmOp is deployed (Deployments,
// CRDs and a hook Job among them), publishes a version, then a failing one, presses Ctrl-C and checks that nothing it started is left running.
func TestDevRunsTheExamplesAndCtrlCStopsEverything(t *testing.T) {
	g := NewWithT(t)
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

	started := descendants(cmd.Process.Pid)
	g.Expect(started).NotTo(BeEmpty(), "helmops dev runs its control planes as child processes")
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
	g.Eventually(func() []string { return running(started) }, 20*time.Second, 200*time.Millisecond).
		Should(BeEmpty(), "processes left running after Ctrl-C")
	g.Expect(filepath.Join(dir, "state.json")).NotTo(BeAnExistingFile())
}
