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
//   - clusterName also matches a cluster whose label management.cattle.io/cluster-display-name
//     has that value;
//   - targetCustomizationMode FirstMatch (the default): the first matching target wins, and when
//     it says doNotDeploy the cluster is excluded; AllMatches: the options of every matching
//     target are merged in order, and the cluster is excluded when any of them says doNotDeploy;
//   - when targetRestrictions are set, a cluster must also match one of them;
//   - the matching targets' options override the Bundle's (see MergeOptions), then the values
//     are computed for the cluster (package valuestemplate).
package targeting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/valuestemplate"
)

// DisplayNameLabel holds the name a cluster is shown under; clusterName matches it too.
const DisplayNameLabel = "management.cattle.io/cluster-display-name"

// Placement is one targeted cluster: the target that matched it and the options it runs.
type Placement struct {
	// Cluster is the matched cluster.
	Cluster *v1alpha1.Cluster
	// TargetName is the name of the matching target (target000, … when unnamed).
	TargetName string
	// Options are the Bundle's options merged with the matching targets', with the values
	// computed for the cluster.
	Options v1alpha1.BundleDeploymentOptions
	// Err is set when the options cannot be computed for this cluster (a values template
	// fails); Options are then unusable and the cluster's deployment must be left as it is.
	Err error
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

// MatchAll returns the indexes of every target matching the cluster, in order.
func (m *Matcher) MatchAll(c *v1alpha1.Cluster) []int {
	set := labels.Set(c.Labels)
	var out []int
	for i := range m.targets {
		if m.targets[i].matches(c.Name, set, m.groups) {
			out = append(out, i)
		}
	}
	return out
}

func (t *matcher) matches(clusterName string, clusterLabels labels.Set, groups []group) bool {
	if !t.hasCriterion {
		return false
	}
	if t.target.ClusterName != "" && t.target.ClusterName != clusterName && t.target.ClusterName != clusterLabels[DisplayNameLabel] {
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

// InvalidModeError is a targetCustomizationMode that is neither FirstMatch nor AllMatches.
type InvalidModeError struct{ Mode string }

func (e *InvalidModeError) Error() string {
	return fmt.Sprintf("spec.targetCustomizationMode: unknown mode %q: use FirstMatch (the default) or AllMatches", e.Mode)
}

// Place returns one placement per cluster the Bundle deploys to, sorted by cluster name.
// Clusters excluded by doNotDeploy or by targetRestrictions, and clusters no target matches, get
// none. A cluster whose values cannot be computed gets a placement with Err set.
func Place(bundle *v1alpha1.Bundle, clusters []v1alpha1.Cluster, groups []v1alpha1.ClusterGroup) ([]Placement, error) {
	mode := bundle.Spec.TargetCustomizationMode
	if mode != "" && mode != v1alpha1.FirstMatch && mode != v1alpha1.AllMatches {
		return nil, &InvalidModeError{Mode: string(mode)}
	}
	m, err := NewMatcher(bundle.Spec.Targets, groups)
	if err != nil {
		return nil, err
	}
	restrictions, err := NewMatcher(restrictionTargets(bundle.Spec.TargetRestrictions), groups)
	if err != nil {
		var it *InvalidTargetError
		if errors.As(err, &it) {
			return nil, fmt.Errorf("spec.targetRestrictions[%d]: invalid %s: %w", it.Index, it.Field, it.Err)
		}
		return nil, err
	}
	var out []Placement
	for i := range clusters {
		c := &clusters[i]
		matched := matches(m, mode, c)
		if len(matched) == 0 || len(bundle.Spec.TargetRestrictions) > 0 && restrictions.Match(c) < 0 {
			continue
		}
		if p, ok := place(bundle, m, matched, c); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster.Name < out[j].Cluster.Name })
	return out, nil
}

// matches are the indexes of the targets that apply to c: every matching one in AllMatches
// mode, else the first.
func matches(m *Matcher, mode v1alpha1.TargetCustomizationMode, c *v1alpha1.Cluster) []int {
	if mode == v1alpha1.AllMatches {
		return m.MatchAll(c)
	}
	if idx := m.Match(c); idx >= 0 {
		return []int{idx}
	}
	return nil
}

// place merges the matched targets' options over the Bundle's and processes the values
// templates for c; ok is false when one of the targets says doNotDeploy.
func place(bundle *v1alpha1.Bundle, m *Matcher, matched []int, c *v1alpha1.Cluster) (_ Placement, ok bool) {
	opts := bundle.Spec.BundleDeploymentOptions
	excluded := false
	for _, idx := range matched {
		excluded = excluded || m.targets[idx].target.DoNotDeploy
		opts = MergeOptions(opts, m.targets[idx].target)
	}
	if excluded {
		return Placement{}, false
	}
	p := Placement{Cluster: c, TargetName: m.targets[matched[0]].name, Options: opts}
	if h, err := valuestemplate.Process(opts.Helm, c); err != nil {
		p.Err = err
	} else {
		p.Options.Helm = h
	}
	return p, true
}

func restrictionTargets(rs []v1alpha1.BundleTargetRestriction) []v1alpha1.BundleTarget {
	out := make([]v1alpha1.BundleTarget, 0, len(rs))
	for _, r := range rs {
		out = append(out, v1alpha1.BundleTarget{Name: r.Name, ClusterName: r.ClusterName, ClusterSelector: r.ClusterSelector,
			ClusterGroup: r.ClusterGroup, ClusterGroupSelector: r.ClusterGroupSelector})
	}
	return out
}

// MergeOptions returns the options with the target's overrides applied, as Fleet merges them:
//   - namespace, defaultNamespace, serviceAccount, createNamespace, correctDrift and every helm
//     field the target sets replace the base's (forceSyncGeneration when above 0);
//   - helm values are deep-merged (the target's win; maps merge, anything else is replaced);
//     templateValues, namespaceLabels and namespaceAnnotations are merged key by key;
//   - helm.valuesFrom, diff.comparePatches, ignore.conditions and downstreamResources are
//     appended, leaving out entries the base already has;
//   - the booleans (keepResources, deleteNamespace, deleteCRDResources and the helm flags) are
//     true when either says so.
//
// The result shares no memory with its inputs.
func MergeOptions(base v1alpha1.BundleDeploymentOptions, t v1alpha1.BundleTarget) v1alpha1.BundleDeploymentOptions {
	out := *base.DeepCopy()
	t = *t.DeepCopy()
	override(&out.Namespace, t.Namespace)
	override(&out.DefaultNamespace, t.DefaultNamespace)
	override(&out.ServiceAccount, t.ServiceAccount)
	override(&out.CreateNamespace, t.CreateNamespace)
	override(&out.CorrectDrift, t.CorrectDrift)
	if t.ForceSyncGeneration > 0 {
		out.ForceSyncGeneration = t.ForceSyncGeneration
	}
	out.KeepResources = out.KeepResources || t.KeepResources
	out.DeleteNamespace = out.DeleteNamespace || t.DeleteNamespace
	out.DeleteCRDResources = out.DeleteCRDResources || t.DeleteCRDResources
	out.NamespaceLabels = mergeStrings(out.NamespaceLabels, t.NamespaceLabels)
	out.NamespaceAnnotations = mergeStrings(out.NamespaceAnnotations, t.NamespaceAnnotations)
	if t.Diff != nil {
		if out.Diff == nil {
			out.Diff = &v1alpha1.DiffOptions{}
		}
		out.Diff.ComparePatches = appendUnique(out.Diff.ComparePatches, t.Diff.ComparePatches)
	}
	if t.Ignore != nil {
		if out.Ignore == nil {
			out.Ignore = &v1alpha1.IgnoreOptions{}
		}
		out.Ignore.Conditions = appendUnique(out.Ignore.Conditions, t.Ignore.Conditions)
	}
	out.DownstreamResources = appendUnique(out.DownstreamResources, t.DownstreamResources)
	if t.Helm != nil {
		if out.Helm == nil {
			out.Helm = &v1alpha1.HelmOptions{}
		}
		mergeHelm(out.Helm, t.Helm)
	}
	return out
}

// mergeHelm merges a target's helm block o into h, as MergeOptions describes.
func mergeHelm(h, o *v1alpha1.HelmOptions) {
	override(&h.Repo, o.Repo)
	override(&h.Chart, o.Chart)
	override(&h.Version, o.Version)
	override(&h.ReleaseName, o.ReleaseName)
	if o.Values != nil && o.Values.Data != nil {
		var baseValues map[string]any
		if h.Values != nil {
			baseValues = h.Values.Data
		}
		h.Values = &v1alpha1.GenericMap{Data: MergeValues(baseValues, o.Values.Data)}
	}
	h.TemplateValues = mergeStrings(h.TemplateValues, o.TemplateValues)
	h.ValuesFrom = appendUnique(h.ValuesFrom, o.ValuesFrom)
	override(&h.TimeoutSeconds, o.TimeoutSeconds)
	override(&h.MaxHistory, o.MaxHistory)
	h.Force = h.Force || o.Force
	h.TakeOwnership = h.TakeOwnership || o.TakeOwnership
	h.WaitForJobs = h.WaitForJobs || o.WaitForJobs
	h.Atomic = h.Atomic || o.Atomic
	h.SkipSchemaValidation = h.SkipSchemaValidation || o.SkipSchemaValidation
	h.DisableDependencyUpdate = h.DisableDependencyUpdate || o.DisableDependencyUpdate
	h.DisablePreProcess = h.DisablePreProcess || o.DisablePreProcess
	h.DisableDNS = h.DisableDNS || o.DisableDNS
}

// override sets *dst to v unless v is the zero value (an empty string, 0, nil).
func override[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

func mergeStrings(base, override map[string]string) map[string]string {
	if len(override) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(override))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		out[k] = v
	}
	return out
}

// appendUnique appends the entries of more that base does not hold already.
func appendUnique[T any](base, more []T) []T {
	for _, m := range more {
		found := false
		for _, b := range base {
			if equality.Semantic.DeepEqual(b, m) {
				found = true
				break
			}
		}
		if !found {
			base = append(base, m)
		}
	}
	return base
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

// deploymentInputs is everything that must cause a redeploy when it changes; raising
// forceSyncGeneration is how a user asks for one. Options the agent reads at other times
// (correctDrift, diff, keepResources, deleteNamespace, deleteCRDResources, downstreamResources)
// and paused are left out, so toggling them does not upgrade the release. Values are the ones
// computed for the cluster, so a change of a cluster label a template reads redeploys there.
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
	// Added later: omitted when empty, so deployments that do not use them keep their ID.
	DisableDNS           bool                    `json:"disableDNS,omitempty"`
	ForceSyncGeneration  int64                   `json:"forceSyncGeneration,omitempty"`
	NamespaceLabels      map[string]string       `json:"namespaceLabels,omitempty"`
	NamespaceAnnotations map[string]string       `json:"namespaceAnnotations,omitempty"`
	Ignore               *v1alpha1.IgnoreOptions `json:"ignore,omitempty"`
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
		DisableDNS:       h.DisableDNS, ForceSyncGeneration: opts.ForceSyncGeneration,
		NamespaceLabels: opts.NamespaceLabels, NamespaceAnnotations: opts.NamespaceAnnotations, Ignore: opts.Ignore,
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
