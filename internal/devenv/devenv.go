// Package devenv runs helmops end to end on one machine: a management control plane and two
// downstream control planes, a Helm repository (public and private) and an OCI registry loaded
// with demo charts, the controller and one agent per cluster as child processes. `helmops dev`
// and the end-to-end tests both use it.
//
// Every agent reaches the management cluster with the scoped credential helmops grants it, never
// with an administrator's: the local agent with the one the controller writes for Cluster local,
// a downstream cluster either by registering with a ClusterRegistrationToken (agent-initiated) or
// through a Cluster whose spec.kubeConfigSecret lets the controller install its agent
// (manager-initiated). No container runs on the simulated nodes, so for the latter the environment
// runs the agent process the installed chart describes, with the credential the controller put
// there.
package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/localenv"
)

// Demo credentials of the private repository. They protect nothing: the repository listens on
// loopback only, for the demo of helmSecretName.
const (
	PrivateUsername = "demo"
	PrivatePassword = "demo-password"
	// SecretName is the Secret holding the private repository's credentials in each workspace.
	SecretName = "my-top-secret-helm-access"
	// RegistrySecretName is the Secret that says the dev registry speaks plain HTTP (basicHTTP).
	RegistrySecretName = "local-registry"
)

// Downstream is one downstream cluster, its labels and how it is onboarded.
type Downstream struct {
	Name   string
	Labels map[string]string
	// ManagerInitiated onboards the cluster through a Cluster with spec.kubeConfigSecret (the
	// controller installs its agent); otherwise its agent registers with the
	// ClusterRegistrationToken TokenName.
	ManagerInitiated bool
}

const (
	// TokenName is the ClusterRegistrationToken of fleet-default that agent-initiated
	// downstream clusters register with.
	TokenName = "onboarding"
	// AgentNamespace is the downstream namespace holding an agent's credential.
	AgentNamespace = "helmops-system"
	// registeredCredential is where a registered agent keeps the credential it was granted
	// (helmops agent's default --credential-secret).
	registeredCredential = AgentNamespace + "/helmops-agent-credential"
	// installedCredential is where the controller writes the credential of an agent it
	// installed through spec.kubeConfigSecret.
	installedCredential = AgentNamespace + "/helmops-upstream"
	// localCredential is the Secret of the management cluster the controller writes the local
	// agent's credential into, as the helmops chart has it do.
	localCredential = AgentNamespace + "/helmops-agent-local-credential"
)

// KubeconfigSecretName is the Secret of fleet-default holding the kubeconfig of a
// manager-initiated downstream cluster (its Cluster's spec.kubeConfigSecret).
func KubeconfigSecretName(cluster string) string { return cluster + "-kubeconfig" }

// Options configure the environment.
type Options struct {
	// Dir holds state.json, kubeconfigs/ and logs/. Required.
	Dir string
	// Binary is the helmops binary run as controller and agents; default the running executable.
	Binary string
	// RepoAddr, PrivateRepoAddr and RegistryAddr are listen addresses; "127.0.0.1:0" picks a
	// free port. Defaults: 127.0.0.1:8879, 127.0.0.1:8880, 127.0.0.1:5055.
	RepoAddr, PrivateRepoAddr, RegistryAddr string
	// Downstreams default to dev (env=dev, registered with a token) and prod (env=prod,
	// manager-initiated).
	Downstreams []Downstream
	// Nodes is the number of simulated nodes of each downstream cluster, on which Pods run and
	// become Ready (localenv.Options.Nodes); 0 means 3, a negative number none.
	Nodes int
	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// ControllerArgs and AgentArgs are appended to the child processes' arguments.
	ControllerArgs, AgentArgs []string
}

// State is what another process (`helmops dev publish`, kubectl users) needs to reach the
// environment; it is written to Dir/state.json.
type State struct {
	RepoURL        string            `json:"repoURL"`
	PrivateRepoURL string            `json:"privateRepoURL"`
	RegistryHost   string            `json:"registryHost"`
	Kubeconfigs    map[string]string `json:"kubeconfigs"`
	PID            int               `json:"pid"`
}

