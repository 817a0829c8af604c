package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/examples"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/devenv"
	"github.com/helmops/helmops/internal/localenv"
)

func defaultDevDir() string {
	if root, err := localenv.ModuleRoot(); err == nil {
		return filepath.Join(root, ".dev")
	}
	return ".dev"
}

func newDevCommand() *cobra.Command {
	var (
		dir        string
		noExamples bool
		addrs      devenv.Options
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run helmops locally: three control planes, a Helm repository, an OCI registry, the controller and agents",
		Long: `Starts a complete helmops environment on this machine, with nothing to install:
a management control plane and two downstream control planes (dev, prod), a Helm repository
(public and private) and an OCI registry pre-loaded with demo charts, the controller, and one
agent per cluster (plus the agent for the "local" cluster). It onboards the downstream clusters
the two ways helmops offers: dev's agent registers with a ClusterRegistrationToken, prod is a
Cluster with spec.kubeConfigSecret whose agent the controller installs. It applies the example
HelmOps and shows them until Ctrl-C, which stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			addrs.Dir = dir
			return runDev(ctx, cmd.OutOrStdout(), addrs, !noExamples)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDevDir(), "folder for kubeconfigs, logs and state")
	cmd.Flags().BoolVar(&noExamples, "no-examples", false, "do not apply the example HelmOps")
	cmd.Flags().StringVar(&addrs.RepoAddr, "repo-addr", "127.0.0.1:8879", "listen address of the Helm repository (the examples use the default)")
	cmd.Flags().StringVar(&addrs.PrivateRepoAddr, "private-repo-addr", "127.0.0.1:8880", "listen address of the private Helm repository")
	cmd.Flags().StringVar(&addrs.RegistryAddr, "registry-addr", "127.0.0.1:5055", "listen address of the OCI registry")
	cmd.AddCommand(newDevPublishCommand(&dir))
	return cmd
}

// newDevPublishCommand is "helmops dev publish"; its --dir is dir, the folder "helmops dev" runs
// from.
func newDevPublishCommand(dir *string) *cobra.Command {
	var failing bool
	publish := &cobra.Command{
		Use:   "publish CHART VERSION",
		Short: "Publish a new demo chart version to the running dev repositories and registry",
		Long: `Publishes a new version of a demo chart (hello, fantastic-chart, web, widgets, migrations).
With --failing, the web chart's Pods crash-loop on the simulated nodes, so the version never gets
Ready and the clusters that run it say why.`,
		Example: `  helmops dev publish hello 0.4.0
  helmops dev publish web 1.2.0 --failing`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			state, err := devenv.ReadState(*dir)
			if err != nil {
				return err
			}
			if err := devenv.PublishTo(cmd.Context(), state, args[0], args[1], failing); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Published %s %s to %s, %s and oci://%s/charts/%s\n", args[0], args[1],
				state.RepoURL, state.PrivateRepoURL, state.RegistryHost, args[0])
			return nil
		},
	}
	publish.Flags().StringVar(dir, "dir", defaultDevDir(), "folder of the running dev environment")
	publish.Flags().BoolVar(&failing, "failing", false, "publish a version whose Pods never get Ready (web chart only)")
	return publish
}

func runDev(ctx context.Context, out io.Writer, opts devenv.Options, applyExamples bool) error {
	start := time.Now()
	env, err := startDev(ctx, out, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "\nStopping: controller, agents, control planes, repositories")
		env.Stop()
		fmt.Fprintln(out, "Stopped; nothing is left running.")
	}()
	if applyExamples {
		fmt.Fprint(out, "  • Applying the example HelmOps ...")
		n, err := applyManifests(ctx, env.Management.Client, examples.Files)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, " %d applied\n", n)
	}
	printDevUsage(out, env, opts.Dir)
	w := &devWatch{out: out, env: env, start: start, waitReady: applyExamples}
	return w.run(ctx)
}

// startDev starts the environment unless one already runs from the same folder.
func startDev(ctx context.Context, out io.Writer, opts devenv.Options) (*devenv.Env, error) {
	if _, err := localenv.BinDir(); err != nil {
		return nil, err
	}
	if s, err := devenv.ReadState(opts.Dir); err == nil && processAlive(s.PID) {
		return nil, fmt.Errorf("a helmops dev environment already runs from %s (pid %d): stop it with Ctrl-C first", opts.Dir, s.PID)
	}
	fmt.Fprintln(out, "Starting the helmops dev environment")
	opts.Progress = out
	return devenv.Start(ctx, opts)
}

// devWatch shows the HelmOps of a running dev environment each time they change, until the
// context ends or one of its processes exits.
type devWatch struct {
	out   io.Writer
	env   *devenv.Env
	start time.Time
	// waitReady is true until every example HelmOp was seen deployed.
	waitReady bool
	// last is the signature of the table last shown.
	last []byte
}

func (w *devWatch) run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if exited := w.env.Exited(); len(exited) > 0 {
			for name, why := range exited {
				fmt.Fprintf(w.out, "%s exited: %s\n", name, why)
			}
			return errors.New("a helmops process exited; see its log")
		}
		if err := w.show(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintln(w.out, err)
			continue
		}
		if w.waitReady {
			if ok, _ := everyHelmOpReady(ctx, w.env.Management.Client); ok {
				w.waitReady = false
				fmt.Fprintf(w.out, "\nAll example HelmOps deployed %.1fs after start. Try: helmops dev publish hello 0.4.0\n", time.Since(w.start).Seconds())
			}
		}
	}
}

// show prints the HelmOps and the clusters not ready when they changed since last shown.
func (w *devWatch) show(ctx context.Context) error {
	c := w.env.Management.Client
	var buf bytes.Buffer
	if err := (&getOptions{allNamespaces: true}).list(ctx, c, &buf, time.Now()); err != nil {
		return err
	}
	notReady := notReadyClusters(ctx, c)
	table := append(tableSignature(ctx, c), notReady...)
	if bytes.Equal(table, w.last) {
		return nil
	}
	w.last = table
	fmt.Fprintf(w.out, "\n[%s] HelmOps\n%s", time.Now().Format("15:04:05"), buf.String())
	if len(notReady) > 0 {
		fmt.Fprintf(w.out, "Not ready:\n%s", notReady)
	}
	return nil
}

// tableSignature changes when a HelmOp's version, readiness or status changes, not when the
// "last poll" column merely ages, so the live table is reprinted only on news.
func tableSignature(ctx context.Context, c client.Reader) []byte {
	ops := &v1alpha1.HelmOpList{}
	if err := c.List(ctx, ops); err != nil {
		return nil
	}
	var b bytes.Buffer
	for i := range ops.Items {
		h := &ops.Items[i]
		fmt.Fprintf(&b, "%s/%s %s %d/%d %s\n", h.Namespace, h.Name, h.Status.Version, h.Status.ReadyClusters, h.Status.DesiredReadyClusters, statusOf(h))
	}
	return b.Bytes()
}

// notReadyClusters lists, one line each, the clusters where a HelmOp's deployment is not Ready,
// and why.
func notReadyClusters(ctx context.Context, c client.Reader) []byte {
	bds := &v1alpha1.BundleDeploymentList{}
	if err := c.List(ctx, bds); err != nil {
		return nil
	}
	sort.Slice(bds.Items, func(i, j int) bool {
		a, b := bds.Items[i].Labels, bds.Items[j].Labels
		if a[v1alpha1.BundleNameLabel] != b[v1alpha1.BundleNameLabel] {
			return a[v1alpha1.BundleNameLabel] < b[v1alpha1.BundleNameLabel]
		}
		return a[v1alpha1.ClusterLabel] < b[v1alpha1.ClusterLabel]
	})
	var b bytes.Buffer
	for i := range bds.Items {
		bd := &bds.Items[i]
		state, why := deploystate.Of(bd)
		if state == deploystate.Ready {
			continue
		}
		fmt.Fprintf(&b, "  %s/%s on %s: %s: %s\n", bd.Labels[v1alpha1.BundleNamespaceLabel], bd.Labels[v1alpha1.BundleNameLabel],
			bd.Labels[v1alpha1.ClusterLabel], state, truncateLine(why, 300))
	}
	return b.Bytes()
}

func truncateLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

func everyHelmOpReady(ctx context.Context, c client.Reader) (bool, error) {
	ops := &v1alpha1.HelmOpList{}
	if err := c.List(ctx, ops); err != nil {
		return false, err
	}
	if len(ops.Items) == 0 {
		return false, nil
	}
	for i := range ops.Items {
		h := &ops.Items[i]
		if !meta.IsStatusConditionTrue(h.Status.Conditions, v1alpha1.ReadyCondition) || h.Status.DesiredReadyClusters == 0 {
			return false, nil
		}
	}
	return true, nil
}

func printDevUsage(out io.Writer, env *devenv.Env, dir string) {
	kubectl := env.Management.KubectlPath()
	names := make([]string, 0, len(env.State.Kubeconfigs))
	for n := range env.State.Kubeconfigs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(out, `
helmops dev is running.
  Helm repository:          %s   (private, user %s: %s)
  OCI registry:             oci://%s/charts/<chart>
  Kubeconfigs:              %s
  Logs:                     %s
Clusters of fleet-default, onboarded the two ways helmops offers:
  dev    its agent registered itself with ClusterRegistrationToken %s:
           %s --kubeconfig %s get clusterregistrations -n fleet-default
  prod   the controller installed its agent through Cluster spec.kubeConfigSecret %s:
           %s --kubeconfig %s get deployments -n %s
Try, in another terminal:
  %s --kubeconfig %s get helmops -A
  %s --kubeconfig %s get deployments,pods,hpa,widgets -A
  helmops get helmop hello-oci -n fleet-default --kubeconfig %s
  helmops dev publish hello 0.4.0      # polling rolls it out to every cluster
  helmops dev publish web 1.2.0 --failing   # a version whose Pods crash-loop: NotReady, and why
Ctrl-C stops everything.
`, env.State.RepoURL, devenv.PrivateUsername, env.State.PrivateRepoURL, env.State.RegistryHost,
		filepath.Join(dir, "kubeconfigs")+"/{"+joinComma(names)+"}.yaml", filepath.Join(dir, "logs"),
		devenv.TokenName, kubectl, env.State.Kubeconfigs["management"],
		devenv.KubeconfigSecretName("prod"), kubectl, env.State.Kubeconfigs["prod"], devenv.AgentNamespace,
		kubectl, env.State.Kubeconfigs["management"], kubectl, env.State.Kubeconfigs["dev"], env.State.Kubeconfigs["management"])
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// applyManifests creates (or updates) every object of the YAML files in fsys.
func applyManifests(ctx context.Context, c client.Client, fsys fs.FS) (int, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return n, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return n, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, u); err != nil {
				existing := &unstructured.Unstructured{}
				existing.SetGroupVersionKind(u.GroupVersionKind())
				if getErr := c.Get(ctx, client.ObjectKeyFromObject(u), existing); getErr != nil {
					return n, fmt.Errorf("%s: creating %s %s: %w", f, u.GetKind(), u.GetName(), err)
				}
				u.SetResourceVersion(existing.GetResourceVersion())
				if err := c.Update(ctx, u); err != nil {
					return n, fmt.Errorf("%s: updating %s %s: %w", f, u.GetKind(), u.GetName(), err)
				}
			}
			n++
		}
	}
	return n, nil
}
