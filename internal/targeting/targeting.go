// Package targeting decides which clusters a Bundle deploys to and with which options. It is
// pure: it takes a Bundle, the Clusters and the ClusterGroups of the Bundle's namespace and
// returns placements; it never talks to an API server.
//
// The semantics are Fleet's:
//   - a target matches a cluster when every criterion it sets matches (clusterName,
//     clusterSelector, clusterGroup, clusterGroupSelector); a target that sets none matches nothing;
//   - clusterSelector: {} matches every cluster;
//   - the group criteria are met by one group the cluster belongs to: that group must have the
//     name clusterGroup (when set) and labels matching clusterGroupSelector (when set);
//   - the first matching target wins; when it says doNotDeploy the cluster is excluded;
//   - the matching target's options override the Bundle's: helm values are deep-merged, other
//     fields replace the Bundle's when set.
package targeting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/helmops/helmops/api/v1alpha1"
)

// Placement is one targeted cluster: the target that matched it and the options it runs.
type Placement struct {
	// Cluster is the matched cluster.
	Cluster *v1alpha1.Cluster
	// TargetName is the name of the matching target (target000, … when unnamed).
	TargetName string
	// Options are the Bundle's options merged with the matching target's.
	Options v1alpha1.BundleDeploymentOptions
}

// InvalidTargetError is a target that cannot be evaluated, such as a malformed label selector.
type InvalidTargetError struct {
	// Index is the target's position in spec.targets.
	Index int
	// Name is the target's name, possibly defaulted.
	Name string
	// Field is the offending field, e.g. "clusterSelector".
	Field string
	// Err says what is wrong.
	Err error
}

func (e *InvalidTargetError) Error() string {
	return fmt.Sprintf("spec.targets[%d] (%s): invalid %s: %v", e.Index, e.Name, e.Field, e.Err)
}

func (e *InvalidTargetError) Unwrap() error { return e.Err }

// TargetName is the name of the target at index i: its own, or target000, target001, ….
func TargetName(t v1alpha1.BundleTarget, i int) string {
	if t.Name != "" {
		return t.Name
	}
	return fmt.Sprintf("target%03d", i)
}

// matcher is a target with its selectors parsed once.
type matcher struct {
	name          string
	target        v1alpha1.BundleTarget
	clusterSel    labels.Selector // nil when the target sets no clusterSelector
	groupSel      labels.Selector // nil when the target sets no clusterGroupSelector
	hasCriterion  bool
	groupCriteria bool
}

// group is a ClusterGroup with its selector parsed; sel is nil when the group selects nothing.
type group struct {
	name   string
	labels map[string]string
	sel    labels.Selector
}

// Matcher evaluates a Bundle's targets against clusters.
type Matcher struct {
	targets []matcher
	groups  []group
}

// NewMatcher parses the targets and the groups. It fails only on a malformed target selector;
// a group with a malformed selector selects no cluster (GroupSelector reports why).
func NewMatcher(targets []v1alpha1.BundleTarget, groups []v1alpha1.ClusterGroup) (*Matcher, error) {
	m := &Matcher{}
	for i, t := range targets {
		mt := matcher{name: TargetName(t, i), target: t}
		if t.ClusterSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(t.ClusterSelector)
			if err != nil {
				return nil, &InvalidTargetError{Index: i, Name: mt.name, Field: "clusterSelector", Err: err}
			}
			mt.clusterSel = sel
		}
		if t.ClusterGroupSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(t.ClusterGroupSelector)
			if err != nil {
				return nil, &InvalidTargetError{Index: i, Name: mt.name, Field: "clusterGroupSelector", Err: err}
			}
			mt.groupSel = sel
		}
		mt.groupCriteria = t.ClusterGroup != "" || t.ClusterGroupSelector != nil
		mt.hasCriterion = t.ClusterName != "" || t.ClusterSelector != nil || mt.groupCriteria
		m.targets = append(m.targets, mt)
	}
	for i := range groups {
		g := &groups[i]
		sel, _ := GroupSelector(g)
		m.groups = append(m.groups, group{name: g.Name, labels: g.Labels, sel: sel})
	}
	return m, nil
}