// Env is a running environment.
type Env struct {
	Management  *localenv.ControlPlane
	Downstreams map[string]*localenv.ControlPlane
	Repo        *localenv.ChartRepo
	PrivateRepo *localenv.ChartRepo
	Registry    *localenv.OCIRegistry
	State       State

	opts  Options
	mu    sync.Mutex
	procs map[string]*process
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StatePath is where Start writes the State.
func StatePath(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads the State of a running environment.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(StatePath(dir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no helmops dev environment runs from %s: start one with `helmops dev` (or `make dev`)", dir)
		}
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", StatePath(dir), err)
	}
	return s, nil
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("devenv: Options.Dir is required")
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Binary = exe
	}
	if o.RepoAddr == "" {
		o.RepoAddr = "127.0.0.1:8879"
	}
	if o.PrivateRepoAddr == "" {
		o.PrivateRepoAddr = "127.0.0.1:8880"
	}
	if o.RegistryAddr == "" {
		o.RegistryAddr = "127.0.0.1:5055"
	}
	if o.Downstreams == nil {
		o.Downstreams = []Downstream{
			{Name: "dev", Labels: map[string]string{"env": "dev"}},
			{Name: "prod", Labels: map[string]string{"env": "prod"}, ManagerInitiated: true},
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case o.Nodes == 0:
		o.Nodes = 3
	case o.Nodes < 0:
		o.Nodes = 0
	}
	return nil
}

func (e *Env) step(format string, args ...any) func() {
	start := time.Now()
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(e.opts.Progress, "  • %s ...", msg)
	return func() { fmt.Fprintf(e.opts.Progress, " done (%.1fs)\n", time.Since(start).Seconds()) }
}

// Start starts everything and returns once the controller and agents run. Call Stop to end it.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	e := &Env{opts: opts, Downstreams: map[string]*localenv.ControlPlane{}, procs: map[string]*process{}}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"Starting Helm repositories and the OCI registry with the demo charts", e.startRepositories},
		{fmt.Sprintf("Starting control planes: management, %s (%d simulated nodes each)",
			strings.Join(names(opts.Downstreams), ", "), opts.Nodes), e.startControlPlanes},
		{"Creating workspaces fleet-local and fleet-default with the repository secrets", e.createWorkspaces},
		{"Starting the controller and the local agent", e.startHelmops},
		{fmt.Sprintf("Onboarding %s", onboardingSummary(opts.Downstreams)), e.onboard},
	}
	if err := e.makeDirs(); err != nil {
		return nil, err
	}
	for _, s := range steps {
		done := e.step("%s", s.name)
		if err := s.run(ctx); err != nil {
			fmt.Fprintln(e.opts.Progress, " failed")
			return nil, err
		}
		done()
	}
	return e, e.writeState()
}

