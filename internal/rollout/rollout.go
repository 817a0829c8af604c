// Package rollout decides which targeted clusters receive a Bundle's new deployment now. It is
// pure: it takes the targets with the state of their BundleDeployments, the desired deployment
// IDs and the rollout strategy, and returns a plan; it never talks to an API server.
//
// The semantics are Fleet's rolloutStrategy:
//   - Targets are split into partitions. With spec.partitions, each partition takes the targets
//     its criteria match (every criterion it sets must match; a partition setting none matches
//     nothing); a target matched by no partition is left out of the rollout and neither created
//     nor updated. A target matched by several partitions belongs to the first (Fleet counts it
//     in each; helmops never deploys one cluster twice). Without partitions, targets below
//     autoPartitionThreshold (default 200) form one partition "All"; from the threshold on they
//     are cut, in cluster order, into partitions of autoPartitionSize (default 25%) named
//     "Partition <from> - <to>". An autoPartitionSize of 0 or less, or a threshold of 0 or less,
//     gives one partition.
//   - A target is unavailable while its applied deployment ID differs from its spec's or it is
//     not ready. A partition counts its targets that are unavailable or not yet on their desired
//     ID, and is unavailable when that count exceeds its maxUnavailable (the partition's, else
//     the strategy's, default 100% of the partition).
//   - Partitions are processed in order. In each, up to maxNew (default 50) missing
//     BundleDeployments are created in total, and targets not on their desired ID are moved to
//     it while fewer targets than maxUnavailable are unavailable, over the whole Bundle and in the
//     partition; moving an available target makes it unavailable, and a target that is already
//     unavailable may always move. After a partition, processing stops when more partitions are
//     unavailable than maxUnavailablePartitions (default 0): the next partition starts only when
//     the ones before it are within their maxUnavailable.
//   - Percentages round down, and a percentage giving less than one means one (as in Fleet).
//
// Beyond Fleet, a rollout halts on failure: when a target that was given its desired deployment
// ID fails with it (its agent reports the apply failed, or it is not available within
// progressDeadline of being given the ID), no further target is created or moved, so the
// clusters not yet reached keep the version they run. The halt lifts by itself when the failures
// clear, and a new desired ID starts a new rollout (failures with an older ID do not halt it).
//
// Paused targets are outside the rollout: their spec follows the desired one (the agent applies
// nothing while paused) and they count neither as unavailable nor as failed.
package rollout

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Defaults, as in Fleet, plus the progress deadline.
const (
	DefaultAutoPartitionThreshold = 200
	DefaultMaxNew                 = 50
	// DefaultProgressDeadline is how long a cluster given a new deployment ID may take to be
	// available before the rollout halts.
	DefaultProgressDeadline = 10 * time.Minute
)

var (
	defaultMaxUnavailable           = intstr.FromString("100%")
	defaultAutoPartitionSize        = intstr.FromString("25%")
	defaultMaxUnavailablePartitions = intstr.FromInt32(0)
)

// Strategy is a rollout strategy, field for field Fleet's rolloutStrategy plus ProgressDeadline.
type Strategy struct {
	MaxUnavailable           *intstr.IntOrString
	MaxUnavailablePartitions *intstr.IntOrString
	AutoPartitionSize        *intstr.IntOrString
	AutoPartitionThreshold   *int
	MaxNew                   *int
	Partitions               []PartitionSpec
	// ProgressDeadline is how long a target may take to be available with its desired ID
	// before the rollout halts: 0 means DefaultProgressDeadline, a negative value no deadline
	// (only failed applies halt).
	ProgressDeadline time.Duration
}

// PartitionSpec is one entry of rolloutStrategy.partitions.
type PartitionSpec struct {
	Name                 string
	MaxUnavailable       *intstr.IntOrString
	ClusterName          string
	ClusterSelector      *metav1.LabelSelector
	ClusterGroup         string
	ClusterGroupSelector *metav1.LabelSelector
}

// Group is a ClusterGroup a target's cluster belongs to.
type Group struct {
	Name   string
	Labels map[string]string
}

