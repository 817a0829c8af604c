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
	var missing []string
	for _, b := range controlPlaneBinaries {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("control-plane binaries missing in %s: %s; run `make envtest` to build them (once per machine)",
			dir, strings.Join(missing, ", "))
	}
	return dir, nil
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
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client with Scheme().
	Client client.Client
	// KubeconfigPath is an admin kubeconfig file for kubectl and child processes.
	KubeconfigPath string

	binDir string
	dir    string
	ownDir bool
	env    *envtest.Environment
	kcm    *exec.Cmd
	kcmErr chan error
}

// Options configure a control plane.
type Options struct {
	// Name labels the control plane; default "cluster".
	Name string
	// Dir holds the kubeconfig and logs; default a new temporary folder removed on Stop.
	Dir string
	// NoControllerManager skips kube-controller-manager (no garbage collector, namespaces stay
	// Terminating).
	NoControllerManager bool
}

// Start starts a control plane: etcd, kube-apiserver with the helmops CRDs, and a
// kube-controller-manager running the garbage collector and namespace controllers.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	crds, err := crd.CRDs()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "cluster"
	}
	cp := &ControlPlane{Name: opts.Name, binDir: binDir, dir: opts.Dir}
	cp.ownDir = cp.dir == ""
	ownDir := cp.ownDir
	if ownDir {
		if cp.dir, err = os.MkdirTemp("", "helmops-"+opts.Name+"-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(cp.dir, 0o755); err != nil {
		return nil, err
	}
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}
	cp.Config, err = cp.env.Start()
	if err != nil {
		if ownDir {
			_ = os.RemoveAll(cp.dir)
		}
		return nil, fmt.Errorf("starting control plane %s: %w", opts.Name, err)
	}
	// Client-side throttling only slows tests and the dev environment down.
	cp.Config.QPS, cp.Config.Burst = 200, 400
	cleanup := func() {
		_ = cp.env.Stop()
		if ownDir {
			_ = os.RemoveAll(cp.dir)
		}
	}
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: Scheme()}); err != nil {
		cleanup()
		return nil, err
	}
	admin, err := cp.env.AddUser(envtest.User{Name: "helmops-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		cleanup()
		return nil, err
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		cleanup()
		return nil, err
	}
	cp.KubeconfigPath = filepath.Join(cp.dir, "kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, kubeconfig, 0o600); err != nil {
		cleanup()
		return nil, err
	}
	if !opts.NoControllerManager {
		if err := cp.startControllerManager(); err != nil {
			cleanup()
			return nil, err
		}
	}
	if err := cp.waitForDefaultNamespace(ctx); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) startControllerManager() error {
	logPath := filepath.Join(cp.dir, "kube-controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(cp.binDir, "kube-controller-manager"),
		"--kubeconfig="+cp.KubeconfigPath,
		"--controllers=garbagecollector,namespace",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--authentication-skip-lookup",
		"--concurrent-gc-syncs=10",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	cp.kcm = cmd
	cp.kcmErr = make(chan error, 1)
	go func() {
		cp.kcmErr <- cmd.Wait()
		_ = logFile.Close()
	}()
	return nil
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

// Stop stops the controller manager, the API server and etcd, and removes temporary files.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.kcm != nil && cp.kcm.Process != nil {
		_ = syscall.Kill(-cp.kcm.Process.Pid, syscall.SIGTERM)
		select {
		case <-cp.kcmErr:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cp.kcm.Process.Pid, syscall.SIGKILL)
			<-cp.kcmErr
		}
	}
	if err := cp.env.Stop(); err != nil {
		errs = append(errs, err)
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