func (e *Env) makeDirs() error {
	for _, d := range []string{"kubeconfigs", "logs", "clusters"} {
		if err := os.MkdirAll(filepath.Join(e.opts.Dir, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) startRepositories(ctx context.Context) error {
	var err error
	opts := e.opts
	if e.Repo, err = localenv.StartChartRepo(localenv.RepoOptions{Addr: opts.RepoAddr, AllowUpload: true}); err != nil {
		return fmt.Errorf("starting the chart repository on %s: %w", opts.RepoAddr, err)
	}
	if e.PrivateRepo, err = localenv.StartChartRepo(localenv.RepoOptions{Addr: opts.PrivateRepoAddr, AllowUpload: true,
		Username: PrivateUsername, Password: PrivatePassword}); err != nil {
		return fmt.Errorf("starting the private chart repository on %s: %w", opts.PrivateRepoAddr, err)
	}
	if e.Registry, err = localenv.StartOCIRegistry(localenv.RegistryOptions{Addr: opts.RegistryAddr}); err != nil {
		return fmt.Errorf("starting the OCI registry on %s: %w", opts.RegistryAddr, err)
	}
	for name, versions := range DemoCharts {
		for _, v := range versions {
			if err := e.Publish(ctx, name, v, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// startControlPlanes starts the management and downstream control planes in parallel (each
// takes a few seconds, mostly waiting) and copies their kubeconfigs into Dir/kubeconfigs.
func (e *Env) startControlPlanes(ctx context.Context) error {
	all := append([]string{"management"}, names(e.opts.Downstreams)...)
	if err := e.startInParallel(ctx, all); err != nil {
		return err
	}
	e.State = State{RepoURL: e.Repo.URL, PrivateRepoURL: e.PrivateRepo.URL, RegistryHost: e.Registry.Host,
		Kubeconfigs: map[string]string{}, PID: os.Getpid()}
	return e.copyKubeconfigs(all)
}

// startInParallel starts the named control planes at once, the downstream ones with simulated
// nodes, and waits for all of them; it returns the errors of those that did not start.
func (e *Env) startInParallel(ctx context.Context, all []string) error {
	type started struct {
		name string
		cp   *localenv.ControlPlane
		err  error
	}
	results := make(chan started)
	for _, name := range all {
		go func(name string) {
			o := localenv.Options{Name: name, Dir: filepath.Join(e.opts.Dir, "clusters", name)}
			if name != "management" {
				o.Nodes = e.opts.Nodes
			}
			cp, err := localenv.Start(ctx, o)
			results <- started{name, cp, err}
		}(name)
	}
	var errs []error
	for range all {
		r := <-results
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case r.name == "management":
			e.Management = r.cp
		default:
			e.Downstreams[r.name] = r.cp
		}
	}
	return errors.Join(errs...)
}

// copyKubeconfigs copies the named control planes' kubeconfigs into Dir/kubeconfigs and records
// them in the state.
func (e *Env) copyKubeconfigs(all []string) error {
	for _, name := range all {
		cp := e.Management
		if name != "management" {
			cp = e.Downstreams[name]
		}
		b, err := os.ReadFile(cp.KubeconfigPath)
		if err != nil {
			return err
		}
		path := filepath.Join(e.opts.Dir, "kubeconfigs", name+".yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		e.State.Kubeconfigs[name] = path
	}
	return nil
}

func (e *Env) createWorkspaces(ctx context.Context) error {
	c := e.Management.Client
	for _, ns := range []string{"fleet-local", "fleet-default"} {
		objs := []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: ns},
				StringData: map[string]string{"username": PrivateUsername, "password": PrivatePassword}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: RegistrySecretName, Namespace: ns},
				StringData: map[string]string{"basicHTTP": "true"}},
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		}
	}
	return nil
}

// startHelmops starts the controller and the agent of the management cluster ("local"), which
// waits for the credential the controller writes for it.
func (e *Env) startHelmops(ctx context.Context) error {
	opts := e.opts
	mgmt := e.State.Kubeconfigs["management"]
	// Every repository of the environment listens on loopback, which chart fetches refuse by default.
	if err := e.startProcess("controller", append([]string{"controller", "--kubeconfig", mgmt, "--allow-loopback",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--webhook-bind-address", "0",
		"--local-agent-credential-secret", localCredential}, opts.ControllerArgs...)); err != nil {
		return err
	}
	// The management control plane has no nodes, so its Pods never start: Helm waits only for
	// hooks there.
	return e.startAgent("local", mgmt, []string{"--credential-secret", localCredential, "--helm-wait-strategy", "hookOnly"})
}

// startAgent starts the agent process of a cluster with the downstream kubeconfig and args.
func (e *Env) startAgent(name, kubeconfig string, args []string) error {
	base := []string{"agent", "--kubeconfig", kubeconfig, "--allow-loopback", "--metrics-bind-address", "0",
		"--chart-cache-dir", filepath.Join(e.opts.Dir, "charts", name)}
	if name != "local" && e.opts.Nodes == 0 {
		base = append(base, "--helm-wait-strategy", "hookOnly")
	}
	return e.startProcess("agent-"+name, append(append(base, args...), e.opts.AgentArgs...))
}

func onboardingSummary(ds []Downstream) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.ManagerInitiated {
			parts = append(parts, d.Name+" through its Cluster's spec.kubeConfigSecret")
		} else {
			parts = append(parts, d.Name+" with ClusterRegistrationToken "+TokenName)
		}
	}
	return strings.Join(parts, ", ")
}

// onboard onboards every downstream cluster its way, as an administrator would, and starts its
// agent process.
func (e *Env) onboard(ctx context.Context) error {
	for _, d := range e.opts.Downstreams {
		var err error
		if d.ManagerInitiated {
			err = e.onboardManaged(ctx, d)
		} else {
			err = e.onboardRegistered(ctx, d)
		}
		if err != nil {
			return fmt.Errorf("onboarding cluster %s: %w", d.Name, err)
		}
	}
	return nil
}

// onboardRegistered creates the workspace's registration token (once) and the Cluster with the
// client ID the agent registers with, so the Cluster has the name and labels the examples
// target, then starts the agent with the token's kubeconfig: it registers, keeps the
// credential it is granted downstream and never uses the token again.
func (e *Env) onboardRegistered(ctx context.Context, d Downstream) error {
	c := e.Management.Client
	token := &v1alpha1.ClusterRegistrationToken{ObjectMeta: metav1.ObjectMeta{Name: TokenName, Namespace: "fleet-default"}}
	if err := c.Create(ctx, token); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	cluster := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: "fleet-default", Labels: d.Labels},
		Spec: v1alpha1.ClusterSpec{ClientID: d.Name}}
	if err := c.Create(ctx, cluster); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	kubeconfig, err := e.registrationKubeconfig(ctx)
	if err != nil {
		return err
	}
	return e.startAgent(d.Name, e.State.Kubeconfigs[d.Name], []string{"--registration-kubeconfig", kubeconfig,
		"--client-id", d.Name, "--labels", labelString(d.Labels), "--credential-secret", registeredCredential})
}

