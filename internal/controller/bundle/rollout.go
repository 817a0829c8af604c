package bundle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/rollout"
	"github.com/helmops/helmops/internal/targeting"
)

// dependsOnIndex indexes Bundles that declare spec.dependsOn (value "true"), so a change of any
// BundleDeployment reaches the Bundles that may wait for it.
const dependsOnIndex = "bundle.spec.dependsOn"

var (
	rolloutHalted = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "helmops_bundle_rollout_halted",
		Help: "1 while the Bundle's rollout is halted because clusters failed with the new deployment.",
	}, []string{"namespace", "name"})
	rolloutHalts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helmops_bundle_rollout_halts_total",
		Help: "Times the Bundle's rollout halted because clusters failed with the new deployment.",
	}, []string{"namespace", "name"})
)

func init() {
	metrics.Registry.MustRegister(rolloutHalted, rolloutHalts)
}

// maxProgressDeadline is the longest deadline kept; longer ones mean none.
const maxProgressDeadline = 100 * 365 * 24 * time.Hour

// strategy converts the Bundle's rolloutStrategy.
func strategy(b *v1alpha1.Bundle) rollout.Strategy {
	rs := b.Spec.RolloutStrategy
	if rs == nil {
		return rollout.Strategy{}
	}
	s := rollout.Strategy{
		MaxUnavailable:           rs.MaxUnavailable,
		MaxUnavailablePartitions: rs.MaxUnavailablePartitions,
		AutoPartitionSize:        rs.AutoPartitionSize,
		AutoPartitionThreshold:   rs.AutoPartitionThreshold,
		MaxNew:                   rs.MaxNew,
	}
	if d := rs.ProgressDeadlineSeconds; d != nil {
		switch {
		case *d <= 0 || int64(*d) > int64(maxProgressDeadline/time.Second):
			// No deadline; a value too large for a duration is as good as none.
			s.ProgressDeadline = -1
		default:
			s.ProgressDeadline = time.Duration(*d) * time.Second
		}
	}
	for _, p := range rs.Partitions {
		s.Partitions = append(s.Partitions, rollout.PartitionSpec{
			Name: p.Name, MaxUnavailable: p.MaxUnavailable, ClusterName: p.ClusterName,
			ClusterSelector: p.ClusterSelector, ClusterGroup: p.ClusterGroup, ClusterGroupSelector: p.ClusterGroupSelector,
		})
	}
	return s
}

// since is when the BundleDeployment's spec was given its deployment ID: the annotation this
// reconciler writes, else its creation.
func since(bd *v1alpha1.BundleDeployment) time.Time {
	if t, err := time.Parse(time.RFC3339, bd.Annotations[v1alpha1.DeploymentIDSinceAnnotation]); err == nil {
		return t
	}
	return bd.CreationTimestamp.Time
}

// rolloutTarget describes one placement for the rollout.
func rolloutTarget(p targeting.Placement, desired *v1alpha1.BundleDeployment, current *v1alpha1.BundleDeployment,
	groups []v1alpha1.ClusterGroup) rollout.Target {
	t := rollout.Target{
		Cluster:   p.Cluster.Name,
		Labels:    p.Cluster.Labels,
		DesiredID: desired.Spec.DeploymentID,
		Version:   p.Options.HelmOrEmpty().Version,
		Paused:    desired.Spec.Paused,
	}
	for i := range groups {
		if targeting.InGroup(&groups[i], p.Cluster) {
			t.Groups = append(t.Groups, rollout.Group{Name: groups[i].Name, Labels: groups[i].Labels})
		}
	}
	if current != nil {
		state, msg := deploystate.Of(current)
		t.Deployment = &rollout.Deployment{
			DeploymentID:        current.Spec.DeploymentID,
			AppliedDeploymentID: current.Status.AppliedDeploymentID,
			Ready:               current.Status.Ready,
			Failed:              state == deploystate.ErrApplied,
			Message:             truncate(msg),
			Since:               since(current),
		}
	}
	return t
}

