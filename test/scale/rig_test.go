// Package scale measures the shipped `helmops` binary at scale: it builds the binary, runs
// `helmops controller` and `helmops agent` as their own processes with their default flags
// against real kube-apiservers, and asserts correctness (every Bundle and BundleDeployment exact,
// no HelmOp left without status, polling continues for all) while it reports times, request
// rates and peak RSS. Timings never decide a test.
//
// Each process reaches its apiserver through a counting proxy (countingProxy), so the requests
// of the process under test are counted by verb and resource apart from the test's own.
//
// The sizes that run by default are small enough for `make test`; HELMOPS_SCALE=full runs the
// sizes of docs/benchmarks.md.
package scale

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/helmops/helmops/internal/testenv"
)

var helmopsBinary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime; the processes log to files
	work, err := os.MkdirTemp("", "helmops-scale-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if helmopsBinary, err = testenv.BuildHelmops(work); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// full reports whether the sizes of docs/benchmarks.md were asked for.
func full() bool { return os.Getenv("HELMOPS_SCALE") == "full" }

// size is small in `make test` and big with HELMOPS_SCALE=full.
func size(small, big int) int {
	if full() {
		return big
	}
	return small
}

// controlPlane starts a control plane for one test. No kube-controller-manager: nothing here
// needs garbage collection, and it would compete with the processes measured.
func controlPlane(t *testing.T, name string) *testenv.ControlPlane {
	t.Helper()
	cp, err := testenv.Start(context.Background(), testenv.Options{Name: name, NoControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// watched is a reader of what the test watches on cp: a cache filled from watches, started for a
// kind on its first read. Listing thousands of objects every second instead would load the
// apiserver whose work is measured.
func watched(t *testing.T, cp *testenv.ControlPlane) client.Reader {
	t.Helper()
	c, err := cache.New(cp.TestConfig, cache.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the test's cache did not start")
	}
	return c
}

// process is a running helmops binary.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan error
}

// start runs the helmops binary with args. The metrics, probe and notification endpoints are
// turned off ("0") in every process: their default ports would collide between processes on
// one machine, and nothing here reads them.
func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helmopsBinary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("---- last lines of %s ----\n%s", name, b)
		}
	})
	return p
}

// startController runs `helmops controller` with its default flags, reaching the API server
// through kubeconfig. Besides the endpoints (see start), one flag differs from a user's: the
// test's chart repository listens on loopback, which chart fetches refuse by default.
//
// HELMOPS_SCALE_CONTROLLER_ARGS adds flags (space-separated) for comparing settings, e.g.
// "--kube-api-qps 50 --kube-api-burst 100"; the test logs them.
func startController(t *testing.T, kubeconfig string) *process {
	return start(t, "controller", extraArgs(t, "HELMOPS_SCALE_CONTROLLER_ARGS", "controller", "--kubeconfig", kubeconfig,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--webhook-bind-address", "0",
		"--allow-loopback")...)
}

// extraArgs appends the space-separated flags of the environment variable env to args, and logs
// them: a run that compares settings says so.
func extraArgs(t *testing.T, env string, args ...string) []string {
	extra := strings.Fields(os.Getenv(env))
	if len(extra) > 0 {
		t.Logf("%s beside the defaults: %v", env, extra)
	}
	return append(args, extra...)
}

// peakRSS is the process's peak resident set size in MiB (VmHWM), read while it runs.
func (p *process) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return -1
}

// log returns what the process wrote so far.
func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}