// registrationKubeconfig waits for the controller to write the token's kubeconfig and copies it
// into Dir/kubeconfigs, as an administrator hands it to a cluster to onboard.
func (e *Env) registrationKubeconfig(ctx context.Context) (string, error) {
	path := filepath.Join(e.opts.Dir, "kubeconfigs", "registration-"+TokenName+".yaml")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		token := &v1alpha1.ClusterRegistrationToken{}
		err := e.Management.Client.Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: TokenName}, token)
		if err == nil && token.Status.SecretName != "" {
			s := &corev1.Secret{}
			err = e.Management.Client.Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: token.Status.SecretName}, s)
			if err == nil && len(s.Data[v1alpha1.RegistrationKubeconfigKey]) > 0 {
				return path, os.WriteFile(path, s.Data[v1alpha1.RegistrationKubeconfigKey], 0o600)
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the controller wrote no kubeconfig for ClusterRegistrationToken fleet-default/%s (see %s): %w", TokenName, e.LogPath("controller"), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// onboardManaged creates the Secret with the downstream kubeconfig and the Cluster naming it:
// the controller grants the agent its credential, writes it downstream and installs the agent
// chart there. No container runs on the simulated nodes (kwok only marks the chart's Pod
// Running), so the environment runs the agent process that chart describes, with the credential
// the controller wrote.
func (e *Env) onboardManaged(ctx context.Context, d Downstream) error {
	c := e.Management.Client
	raw, err := os.ReadFile(e.State.Kubeconfigs[d.Name])
	if err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: KubeconfigSecretName(d.Name), Namespace: "fleet-default"},
		Data: map[string][]byte{"value": raw}}
	cluster := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: "fleet-default", Labels: d.Labels},
		Spec: v1alpha1.ClusterSpec{KubeConfigSecret: secret.Name}}
	for _, o := range []client.Object{secret, cluster} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return e.startAgent(d.Name, e.State.Kubeconfigs[d.Name], []string{"--credential-secret", installedCredential})
}