// GroupSelector parses a ClusterGroup's selector: nil (no error) when the group has none, so it
// selects no cluster; {} selects every cluster.
func GroupSelector(g *v1alpha1.ClusterGroup) (labels.Selector, error) {
	if g.Spec.Selector == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(g.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("ClusterGroup %s/%s: invalid spec.selector: %w", g.Namespace, g.Name, err)
	}
	return sel, nil
}

// InGroup reports whether the group selects the cluster.
func InGroup(g *v1alpha1.ClusterGroup, c *v1alpha1.Cluster) bool {
	sel, err := GroupSelector(g)
	if err != nil || sel == nil {
		return false
	}
	return sel.Matches(labels.Set(c.Labels))
}

// Match returns the index of the first target matching the cluster, or -1.
func (m *Matcher) Match(c *v1alpha1.Cluster) int {
	set := labels.Set(c.Labels)
	for i := range m.targets {
		if m.targets[i].matches(c.Name, set, m.groups) {
			return i
		}
	}
	return -1
}

func (t *matcher) matches(clusterName string, clusterLabels labels.Set, groups []group) bool {
	if !t.hasCriterion {
		return false
	}
	if t.target.ClusterName != "" && t.target.ClusterName != clusterName {
		return false
	}
	if t.clusterSel != nil && !t.clusterSel.Matches(clusterLabels) {
		return false
	}
	if !t.groupCriteria {
		return true
	}
	for _, g := range groups {
		if g.sel == nil || !g.sel.Matches(clusterLabels) {
			continue
		}
		if t.target.ClusterGroup != "" && t.target.ClusterGroup != g.name {
			continue
		}
		if t.groupSel != nil && !t.groupSel.Matches(labels.Set(g.labels)) {
			continue
		}
		return true
	}
	return false
}

