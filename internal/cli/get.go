package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/scheme"
)

type getOptions struct {
	kubeconfig    string
	namespace     string
	allNamespaces bool
	output        string
}

func newGetCommand() *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show HelmOps and how they are deployed",
	}
	cmd.PersistentFlags().StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the management cluster (default $KUBECONFIG or ~/.kube/config)")
	cmd.PersistentFlags().StringVarP(&o.namespace, "namespace", "n", "fleet-local", "namespace of the HelmOps")
	cmd.PersistentFlags().StringVarP(&o.output, "output", "o", "", "output format: table (default), yaml or json")

	list := &cobra.Command{
		Use:     "helmops",
		Aliases: []string{"helmop-list"},
		Short:   "List HelmOps: chart, constraint and resolved version, clusters ready, last poll, status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := kubeClient(o.kubeconfig)
			if err != nil {
				return err
			}
			return o.list(cmd.Context(), c, cmd.OutOrStdout(), time.Now())
		},
	}
	list.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list HelmOps of every namespace")

	one := &cobra.Command{
		Use:   "helmop NAME",
		Short: "Show one HelmOp as a tree: HelmOp, its Bundle, and each cluster's BundleDeployment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := kubeClient(o.kubeconfig)
			if err != nil {
				return err
			}
			return o.tree(cmd.Context(), c, cmd.OutOrStdout(), args[0])
		},
	}
	cmd.AddCommand(list, one)
	return cmd
}

