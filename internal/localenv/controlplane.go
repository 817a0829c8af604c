// Package localenv runs, on one machine and without containers, the real components a helmops
// environment needs: Kubernetes control planes (kube-apiserver and etcd through controller-runtime's
// envtest, with a kube-controller-manager beside each), a Helm chart repository, an OCI registry
// (the CNCF Distribution registry, in process) and a chart builder. `helmops dev` runs on it, and
// the tests reach it through internal/testenv.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/helmops/helmops/config/crd"
	"github.com/helmops/helmops/internal/apiclient"
	"github.com/helmops/helmops/internal/scheme"
)

// BinDirEnv overrides where the control-plane binaries are looked up (default: bin/ at the
// module root).
const BinDirEnv = "HELMOPS_BIN_DIR"

var controlPlaneBinaries = []string{"kube-apiserver", "etcd", "kubectl", "kube-controller-manager"}

// Scheme knows the Kubernetes built-in kinds and the fleet.cattle.io kinds.
func Scheme() *runtime.Scheme { return scheme.New() }

// BinDir returns the folder holding the control-plane binaries, and an error naming the make
// target to run when any is missing.
func BinDir() (string, error) {
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	if err := checkBinaries(dir, controlPlaneBinaries); err != nil {
		return "", err
	}
	return dir, nil
}

func checkBinaries(dir string, names []string) error {
	var missing []string
	for _, b := range names {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control-plane binaries missing in %s: %s; run `make envtest` to build them (once per machine)",
			dir, strings.Join(missing, ", "))
	}
	return nil
}

// ModuleRoot finds the helmops module root from the working directory or the executable.
func ModuleRoot() (string, error) {
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.HasPrefix(string(b), "module github.com/helmops/helmops\n") {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the helmops module root from the working directory; set %s to the folder holding kube-apiserver, etcd, kubectl and kube-controller-manager", BinDirEnv)
}

// ControlPlane is one running Kubernetes control plane with the helmops CRDs installed.
type ControlPlane struct {
	// Name labels the control plane in logs, e.g. "upstream" or "downstream-1".
	Name string
	// Config reaches the API server as cluster admin with the client limits `helmops controller`
	// ships with (apiclient.ControllerQPS, apiclient.ControllerBurst), so code under test built
	// from it is throttled as it is for users.
	Config *rest.Config
	// TestConfig is the test's own: the same credentials, throttled only lightly so that a test
	// watching thousands of objects does not slow itself down. Never hand it to code under test.
	TestConfig *rest.Config
	// Client is a controller-runtime client with Scheme() built from TestConfig.
	Client client.Client
	// KubeconfigPath is an admin kubeconfig file for kubectl and child processes.
	KubeconfigPath string
	// Nodes are the names of the simulated nodes (Options.Nodes).
	Nodes []string

	opts     Options
	binDir   string
	dir      string
	ownDir   bool
	env      *envtest.Environment
	children []*child
}

// Options configure a control plane.
type Options struct {
	// Name labels the control plane; default "cluster".
	Name string
	// Dir holds the kubeconfig and logs; default a new temporary folder removed on Stop.
	Dir string
	// NoControllerManager skips kube-controller-manager (no garbage collector, namespaces stay
	// Terminating). It cannot be combined with Nodes.
	NoControllerManager bool
	// Nodes is the number of simulated nodes (see nodes.go); 0 runs none. With nodes, the
	// control plane also runs kube-scheduler, kwok, and kube-controller-manager with the workload
	// controllers, so Pods are scheduled and become Ready, Jobs complete and Deployments become
	// Available.
	Nodes int
}

// Start starts a control plane: etcd, kube-apiserver with the helmops CRDs, a
// kube-controller-manager (the garbage collector and namespace controllers, or every workload
// controller when it has nodes), and with Options.Nodes the scheduler, kwok and the Nodes.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if opts.Name == "" {
		opts.Name = "cluster"
	}
	if opts.Nodes > 0 && opts.NoControllerManager {
		return nil, fmt.Errorf("control plane %s: simulated nodes need kube-controller-manager (Options.NoControllerManager)", opts.Name)
	}
	cp := &ControlPlane{Name: opts.Name, opts: opts, dir: opts.Dir}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()
	steps := []func(context.Context) error{
		cp.findBinaries,
		cp.makeDir,
		cp.startAPIServer,
		cp.writeKubeconfig,
		cp.startControllerManager,
		cp.startNodes,
		cp.waitForDefaultNamespace,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) findBinaries(context.Context) error {
	dir, err := BinDir()
	if err != nil {
		return err
	}
	if cp.opts.Nodes > 0 {
		if err := checkBinaries(dir, nodeBinaries); err != nil {
			return err
		}
	}
	cp.binDir = dir
	return nil
}