// Target is one targeted cluster.
type Target struct {
	// Cluster is the cluster's name.
	Cluster string
	// Labels are the cluster's labels.
	Labels map[string]string
	// Groups are the ClusterGroups that select the cluster.
	Groups []Group
	// DesiredID is the deployment ID the cluster should run.
	DesiredID string
	// Version is the chart version of DesiredID, for messages.
	Version string
	// Paused targets are outside the rollout (see the package comment).
	Paused bool
	// Blocked targets wait for something else (dependencies): they are neither created nor
	// moved, and count as not yet on their desired ID.
	Blocked bool
	// Deployment is the cluster's BundleDeployment, nil when there is none yet.
	Deployment *Deployment
}

// Deployment is what the rollout needs of a BundleDeployment.
type Deployment struct {
	// DeploymentID is the spec's deployment ID.
	DeploymentID string
	// AppliedDeploymentID is the last ID the agent deployed.
	AppliedDeploymentID string
	// Ready is the agent's status.ready.
	Ready bool
	// Failed is true when the agent reports that applying DeploymentID failed.
	Failed bool
	// Message says why it failed.
	Message string
	// Since is when the spec was given DeploymentID.
	Since time.Time
}

func (d *Deployment) unavailable() bool {
	return d != nil && (d.AppliedDeploymentID != d.DeploymentID || !d.Ready)
}

// Action is what to do with one target's BundleDeployment.
type Action int

const (
	// Hold keeps the BundleDeployment's spec as it is, or does not create a missing one.
	Hold Action = iota
	// Create creates the missing BundleDeployment with the desired spec.
	Create
	// Update writes the desired spec: the ID moves to the desired one.
	Update
	// Keep writes the desired spec, whose ID the BundleDeployment already has.
	Keep
)

func (a Action) String() string {
	return [...]string{"Hold", "Create", "Update", "Keep"}[a]
}

// Writes reports whether the desired spec is written for this action.
func (a Action) Writes() bool { return a != Hold }

// PartitionStatus is one partition's state, as Fleet reports it in Bundle status.partitions.
type PartitionStatus struct {
	Name string
	// Count is the number of targets in the partition.
	Count int
	// MaxUnavailable is the partition's limit as a number.
	MaxUnavailable int
	// Unavailable counts targets unavailable or not yet on their desired ID.
	Unavailable int
	// Targets are the partition's targets, as indexes into the input.
	Targets []int
	// Reached is true when the partition was processed this time.
	Reached bool
}

// Done reports whether every target of the partition runs its desired ID, available.
func (p PartitionStatus) Done() bool { return p.Unavailable == 0 }

// Failure is a target that failed with its desired deployment ID.
type Failure struct {
	Cluster string
	Version string
	// Reason says how: the agent's message, or that the deadline passed.
	Reason string
}

// Plan is the decision for one pass.
type Plan struct {
	// Actions has one action per input target, in input order.
	Actions []Action
	// Partitions in rollout order.
	Partitions []PartitionStatus
	// Unpartitioned are targets no partition matches, as indexes into the input.
	Unpartitioned []int
	// Unavailable counts unavailable targets after the plan (Fleet's status.unavailable).
	Unavailable int
	// MaxUnavailable is the Bundle-wide limit as a number.
	MaxUnavailable int
	// UnavailablePartitions counts the unavailable partitions among those reached.
	UnavailablePartitions int
	// MaxUnavailablePartitions is the limit as a number.
	MaxUnavailablePartitions int
	// NewlyCreated counts Create actions.
	NewlyCreated int
	// Failures halt the rollout when HoldsBack is true.
	Failures []Failure
	// Halted is true when failures hold back targets not yet on their desired ID.
	Halted bool
	// Rolling is the index of the first partition not done, -1 when every partition is.
	Rolling int
	// RecheckAfter, when positive, is when a target in progress reaches its deadline.
	RecheckAfter time.Duration
}

// Decide plans one pass of the rollout at time now.
func Decide(s Strategy, targets []Target, now time.Time) (Plan, error) {
	parts, unpartitioned, err := partition(s, targets)
	if err != nil {
		return Plan{}, err
	}
	d, err := newDecision(s, targets, parts)
	if err != nil {
		return Plan{}, err
	}
	d.plan.Unpartitioned = unpartitioned
	d.findFailures(now)
	for pi := range parts {
		if !d.act(&parts[pi]) {
			break
		}
	}
	d.finishPartitions(parts)
	return d.plan, nil
}