func (o *getOptions) list(ctx context.Context, c client.Reader, w io.Writer, now time.Time) error {
	ops := &v1alpha1.HelmOpList{}
	var opts []client.ListOption
	if !o.allNamespaces {
		opts = append(opts, client.InNamespace(o.namespace))
	}
	if err := c.List(ctx, ops, opts...); err != nil {
		return fmt.Errorf("listing HelmOps: %w", err)
	}
	sort.Slice(ops.Items, func(i, j int) bool {
		a, b := ops.Items[i], ops.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	if o.output != "" && o.output != "table" {
		for i := range ops.Items {
			clean(&ops.Items[i])
		}
		ops.APIVersion, ops.Kind = "v1", "List"
		return printObject(w, o.output, ops)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "NAME\tCHART\tVERSION\tNEWER\tCLUSTERS READY\tLAST POLL\tSTATUS"
	if o.allNamespaces {
		header = "NAMESPACE\t" + header
	}
	fmt.Fprintln(tw, header)
	for i := range ops.Items {
		h := &ops.Items[i]
		row := []string{h.Name, chartOf(h), versionOf(h), newerOf(h), fmt.Sprintf("%d/%d", h.Status.ReadyClusters, h.Status.DesiredReadyClusters),
			lastPoll(h, now), statusOf(h)}
		if o.allNamespaces {
			row = append([]string{h.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func (o *getOptions) tree(ctx context.Context, c client.Reader, w io.Writer, name string) error {
	t, err := o.readTree(ctx, c, name)
	if err != nil {
		return err
	}
	if o.output != "" && o.output != "table" {
		return printObject(w, o.output, t.list())
	}
	t.print(w)
	return nil
}

// helmOpTree is a HelmOp, its Bundle (or why there is none) and its BundleDeployments, sorted by
// cluster.
type helmOpTree struct {
	op        *v1alpha1.HelmOp
	bundle    *v1alpha1.Bundle
	bundleErr error
	bds       []v1alpha1.BundleDeployment
}

func (o *getOptions) readTree(ctx context.Context, c client.Reader, name string) (*helmOpTree, error) {
	t := &helmOpTree{op: &v1alpha1.HelmOp{}, bundle: &v1alpha1.Bundle{}}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: name}, t.op); err != nil {
		return nil, fmt.Errorf("getting HelmOp %s/%s: %w", o.namespace, name, err)
	}
	t.bundleErr = c.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: name}, t.bundle)
	bds := &v1alpha1.BundleDeploymentList{}
	if err := c.List(ctx, bds, client.MatchingLabels{
		v1alpha1.BundleNameLabel: name, v1alpha1.BundleNamespaceLabel: o.namespace,
	}); err != nil {
		return nil, fmt.Errorf("listing BundleDeployments of %s/%s: %w", o.namespace, name, err)
	}
	sort.Slice(bds.Items, func(i, j int) bool {
		return bds.Items[i].Labels[v1alpha1.ClusterLabel] < bds.Items[j].Labels[v1alpha1.ClusterLabel]
	})
	t.bds = bds.Items
	return t, nil
}

// list is the tree as a v1 List of its objects, for -o yaml and -o json.
func (t *helmOpTree) list() map[string]any {
	items := []any{clean(t.op)}
	if t.bundleErr == nil {
		items = append(items, clean(t.bundle))
	}
	for i := range t.bds {
		items = append(items, clean(&t.bds[i]))
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
}

// print draws the tree: the HelmOp and its conditions, the Bundle and its rollout, a line per
// cluster.
func (t *helmOpTree) print(w io.Writer) {
	h := t.op
	fmt.Fprintf(w, "HelmOp %s/%s  %s  %s  %s\n", h.Namespace, h.Name, chartOf(h), versionOf(h), statusOf(h))
	for _, ct := range []string{v1alpha1.AcceptedCondition, v1alpha1.PolledCondition, v1alpha1.ReadyCondition} {
		if cond := meta.FindStatusCondition(h.Status.Conditions, ct); cond != nil {
			fmt.Fprintf(w, "│   %s=%s %s\n", cond.Type, cond.Status, oneLine(cond.Message))
		}
	}
	if t.bundleErr != nil {
		fmt.Fprintf(w, "└── Bundle: none (%s)\n", oneLine(t.bundleErr.Error()))
		return
	}
	fmt.Fprintf(w, "└── Bundle %s/%s  version %s  ready %s\n", t.bundle.Namespace, t.bundle.Name,
		t.bundle.Spec.HelmOrEmpty().Version, orDash(t.bundle.Status.Display.ReadyBundleDeployments))
	writeRollout(w, t.bundle)
	if len(t.bds) == 0 {
		fmt.Fprintln(w, "    └── no BundleDeployments: no cluster is targeted yet")
	}
	for i := range t.bds {
		bd := &t.bds[i]
		branch := "├──"
		if i == len(t.bds)-1 {
			branch = "└──"
		}
		fmt.Fprintf(w, "    %s cluster %s  %s\n", branch, orDash(bd.Labels[v1alpha1.ClusterLabel]), deploymentState(bd))
	}
}

func deploymentState(bd *v1alpha1.BundleDeployment) string {
	rel := "release: not installed"
	if r := bd.Status.Release; r != nil {
		rel = fmt.Sprintf("release %s/%s rev %d chart %s %s", r.Namespace, r.Name, r.Revision, r.ChartVersion, r.Status)
	}
	st, msg := deploystate.Of(bd)
	state := string(st)
	if msg != "" {
		state += " (" + messageSource(bd, msg) + oneLine(msg) + ")"
	}
	if len(bd.Status.ModifiedStatus) > 0 {
		state += fmt.Sprintf(" modified:%d", len(bd.Status.ModifiedStatus))
	}
	return rel + "  " + state
}

// messageSource names the condition a state's message comes from ("Ready: "), if any.
func messageSource(bd *v1alpha1.BundleDeployment, msg string) string {
	for _, t := range []string{v1alpha1.DeployedCondition, v1alpha1.ReadyCondition, v1alpha1.MonitoredCondition} {
		if c := meta.FindStatusCondition(bd.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue && c.Message == msg {
			return t + ": "
		}
	}
	return ""
}

func chartOf(h *v1alpha1.HelmOp) string {
	helm := h.Spec.HelmOrEmpty()
	switch {
	case helm.Chart == "":
		return helm.Repo
	case helm.Repo == "":
		return helm.Chart
	default:
		return strings.TrimSuffix(helm.Repo, "/") + "/" + helm.Chart
	}
}

func versionOf(h *v1alpha1.HelmOp) string {
	constraint := h.Spec.HelmOrEmpty().Version
	if constraint == "" {
		constraint = "*"
	}
	resolved := orDash(h.Status.Version)
	if constraint == resolved {
		return resolved
	}
	return constraint + " → " + resolved
}

// newerOf is the newest stable version of the repository when the constraint keeps it out.
func newerOf(h *v1alpha1.HelmOp) string {
	if !meta.IsStatusConditionTrue(h.Status.Conditions, v1alpha1.NewerVersionAvailableCondition) {
		return "-"
	}
	return orDash(h.Status.LatestAvailableVersion)
}

func lastPoll(h *v1alpha1.HelmOp, now time.Time) string {
	if h.Status.LastPollingTime == nil {
		return "-"
	}
	return shortDuration(now.Sub(h.Status.LastPollingTime.Time)) + " ago"
}

func statusOf(h *v1alpha1.HelmOp) string {
	for _, t := range []string{v1alpha1.AcceptedCondition, v1alpha1.ReadyCondition} {
		c := meta.FindStatusCondition(h.Status.Conditions, t)
		if c == nil {
			return "Pending"
		}
		if c.Status != metav1.ConditionTrue {
			return c.Reason + ": " + oneLine(c.Message)
		}
	}
	return "Ready"
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clean drops managed fields and sets apiVersion and kind, which typed reads leave empty.
func clean(obj client.Object) client.Object {
	obj.SetManagedFields(nil)
	if gvk, err := apiutil.GVKForObject(obj, scheme.New()); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	return obj
}

func printObject(w io.Writer, format string, obj any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(obj)
	case "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	default:
		return fmt.Errorf("--output %q is not supported: use table, yaml or json", format)
	}
}

// writeRollout shows the rollout under the Bundle: what it waits for, then each partition.
func writeRollout(w io.Writer, b *v1alpha1.Bundle) {
	if c := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ReadyCondition); c != nil &&
		(c.Reason == v1alpha1.ReasonRollingOut || c.Reason == v1alpha1.ReasonRolloutHalted) {
		fmt.Fprintf(w, "    │   %s: %s\n", c.Reason, oneLine(b.Status.Display.Message))
	}
	if len(b.Status.PartitionStatus) < 2 {
		return
	}
	for _, p := range b.Status.PartitionStatus {
		state := "done"
		if p.Unavailable > 0 {
			state = fmt.Sprintf("%d/%d not ready with the current deployment, %d allowed", p.Unavailable, p.Count, p.MaxUnavailable)
		}
		fmt.Fprintf(w, "    │   partition %s (%d clusters): %s\n", p.Name, p.Count, state)
	}
}