// Place returns one placement per cluster the Bundle deploys to, sorted by cluster name. Clusters
// matched first by a doNotDeploy target, and clusters no target matches, get none.
func Place(bundle *v1alpha1.Bundle, clusters []v1alpha1.Cluster, groups []v1alpha1.ClusterGroup) ([]Placement, error) {
	m, err := NewMatcher(bundle.Spec.Targets, groups)
	if err != nil {
		return nil, err
	}
	var out []Placement
	for i := range clusters {
		c := &clusters[i]
		idx := m.Match(c)
		if idx < 0 || m.targets[idx].target.DoNotDeploy {
			continue
		}
		t := m.targets[idx].target
		out = append(out, Placement{
			Cluster:    c,
			TargetName: m.targets[idx].name,
			Options:    MergeOptions(bundle.Spec.BundleDeploymentOptions, t),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster.Name < out[j].Cluster.Name })
	return out, nil
}

// MergeOptions returns the Bundle's options with the target's overrides applied. Helm values are
// deep-merged (the target's win; maps merge, anything else is replaced); namespace,
// defaultNamespace and every helm field the target sets replace the Bundle's. The result shares
// no memory with its inputs.
func MergeOptions(base v1alpha1.BundleDeploymentOptions, t v1alpha1.BundleTarget) v1alpha1.BundleDeploymentOptions {
	out := *base.DeepCopy()
	if t.Namespace != "" {
		out.Namespace = t.Namespace
	}
	if t.DefaultNamespace != "" {
		out.DefaultNamespace = t.DefaultNamespace
	}
	if t.Helm == nil {
		return out
	}
	o := t.Helm.DeepCopy()
	if out.Helm == nil {
		out.Helm = &v1alpha1.HelmOptions{}
	}
	h := out.Helm
	if o.Repo != "" {
		h.Repo = o.Repo
	}
	if o.Chart != "" {
		h.Chart = o.Chart
	}
	if o.Version != "" {
		h.Version = o.Version
	}
	if o.ReleaseName != "" {
		h.ReleaseName = o.ReleaseName
	}
	if o.Values != nil && o.Values.Data != nil {
		var baseValues map[string]any
		if h.Values != nil {
			baseValues = h.Values.Data
		}
		h.Values = &v1alpha1.GenericMap{Data: MergeValues(baseValues, o.Values.Data)}
	}
	if len(o.ValuesFrom) > 0 {
		h.ValuesFrom = o.ValuesFrom
	}
	if o.TimeoutSeconds != 0 {
		h.TimeoutSeconds = o.TimeoutSeconds
	}
	if o.MaxHistory != 0 {
		h.MaxHistory = o.MaxHistory
	}
	h.Force = h.Force || o.Force
	h.TakeOwnership = h.TakeOwnership || o.TakeOwnership
	h.WaitForJobs = h.WaitForJobs || o.WaitForJobs
	h.Atomic = h.Atomic || o.Atomic
	h.SkipSchemaValidation = h.SkipSchemaValidation || o.SkipSchemaValidation
	h.DisableDependencyUpdate = h.DisableDependencyUpdate || o.DisableDependencyUpdate
	return out
}

// MergeValues deep-merges override into base and returns a new map: where both hold a map the
// maps are merged, otherwise the override's value replaces the base's (lists included). Neither
// input is modified.
func MergeValues(base, override map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(override))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		bm, baseIsMap := out[k].(map[string]any)
		om, overIsMap := v.(map[string]any)
		if baseIsMap && overIsMap {
			out[k] = MergeValues(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

// deploymentInputs is everything that must cause a redeploy when it changes. Options the agent
// reads at other times (correctDrift, keepResources, deleteNamespace) and paused are left out, so
// toggling them does not upgrade the release.
type deploymentInputs struct {
	Repo                    string                      `json:"repo"`
	Chart                   string                      `json:"chart"`
	Version                 string                      `json:"version"`
	ReleaseName             string                      `json:"releaseName"`
	Values                  map[string]any              `json:"values"`
	ValuesFrom              []v1alpha1.ValuesFrom       `json:"valuesFrom"`
	TimeoutSeconds          int                         `json:"timeoutSeconds"`
	Force                   bool                        `json:"force"`
	TakeOwnership           bool                        `json:"takeOwnership"`
	MaxHistory              int                         `json:"maxHistory"`
	WaitForJobs             bool                        `json:"waitForJobs"`
	Atomic                  bool                        `json:"atomic"`
	SkipSchemaValidation    bool                        `json:"skipSchemaValidation"`
	DisableDependencyUpdate bool                        `json:"disableDependencyUpdate"`
	Namespace               string                      `json:"namespace"`
	DefaultNamespace        string                      `json:"defaultNamespace"`
	ServiceAccount          string                      `json:"serviceAccount"`
	CreateNamespace         bool                        `json:"createNamespace"`
	HelmChartOptions        *v1alpha1.BundleHelmOptions `json:"helmChartOptions"`
}

// DeploymentID is a stable hash of the merged options and the chart access options: the same
// inputs always give the same ID (map order does not matter), and any change to the chart, the
// exact version, the values, the namespaces, the release name or a Helm flag gives a new one.
func DeploymentID(opts v1alpha1.BundleDeploymentOptions, chartOpts *v1alpha1.BundleHelmOptions) string {
	h := opts.HelmOrEmpty()
	in := deploymentInputs{
		Repo: h.Repo, Chart: h.Chart, Version: h.Version, ReleaseName: h.ReleaseName,
		ValuesFrom: h.ValuesFrom, TimeoutSeconds: h.TimeoutSeconds, Force: h.Force,
		TakeOwnership: h.TakeOwnership, MaxHistory: h.MaxHistory, WaitForJobs: h.WaitForJobs,
		Atomic: h.Atomic, SkipSchemaValidation: h.SkipSchemaValidation,
		DisableDependencyUpdate: h.DisableDependencyUpdate,
		Namespace:               opts.Namespace, DefaultNamespace: opts.DefaultNamespace,
		ServiceAccount: opts.ServiceAccount, CreateNamespace: opts.CreatesNamespace(),
		HelmChartOptions: chartOpts,
	}
	if h.Values != nil {
		in.Values = h.Values.Data
	}
	// encoding/json writes map keys sorted, so the encoding is canonical.
	b, err := json.Marshal(in)
	if err != nil {
		// Values come from JSON, so they always encode; fall back to something stable anyway.
		b = []byte(fmt.Sprintf("%#v", in))
	}
	sum := sha256.Sum256(b)
	return "s-" + hex.EncodeToString(sum[:])
}