// decision is the plan being made for the targets in rollout.
type decision struct {
	plan      Plan
	targets   []Target
	inRollout []int // the targets of every partition
	maxNew    int
	deadline  time.Duration
}

// newDecision starts a plan: the limits of the strategy over the partitions' targets.
func newDecision(s Strategy, targets []Target, parts []PartitionStatus) (*decision, error) {
	d := &decision{plan: Plan{Actions: make([]Action, len(targets)), Rolling: -1}, targets: targets,
		maxNew: DefaultMaxNew, deadline: s.ProgressDeadline}
	for _, p := range parts {
		d.inRollout = append(d.inRollout, p.Targets...)
	}
	var err error
	if d.plan.MaxUnavailable, err = limit(len(d.inRollout), "maxUnavailable", s.MaxUnavailable, &defaultMaxUnavailable); err != nil {
		return nil, err
	}
	if d.plan.MaxUnavailablePartitions, err = limit(len(parts), "maxUnavailablePartitions", s.MaxUnavailablePartitions, &defaultMaxUnavailablePartitions); err != nil {
		return nil, err
	}
	if s.MaxNew != nil {
		d.maxNew = *s.MaxNew
	}
	if d.deadline == 0 {
		d.deadline = DefaultProgressDeadline
	}
	return d, nil
}

// findFailures lists the targets that failed with their desired ID (or passed the progress
// deadline without getting ready), when the next deadline passes, whether the rollout halts, and
// how many targets are unavailable now.
func (d *decision) findFailures(now time.Time) {
	holdsBack := false
	for _, i := range d.inRollout {
		t := &d.targets[i]
		dep := t.Deployment
		if t.Paused {
			continue
		}
		if dep == nil || dep.DeploymentID != t.DesiredID {
			holdsBack = true
			continue
		}
		d.failure(t, now)
	}
	sort.Slice(d.plan.Failures, func(i, j int) bool { return d.plan.Failures[i].Cluster < d.plan.Failures[j].Cluster })
	d.plan.Halted = len(d.plan.Failures) > 0 && holdsBack
	for _, i := range d.inRollout {
		if d.targets[i].Deployment.unavailable() && !d.targets[i].Paused {
			d.plan.Unavailable++
		}
	}
}

// failure records t, deployed with its desired ID and unavailable, as failed when it is or when
// its progress deadline passed, and otherwise when that deadline passes.
func (d *decision) failure(t *Target, now time.Time) {
	dep := t.Deployment
	if !dep.unavailable() {
		return
	}
	switch {
	case dep.Failed:
		d.plan.Failures = append(d.plan.Failures, Failure{Cluster: t.Cluster, Version: t.Version, Reason: dep.Message})
	case d.deadline > 0 && !dep.Since.IsZero() && now.Sub(dep.Since) >= d.deadline:
		d.plan.Failures = append(d.plan.Failures, Failure{Cluster: t.Cluster, Version: t.Version,
			Reason: fmt.Sprintf("not ready %s after it was given this version", d.deadline)})
	case d.deadline > 0 && !dep.Since.IsZero():
		if left := dep.Since.Add(d.deadline).Sub(now); d.plan.RecheckAfter == 0 || left < d.plan.RecheckAfter {
			d.plan.RecheckAfter = left
		}
	}
}

// act decides the action of each target of p and reports whether the next partition may be
// processed too (the unavailable partitions are within their limit).
func (d *decision) act(p *PartitionStatus) bool {
	p.Reached = true
	for _, i := range p.Targets {
		if d.targets[i].Deployment.unavailable() && !d.targets[i].Paused {
			p.Unavailable++
		}
	}
	for _, i := range p.Targets {
		d.plan.Actions[i] = d.action(p, i)
	}
	p.Unavailable = partitionUnavailable(d.targets, p.Targets, d.plan.Actions)
	if p.Unavailable > p.MaxUnavailable {
		d.plan.UnavailablePartitions++
	}
	return d.plan.UnavailablePartitions <= d.plan.MaxUnavailablePartitions
}