func (cp *ControlPlane) makeDir(context.Context) error {
	if cp.dir != "" {
		return os.MkdirAll(cp.dir, 0o755)
	}
	dir, err := os.MkdirTemp("", "helmops-"+cp.Name+"-")
	if err != nil {
		return err
	}
	cp.dir, cp.ownDir = dir, true
	return nil
}

func (cp *ControlPlane) startAPIServer(context.Context) error {
	crds, err := crd.CRDs()
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: cp.binDir,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}
	admin, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting control plane %s: %w", cp.Name, err)
	}
	cp.env = env
	cp.Config = apiclient.WithLimits(admin, apiclient.ControllerQPS, apiclient.ControllerBurst)
	cp.TestConfig = apiclient.WithLimits(admin, 200, 400)
	cp.Client, err = client.New(cp.TestConfig, client.Options{Scheme: Scheme()})
	return err
}

func (cp *ControlPlane) writeKubeconfig(context.Context) error {
	admin, err := cp.env.AddUser(envtest.User{Name: "helmops-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	cp.KubeconfigPath = filepath.Join(cp.dir, "kubeconfig")
	return os.WriteFile(cp.KubeconfigPath, kubeconfig, 0o600)
}

func (cp *ControlPlane) startControllerManager(context.Context) error {
	if cp.opts.NoControllerManager {
		return nil
	}
	// Without nodes, the two controllers tests need from a real cluster; with nodes, the workload
	// controllers too. The service-account token controller needs a signing key and node IPAM a
	// cluster CIDR, neither of which envtest sets up; kwok hands out pod IPs itself.
	controllers := "garbagecollector,namespace"
	if cp.opts.Nodes > 0 {
		controllers = "*,-serviceaccount-token-controller,-node-ipam-controller"
	}
	return cp.startChild("kube-controller-manager",
		"--kubeconfig="+cp.KubeconfigPath,
		"--controllers="+controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--authentication-skip-lookup",
		"--concurrent-gc-syncs=10",
		"--v=1",
	)
}

func (cp *ControlPlane) waitForDefaultNamespace(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ns := &corev1.Namespace{}
		err := cp.Client.Get(ctx, client.ObjectKey{Name: "default"}, ns)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane %s: namespace default never appeared: %w", cp.Name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// child is a process running beside the API server, logging to DIR/NAME.log.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func (cp *ControlPlane) startChild(name string, args ...string) error {
	logFile, err := os.Create(filepath.Join(cp.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(cp.binDir, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("control plane %s: starting %s: %w", cp.Name, name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		_ = logFile.Close()
	}()
	cp.children = append(cp.children, c)
	return nil
}

func (c *child) stop() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// Stop stops kwok, the scheduler, the controller manager, the API server and etcd, and removes
// temporary files.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.children) - 1; i >= 0; i-- {
		cp.children[i].stop()
	}
	cp.children = nil
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			errs = append(errs, err)
		}
		cp.env = nil
	}
	if cp.ownDir {
		_ = os.RemoveAll(cp.dir)
	}
	return errors.Join(errs...)
}

// Kubectl runs the kubectl from bin/ against this control plane and returns its combined output.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(cp.binDir, "kubectl"), append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// KubectlPath is the kubectl binary in bin/.
func (cp *ControlPlane) KubectlPath() string { return filepath.Join(cp.binDir, "kubectl") }