func (e *Env) writeState() error {
	b, err := json.MarshalIndent(e.State, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(StatePath(e.opts.Dir), b, 0o644)
}

func names(ds []Downstream) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func labelString(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (e *Env) startProcess(name string, args []string) error {
	logPath := filepath.Join(e.opts.Dir, "logs", name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Children die with us even on SIGKILL, so nothing is left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs[name] = p
	e.mu.Unlock()
	return nil
}

// StopProcess stops one child process (e.g. "agent-dev") with SIGTERM, then SIGKILL.
func (e *Env) StopProcess(name string) {
	e.mu.Lock()
	p := e.procs[name]
	delete(e.procs, name)
	e.mu.Unlock()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports the child processes that ended on their own, with their log file.
func (e *Env) Exited() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for name, p := range e.procs {
		select {
		case <-p.done:
			out[name] = fmt.Sprintf("%v (see %s)", p.err, filepath.Join(e.opts.Dir, "logs", name+".log"))
		default:
		}
	}
	return out
}

// LogPath is the log file of a child process.
func (e *Env) LogPath(name string) string { return filepath.Join(e.opts.Dir, "logs", name+".log") }

// Stop stops the processes, the control planes and the servers, and removes state.json.
func (e *Env) Stop() {
	e.mu.Lock()
	procNames := make([]string, 0, len(e.procs))
	for n := range e.procs {
		procNames = append(procNames, n)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range procNames {
		wg.Add(1)
		go func(n string) { defer wg.Done(); e.StopProcess(n) }(n)
	}
	wg.Wait()
	cps := []*localenv.ControlPlane{e.Management}
	for _, cp := range e.Downstreams {
		cps = append(cps, cp)
	}
	for _, cp := range cps {
		if cp != nil {
			wg.Add(1)
			go func(cp *localenv.ControlPlane) { defer wg.Done(); _ = cp.Stop() }(cp)
		}
	}
	wg.Wait()
	for _, r := range []*localenv.ChartRepo{e.Repo, e.PrivateRepo} {
		if r != nil {
			r.Stop()
		}
	}
	if e.Registry != nil {
		e.Registry.Stop()
	}
	if e.opts.Dir != "" {
		_ = os.Remove(StatePath(e.opts.Dir))
	}
}

// Publish publishes a demo chart version (BuildDemoChart) to both repositories and the registry.
func (e *Env) Publish(ctx context.Context, chart, version string, failing bool) error {
	if err := checkFailing(chart, failing); err != nil {
		return err
	}
	data, err := BuildDemoChart(chart, version, failing)
	if err != nil {
		return err
	}
	if err := e.Repo.PublishArchive(data); err != nil {
		return err
	}
	if err := e.PrivateRepo.PublishArchive(data); err != nil {
		return err
	}
	_, err = e.Registry.PublishArchive(ctx, data, chart, version)
	return err
}

// PublishTo publishes a demo chart version to a running environment from another process: an
// upload to both repositories and a push to the registry.
func PublishTo(ctx context.Context, s *State, chart, version string, failing bool) error {
	if err := checkFailing(chart, failing); err != nil {
		return err
	}
	data, err := BuildDemoChart(chart, version, failing)
	if err != nil {
		return err
	}
	for _, repo := range []struct {
		url        string
		user, pass string
	}{{s.RepoURL, "", ""}, {s.PrivateRepoURL, PrivateUsername, PrivatePassword}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, repo.url+"/api/charts", bytes.NewReader(data))
		if err != nil {
			return err
		}
		if repo.user != "" {
			req.SetBasicAuth(repo.user, repo.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("publishing to %s: %w (is `helmops dev` running?)", repo.url, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("publishing %s %s to %s: %s: %s", chart, version, repo.url, resp.Status, strings.TrimSpace(string(body)))
		}
	}
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard))
	if err != nil {
		return err
	}
	ref := fmt.Sprintf("%s/charts/%s:%s", s.RegistryHost, chart, version)
	if _, err := rc.Push(data, ref); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