// action is what happens to target i of p, counting what it makes unavailable.
func (d *decision) action(p *PartitionStatus, i int) Action {
	t, plan := &d.targets[i], &d.plan
	dep := t.Deployment
	switch {
	case dep != nil && dep.DeploymentID == t.DesiredID:
		return Keep
	case t.Paused && dep != nil:
		return Update
	case plan.Halted, t.Blocked:
		return Hold
	case dep == nil:
		if plan.NewlyCreated < d.maxNew {
			plan.NewlyCreated++
			return Create
		}
	case dep.unavailable():
		return Update // already unavailable: moving it costs nothing
	case plan.Unavailable < plan.MaxUnavailable && p.Unavailable < p.MaxUnavailable:
		plan.Unavailable++
		p.Unavailable++
		return Update
	}
	return plan.Actions[i]
}

// finishPartitions reports the partitions not processed as Fleet does (their current
// unavailability) and which partition is rolling.
func (d *decision) finishPartitions(parts []PartitionStatus) {
	for pi, p := range parts {
		if !p.Reached {
			parts[pi].Unavailable = partitionUnavailable(d.targets, p.Targets, d.plan.Actions)
		}
		if d.plan.Rolling < 0 && parts[pi].Unavailable > 0 {
			d.plan.Rolling = pi
		}
	}
	d.plan.Partitions = parts
}

// partitionUnavailable counts the targets that, after the actions, are not running their
// desired ID available: missing, held on another ID, or unavailable.
func partitionUnavailable(targets []Target, idx []int, actions []Action) int {
	n := 0
	for _, i := range idx {
		t := &targets[i]
		if t.Paused {
			continue
		}
		d := t.Deployment
		switch actions[i] {
		case Hold:
			n++ // missing or held on another ID
		case Create, Update:
			n++ // just given the ID: not applied yet
		case Keep:
			if d.unavailable() {
				n++
			}
		}
	}
	return n
}

// partition splits the targets into partitions (see the package comment) and returns the
// targets no manual partition matches.
func partition(s Strategy, targets []Target) ([]PartitionStatus, []int, error) {
	order := make([]int, len(targets))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return targets[order[a]].Cluster < targets[order[b]].Cluster })

	if len(s.Partitions) > 0 {
		return manualPartitions(s, targets, order)
	}
	if len(order) == 0 {
		return nil, nil, nil
	}
	parts, err := autoPartitions(s, order)
	return parts, nil, err
}