// dependencyWaits returns, per cluster namespace, what the Bundle still waits for there. It
// reads the other Bundles of the namespace and the BundleDeployments of each cluster namespace
// from the cache.
func (r *Reconciler) dependencyWaits(ctx context.Context, b *v1alpha1.Bundle, namespaces []string) (map[string][]string, error) {
	if len(b.Spec.DependsOn) == 0 {
		return nil, nil
	}
	deps := make([]rollout.Dependency, 0, len(b.Spec.DependsOn))
	for _, d := range b.Spec.DependsOn {
		dep := rollout.Dependency{Name: d.Name, Selector: d.Selector}
		for _, s := range d.AcceptedStates {
			dep.AcceptedStates = append(dep.AcceptedStates, string(s))
		}
		deps = append(deps, dep)
	}
	bundles := &v1alpha1.BundleList{}
	if err := r.Client.List(ctx, bundles, client.InNamespace(b.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the Bundles of namespace %s for dependsOn: %w", b.Namespace, err)
	}
	out := map[string][]string{}
	for _, ns := range namespaces {
		bds := &v1alpha1.BundleDeploymentList{}
		if err := r.Client.List(ctx, bds, client.InNamespace(ns),
			client.MatchingLabels{v1alpha1.BundleNamespaceLabel: b.Namespace}); err != nil {
			return nil, fmt.Errorf("listing the BundleDeployments of cluster namespace %s for dependsOn: %w", ns, err)
		}
		states := map[string]string{}
		for i := range bds.Items {
			s, _ := deploystate.Of(&bds.Items[i])
			states[bds.Items[i].Labels[v1alpha1.BundleNameLabel]] = string(s)
		}
		on := make([]rollout.BundleOnCluster, 0, len(bundles.Items))
		for _, other := range bundles.Items {
			on = append(on, rollout.BundleOnCluster{Name: other.Name, Labels: other.Labels, State: states[other.Name]})
		}
		waits, err := rollout.Waits(b.Name, deps, on)
		if err != nil {
			return nil, err
		}
		if len(waits) > 0 {
			out[ns] = waits
		}
	}
	return out, nil
}

// rolloutFacts is what the rollout step decided, for the status.
type rolloutFacts struct {
	plan rollout.Plan
	// index maps a cluster namespace to its target index.
	index map[string]int
	// entry maps a target index to its entry in facts.entries.
	entry map[int]int
	// waits are the unmet dependencies, by target index.
	waits map[int][]string
}

// heldMessage says why a target is held.
func (rf *rolloutFacts) heldMessage(i int) string {
	if w := rf.waits[i]; len(w) > 0 {
		return "waiting for dependencies: " + strings.Join(w, "; ")
	}
	if rf.plan.Halted {
		return "held: the rollout is halted"
	}
	for _, u := range rf.plan.Unpartitioned {
		if u == i {
			return "in no partition of rolloutStrategy.partitions"
		}
	}
	for _, p := range rf.plan.Partitions {
		for _, t := range p.Targets {
			if t != i {
				continue
			}
			if !p.Reached {
				return fmt.Sprintf("waiting for the rollout to reach partition %s", p.Name)
			}
			return fmt.Sprintf("waiting for the rollout of partition %s (%d/%d unavailable, %d allowed)",
				p.Name, p.Unavailable, p.Count, p.MaxUnavailable)
		}
	}
	return "waiting for the rollout"
}

func (rf *rolloutFacts) failedList() string {
	var parts []string
	for _, f := range rf.plan.Failures {
		parts = append(parts, fmt.Sprintf("%s (%s)", f.Cluster, f.Reason))
	}
	return strings.Join(parts, ", ")
}

// progress says which partition is rolling and what it waits for; "" when the rollout is done.
func (rf *rolloutFacts) progress() string {
	if rf == nil {
		return ""
	}
	p := rf.plan
	if p.Halted {
		return rf.haltMessage()
	}
	if p.Rolling < 0 {
		return ""
	}
	cur := p.Partitions[p.Rolling]
	msg := fmt.Sprintf("rolling out partition %s (%d of %d partitions): %d/%d clusters not yet ready with the new deployment, %d allowed",
		cur.Name, p.Rolling+1, len(p.Partitions), cur.Unavailable, cur.Count, cur.MaxUnavailable)
	if next := p.Rolling + 1; next < len(p.Partitions) && !p.Partitions[next].Reached {
		msg += fmt.Sprintf("; partition %s waits for it", p.Partitions[next].Name)
	}
	if len(rf.waits) > 0 {
		msg += fmt.Sprintf("; %d clusters wait for dependencies", len(rf.waits))
	}
	return msg
}

func (rf *rolloutFacts) haltMessage() string {
	versions := map[string]bool{}
	for _, f := range rf.plan.Failures {
		versions[f.Version] = true
	}
	var vs []string
	for v := range versions {
		if v != "" {
			vs = append(vs, v)
		}
	}
	sort.Strings(vs)
	what := "the new deployment"
	if len(vs) > 0 {
		what = "version " + strings.Join(vs, ", ")
	}
	rolling := ""
	if p := rf.plan.Rolling; p >= 0 {
		rolling = fmt.Sprintf(" at partition %s", rf.plan.Partitions[p].Name)
	}
	return fmt.Sprintf("rollout of %s halted%s: failed on %s; clusters not yet reached keep their version until the failures clear or a newer version is resolved",
		what, rolling, rf.failedList())
}

// partitionStatus writes Fleet's partition counts from the plan and the entries.
func partitionStatus(b *v1alpha1.Bundle, f *facts) {
	b.Status.PartitionStatus = nil
	b.Status.Unavailable, b.Status.UnavailablePartitions = 0, 0
	b.Status.MaxUnavailable, b.Status.MaxUnavailablePartitions, b.Status.NewlyCreated = 0, 0, 0
	rf := f.rollout
	if rf == nil {
		return
	}
	p := rf.plan
	b.Status.Unavailable = p.Unavailable
	b.Status.UnavailablePartitions = p.UnavailablePartitions
	b.Status.MaxUnavailable = p.MaxUnavailable
	b.Status.MaxUnavailablePartitions = p.MaxUnavailablePartitions
	b.Status.NewlyCreated = p.NewlyCreated
	for _, part := range p.Partitions {
		entries := make([]Entry, 0, len(part.Targets))
		for _, i := range part.Targets {
			if e, ok := rf.entry[i]; ok {
				entries = append(entries, f.entries[e])
			}
		}
		b.Status.PartitionStatus = append(b.Status.PartitionStatus, v1alpha1.PartitionStatus{
			Name: part.Name, Count: part.Count, MaxUnavailable: part.MaxUnavailable,
			Unavailable: part.Unavailable, Summary: Summarize(entries),
		})
	}
}

// recordHalt emits an event and counts a halt when the rollout newly halts, and keeps the
// gauge in step.
//
// Whether it was halted before is remembered per Bundle in memory (one reconcile per Bundle
// runs at a time), so a reconcile that read a stale Bundle from the cache does not count the
// same halt twice; after a restart the status read decides.
func (r *Reconciler) recordHalt(b *v1alpha1.Bundle, statusHalted bool, f *facts) {
	halted := f.rollout != nil && f.rollout.plan.Halted
	key := client.ObjectKeyFromObject(b)
	wasHalted := statusHalted
	if prev, ok := r.halted.Swap(key, halted); ok {
		wasHalted = prev.(bool)
	}
	v := 0.0
	if halted {
		v = 1
	}
	rolloutHalted.WithLabelValues(b.Namespace, b.Name).Set(v)
	if !halted || wasHalted {
		return
	}
	rolloutHalts.WithLabelValues(b.Namespace, b.Name).Inc()
	if r.Recorder == nil {
		return
	}
	msg := f.rollout.haltMessage()
	r.Recorder.Event(b, corev1.EventTypeWarning, v1alpha1.ReasonRolloutHalted, msg)
	// The HelmOp that owns the Bundle gets the event too, so describing it shows the halt.
	for _, ref := range b.OwnerReferences {
		if ref.Kind == "HelmOp" && ref.APIVersion == v1alpha1.GroupVersion.String() {
			r.Recorder.Event(&corev1.ObjectReference{Kind: ref.Kind, APIVersion: ref.APIVersion, Name: ref.Name,
				Namespace: b.Namespace, UID: ref.UID}, corev1.EventTypeWarning, v1alpha1.ReasonRolloutHalted, msg)
		}
	}
}

func (r *Reconciler) deleteRolloutMetrics(namespace, name string) {
	r.halted.Delete(client.ObjectKey{Namespace: namespace, Name: name})
	rolloutHalted.DeleteLabelValues(namespace, name)
	rolloutHalts.DeleteLabelValues(namespace, name)
}

// planRollout is the rollout step: it decides, for each placement with a cluster namespace,
// whether its desired deployment is written now (see internal/rollout), and records the plan.
// A rolloutStrategy or dependsOn that cannot be evaluated keeps the deployments as they are.
func (r *Reconciler) planRollout(ctx context.Context, s *scope) (ctrl.Result, error) {
	b := s.b
	rf := &rolloutFacts{waits: map[int][]string{}, index: map[string]int{}, entry: map[int]int{}}
	var namespaces []string
	var targets []rollout.Target
	for _, p := range s.placements {
		ns := s.namespaceOf(p)
		if ns == "" {
			continue
		}
		rf.index[ns] = len(targets)
		namespaces = append(namespaces, ns)
		targets = append(targets, rolloutTarget(p, desiredDeployment(b, p, ns), s.byNamespace[ns], s.groups))
	}
	waits, err := r.dependencyWaits(ctx, b, namespaces)
	if err == nil {
		for i, ns := range namespaces {
			if w := waits[ns]; len(w) > 0 {
				rf.waits[i] = w
				targets[i].Blocked = true
			}
		}
		rf.plan, err = rollout.Decide(strategy(b), targets, r.Clock.Now())
	}
	if err != nil {
		var ie *rollout.InvalidError
		var de *rollout.InvalidDependencyError
		if !errors.As(err, &ie) && !errors.As(err, &de) {
			return ctrl.Result{}, err // a failed list: retried
		}
		s.targetErr = err
		s.entries = s.entries[:0]
		for _, bd := range s.existing {
			s.entries = append(s.entries, Entry{Name: bd.Labels[v1alpha1.ClusterLabel], BundleDeployment: bd.DeepCopy()})
		}
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	s.rollout = rf
	return ctrl.Result{RequeueAfter: rf.plan.RecheckAfter}, nil
}

// held reports whether the rollout holds the placement's cluster back, and why.
func (s *scope) held(ns string) (string, bool) {
	if s.rollout == nil {
		return "", false
	}
	i, ok := s.rollout.index[ns]
	if !ok || s.rollout.plan.Actions[i].Writes() {
		return "", false
	}
	return s.rollout.heldMessage(i), true
}

// isHalted reports whether the Bundle's status says its rollout is halted.
func isHalted(b *v1alpha1.Bundle) bool {
	c := b.Condition(v1alpha1.ReadyCondition)
	return c != nil && c.Reason == v1alpha1.ReasonRolloutHalted
}