// autoPartitions splits the targets, in order, into partitions of autoPartitionSize once there
// are autoPartitionThreshold of them or more; fewer make one partition, "All".
func autoPartitions(s Strategy, order []int) ([]PartitionStatus, error) {
	threshold := DefaultAutoPartitionThreshold
	if s.AutoPartitionThreshold != nil {
		threshold = *s.AutoPartitionThreshold
	}
	if s.AutoPartitionSize != nil && s.AutoPartitionSize.Type == intstr.Int && s.AutoPartitionSize.IntVal <= 0 ||
		threshold <= 0 || len(order) < threshold {
		p, err := newPartition("All", order, "maxUnavailable", s.MaxUnavailable)
		if err != nil {
			return nil, err
		}
		return []PartitionStatus{p}, nil
	}
	size, err := limit(len(order), "autoPartitionSize", s.AutoPartitionSize, &defaultAutoPartitionSize)
	if err != nil {
		return nil, err
	}
	size = max(size, 1)
	var parts []PartitionStatus
	for from := 0; from < len(order); from += size {
		to := min(from+size, len(order))
		p, err := newPartition(fmt.Sprintf("Partition %d - %d", from, to), order[from:to], "maxUnavailable", s.MaxUnavailable)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

func manualPartitions(s Strategy, targets []Target, order []int) ([]PartitionStatus, []int, error) {
	placed := make([]bool, len(targets))
	var parts []PartitionStatus
	for pi, ps := range s.Partitions {
		m, err := newMatcher(ps, pi)
		if err != nil {
			return nil, nil, err
		}
		var members []int
		for _, i := range order {
			if !placed[i] && m.matches(&targets[i]) {
				placed[i] = true
				members = append(members, i)
			}
		}
		name := ps.Name
		if name == "" {
			name = fmt.Sprintf("partition%03d", pi)
		}
		field := fmt.Sprintf("partitions[%d].maxUnavailable", pi)
		mu := ps.MaxUnavailable
		if mu == nil {
			mu, field = s.MaxUnavailable, "maxUnavailable"
		}
		p, err := newPartition(name, members, field, mu)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, p)
	}
	var unpartitioned []int
	for _, i := range order {
		if !placed[i] {
			unpartitioned = append(unpartitioned, i)
		}
	}
	return parts, unpartitioned, nil
}

func newPartition(name string, members []int, field string, maxUnavailable *intstr.IntOrString) (PartitionStatus, error) {
	mu, err := limit(len(members), field, maxUnavailable, &defaultMaxUnavailable)
	if err != nil {
		return PartitionStatus{}, err
	}
	return PartitionStatus{Name: name, Count: len(members), MaxUnavailable: mu, Targets: append([]int(nil), members...)}, nil
}

type partitionMatcher struct {
	spec     PartitionSpec
	cluster  labels.Selector
	group    labels.Selector
	criteria bool
}

func newMatcher(ps PartitionSpec, i int) (*partitionMatcher, error) {
	m := &partitionMatcher{spec: ps}
	var err error
	if ps.ClusterSelector != nil {
		if m.cluster, err = metav1.LabelSelectorAsSelector(ps.ClusterSelector); err != nil {
			return nil, &InvalidError{Field: fmt.Sprintf("partitions[%d].clusterSelector", i), Err: err}
		}
	}
	if ps.ClusterGroupSelector != nil {
		if m.group, err = metav1.LabelSelectorAsSelector(ps.ClusterGroupSelector); err != nil {
			return nil, &InvalidError{Field: fmt.Sprintf("partitions[%d].clusterGroupSelector", i), Err: err}
		}
	}
	m.criteria = ps.ClusterName != "" || ps.ClusterGroup != "" || m.cluster != nil || m.group != nil
	return m, nil
}

// matches: every criterion set must match; the group criteria are met by one of the cluster's
// groups.
func (m *partitionMatcher) matches(t *Target) bool {
	if !m.criteria {
		return false
	}
	if m.spec.ClusterName != "" && m.spec.ClusterName != t.Cluster {
		return false
	}
	if m.cluster != nil && !m.cluster.Matches(labels.Set(t.Labels)) {
		return false
	}
	if m.spec.ClusterGroup == "" && m.group == nil {
		return true
	}
	for _, g := range t.Groups {
		if m.spec.ClusterGroup != "" && m.spec.ClusterGroup != g.Name {
			continue
		}
		if m.group != nil && !m.group.Matches(labels.Set(g.Labels)) {
			continue
		}
		return true
	}
	return false
}

// InvalidError is a rolloutStrategy field that cannot be evaluated.
type InvalidError struct {
	// Field is the path under rolloutStrategy, e.g. "partitions[0].clusterSelector".
	Field string
	Err   error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("spec.rolloutStrategy.%s: %v", e.Field, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

// limit turns the first non-nil value into a number out of count: an integer is capped to
// [0, count], a percentage rounds down and is at least 1. With count 0 it is 1, as in Fleet.
func limit(count int, field string, vals ...*intstr.IntOrString) (int, error) {
	if count <= 0 {
		return 1, nil
	}
	var v *intstr.IntOrString
	for _, x := range vals {
		if x != nil {
			v = x
			break
		}
	}
	if v.Type == intstr.Int {
		return min(max(int(v.IntVal), 0), count), nil
	}
	if n, err := strconv.Atoi(v.StrVal); err == nil {
		return min(max(n, 0), count), nil
	}
	pct, ok := strings.CutSuffix(v.StrVal, "%")
	if !ok {
		return 0, &InvalidError{Field: field, Err: fmt.Errorf("%q is neither a number nor a percentage such as 10%%", v.StrVal)}
	}
	f, err := strconv.ParseFloat(pct, 64)
	if err != nil {
		return 0, &InvalidError{Field: field, Err: fmt.Errorf("%q is not a percentage such as 10%%", v.StrVal)}
	}
	n := int(float64(count) * f / 100)
	return min(max(n, 1), count), nil
}
