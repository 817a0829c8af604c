package bundle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/redact"
	"github.com/helmops/helmops/internal/resourcecounts"
)

// maxNonReady is how many non-ready deployments a summary lists.
const maxNonReady = 10

// maxMessage bounds the messages copied from deployments into summaries and conditions.
const maxMessage = 512

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// truncate redacts a message copied into a summary and bounds it to maxMessage.
func truncate(s string) string { return redact.Truncate(redact.String(s), maxMessage) }

// Entry is one deployment to count: a name for it (the cluster in a Bundle's summary, the
// Bundle in a Cluster's) and its BundleDeployment, nil while the deployment cannot be written yet
// (it then counts as Pending with PendingMessage).
//
// Held entries are kept back by the rollout or by dependencies: without a BundleDeployment they
// count as Pending, with one as OutOfSync (unless its own state is worse), with PendingMessage
// saying why.
type Entry struct {
	Name             string
	BundleDeployment *v1alpha1.BundleDeployment
	PendingMessage   string
	Held             bool
}

// entryState is the state the roll-up counts for the entry, and why.
func entryState(e Entry) (deploystate.State, string) {
	if e.BundleDeployment == nil {
		return deploystate.Pending, orDefault(e.PendingMessage, "waiting for the cluster namespace")
	}
	state, msg := deploystate.Of(e.BundleDeployment)
	if e.Held && deploystate.Rank(state) < deploystate.Rank(deploystate.OutOfSync) {
		return deploystate.OutOfSync, e.PendingMessage
	}
	return state, msg
}

// Summarize counts the entries by state. DesiredReady counts every entry; nonReadyResources
// lists up to ten non-ready ones, worst first, then by cluster name.
func Summarize(entries []Entry) v1alpha1.BundleSummary {
	s := v1alpha1.BundleSummary{DesiredReady: len(entries)}
	var nonReady []v1alpha1.NonReadyResource
	for _, e := range entries {
		state, msg := entryState(e)
		if count(&s, state); state == deploystate.Ready {
			continue
		}
		r := v1alpha1.NonReadyResource{Name: e.Name, State: string(state), Message: truncate(msg)}
		if bd := e.BundleDeployment; bd != nil {
			r.ModifiedStatus = firstN(bd.Status.ModifiedStatus, maxNonReady)
			r.NonReadyStatus = firstN(bd.Status.NonReadyStatus, maxNonReady)
		}
		nonReady = append(nonReady, r)
	}
	sort.SliceStable(nonReady, func(i, j int) bool {
		ri, rj := deploystate.Rank(deploystate.State(nonReady[i].State)), deploystate.Rank(deploystate.State(nonReady[j].State))
		if ri != rj {
			return ri > rj
		}
		return nonReady[i].Name < nonReady[j].Name
	})
	if len(nonReady) > maxNonReady {
		nonReady = nonReady[:maxNonReady]
	}
	s.NonReadyResources = nonReady
	return s
}

// count adds one deployment in state to the summary's counts (Ready counts in ready).
func count(s *v1alpha1.BundleSummary, state deploystate.State) {
	switch state {
	case deploystate.Ready:
		s.Ready++
	case deploystate.NotReady:
		s.NotReady++
	case deploystate.Pending:
		s.Pending++
	case deploystate.OutOfSync:
		s.OutOfSync++
	case deploystate.Modified:
		s.Modified++
	case deploystate.WaitApplied:
		s.WaitApplied++
	case deploystate.ErrApplied:
		s.ErrApplied++
	}
}

func firstN[T any](in []T, n int) []T {
	if len(in) > n {
		return append([]T(nil), in[:n]...)
	}
	return append([]T(nil), in...)
}

// WorstState is the worst state counted in the summary, deploystate.Ready when all are ready.
func WorstState(s v1alpha1.BundleSummary) deploystate.State {
	for _, c := range []struct {
		n     int
		state deploystate.State
	}{
		{s.ErrApplied, deploystate.ErrApplied}, {s.WaitApplied, deploystate.WaitApplied}, {s.Modified, deploystate.Modified},
		{s.OutOfSync, deploystate.OutOfSync}, {s.Pending, deploystate.Pending}, {s.NotReady, deploystate.NotReady},
	} {
		if c.n > 0 {
			return c.state
		}
	}
	return deploystate.Ready
}

// NotReadyMessage names the non-ready clusters of a summary and why, e.g.
// "1/3 clusters ready; not ready: dev (ErrApplied: …), prod (WaitApplied: …)". It names at most
// the ten listed in nonReadyResources and says how many more there are.
func NotReadyMessage(s v1alpha1.BundleSummary) string {
	var parts []string
	for _, r := range s.NonReadyResources {
		p := r.Name + " (" + r.State
		if r.Message != "" {
			p += ": " + r.Message
		}
		parts = append(parts, p+")")
	}
	msg := fmt.Sprintf("%d/%d clusters ready", s.Ready, s.DesiredReady)
	if len(parts) > 0 {
		msg += "; not ready: " + strings.Join(parts, ", ")
	}
	if more := s.DesiredReady - s.Ready - len(s.NonReadyResources); more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}
	return msg
}

// facts are what the reconcile steps observed about a Bundle; its status is computed from them.
type facts struct {
	// targetErr is set when the targets cannot be evaluated (a bad selector).
	targetErr error
	// valuesErrs are the clusters whose values templates failed, naming the value.
	valuesErrs []error
	// downstreamErrs are the clusters whose downstreamResources cannot be copied, naming the
	// entry.
	downstreamErrs []*clusterProblem
	// secretErr is set when the repository secret cannot be read or copied.
	secretErr    error
	secretReason string
	// entries are the targeted clusters with their deployments.
	entries []Entry
	// paused is the Bundle's spec.paused.
	paused bool
	// targeted is true once the targets were evaluated (entries are then what they gave).
	targeted bool
	// now is when the reconcile started.
	now time.Time
	// rollout is what the rollout step decided, nil when it did not run.
	rollout *rolloutFacts
}

func setCondition(b *v1alpha1.Bundle, t string, ok bool, reason, msg string, now time.Time) {
	lifecycle.SetCondition(&b.Status.Conditions, b.Generation, t, lifecycle.Bool(ok), reason, msg, now)
}

// setTargetedCondition is True when the targets could be evaluated and the repository secret
// copied; False with the reason otherwise.
func setTargetedCondition(b *v1alpha1.Bundle, f *facts) {
	switch {
	case f.targetErr != nil:
		setCondition(b, v1alpha1.TargetedCondition, false, v1alpha1.ReasonInvalidSpec, f.targetErr.Error(), f.now)
	case f.secretErr != nil:
		setCondition(b, v1alpha1.TargetedCondition, false, f.secretReason, f.secretErr.Error(), f.now)
	case len(f.valuesErrs) > 0:
		setCondition(b, v1alpha1.TargetedCondition, false, v1alpha1.ReasonInvalidValues, valuesMessage(f.valuesErrs), f.now)
	case len(f.downstreamErrs) > 0:
		setCondition(b, v1alpha1.TargetedCondition, false, f.downstreamErrs[0].reason, downstreamMessage(f.downstreamErrs), f.now)
	case len(f.entries) == 0:
		setCondition(b, v1alpha1.TargetedCondition, true, v1alpha1.ReasonNoTargets,
			fmt.Sprintf("no cluster in namespace %s matches the targets", b.Namespace), f.now)
	default:
		setCondition(b, v1alpha1.TargetedCondition, true, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("%d clusters targeted", len(f.entries)), f.now)
	}
}

// setSummary writes the counts and the display from the entries.
func setSummary(b *v1alpha1.Bundle, f *facts) {
	bds := make([]*v1alpha1.BundleDeployment, 0, len(f.entries))
	for _, e := range f.entries {
		bds = append(bds, e.BundleDeployment)
	}
	rc := resourcecounts.Roll(bds)
	b.Status.ResourceCounts, b.Status.PerClusterResourceCounts, b.Status.Resources = rc.Counts, rc.PerCluster, rc.Resources
	s := Summarize(f.entries)
	b.Status.Summary = s
	b.Status.ReadyClusters = s.Ready
	b.Status.DesiredReadyClusters = s.DesiredReady
	d := v1alpha1.StatusDisplay{ReadyBundleDeployments: fmt.Sprintf("%d/%d", s.Ready, s.DesiredReady)}
	if worst := WorstState(s); worst != deploystate.Ready {
		d.State = string(worst)
		d.Error = worst == deploystate.ErrApplied
		if len(s.NonReadyResources) > 0 {
			d.Message = s.NonReadyResources[0].Name + ": " + s.NonReadyResources[0].Message
		}
	}
	if msg := f.rollout.progress(); msg != "" && f.held() {
		d.Message = truncate(msg)
		if f.rollout.plan.Halted {
			d.State, d.Error = v1alpha1.ReasonRolloutHalted, true
		}
	}
	b.Status.Display = d
}

// setReadyCondition is True when every targeted cluster's deployment is ready. It is False when
// the targets or the secret are in error, when no cluster is targeted, and when any deployment is
// not ready, naming those clusters and why.
func setReadyCondition(b *v1alpha1.Bundle, f *facts) {
	s := b.Status.Summary
	switch {
	case f.targetErr != nil:
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonInvalidSpec, f.targetErr.Error(), f.now)
	case f.secretErr != nil:
		setCondition(b, v1alpha1.ReadyCondition, false, f.secretReason, f.secretErr.Error(), f.now)
	case len(f.valuesErrs) > 0:
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonInvalidValues, valuesMessage(f.valuesErrs), f.now)
	case len(f.downstreamErrs) > 0:
		setCondition(b, v1alpha1.ReadyCondition, false, f.downstreamErrs[0].reason, downstreamMessage(f.downstreamErrs), f.now)
	case s.DesiredReady == 0:
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonNoTargets,
			fmt.Sprintf("no cluster in namespace %s matches the targets", b.Namespace), f.now)
	case f.rollout != nil && f.rollout.plan.Halted:
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonRolloutHalted,
			f.rollout.haltMessage()+"; "+NotReadyMessage(s), f.now)
	case s.Ready < s.DesiredReady:
		reason, msg := v1alpha1.ReasonClustersNotReady, NotReadyMessage(s)
		if p := f.rollout.progress(); p != "" && f.held() {
			reason, msg = v1alpha1.ReasonRollingOut, p+"; "+msg
		}
		if f.paused {
			reason = v1alpha1.ReasonPaused
		}
		setCondition(b, v1alpha1.ReadyCondition, false, reason, msg, f.now)
	default:
		setCondition(b, v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("%d/%d clusters ready", s.Ready, s.DesiredReady), f.now)
	}
}

// valuesMessage names every cluster whose values could not be computed and the value at fault.
func valuesMessage(errs []error) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return "values templates failed, those clusters keep their current deployment until the HelmOp or the Cluster is fixed: " + strings.Join(parts, "; ")
}

// downstreamMessage names every cluster whose downstreamResources cannot be copied and the
// entry at fault.
func downstreamMessage(problems []*clusterProblem) string {
	parts := make([]string, 0, len(problems))
	for _, p := range problems {
		parts = append(parts, p.Error())
	}
	return "downstreamResources cannot be copied, those clusters keep their current deployment until it is fixed: " + strings.Join(parts, "; ")
}

// setStatus computes the whole status from the facts and the error the reconcile ended with. A
// transient error before the targets were evaluated (a failed Cluster list) leaves Targeted, the
// summary and Ready as they were (Unknown when there were none); observedGeneration advances only
// when the reconcile did not end in a transient error.
func setStatus(b *v1alpha1.Bundle, f *facts, err error) {
	if lifecycle.IsTransient(err) && !f.targeted {
		for _, t := range []string{v1alpha1.TargetedCondition, v1alpha1.ReadyCondition} {
			if meta.FindStatusCondition(b.Status.Conditions, t) == nil {
				lifecycle.SetCondition(&b.Status.Conditions, b.Generation, t, metav1.ConditionUnknown, v1alpha1.ReasonTransientError, err.Error(), f.now)
			}
		}
		return
	}
	if !lifecycle.IsTransient(err) {
		b.Status.ObservedGeneration = b.Generation
	}
	setTargetedCondition(b, f)
	setSummary(b, f)
	partitionStatus(b, f)
	setReadyCondition(b, f)
}

// held reports whether the rollout or dependencies hold any cluster back.
func (f *facts) held() bool {
	for _, e := range f.entries {
		if e.Held {
			return true
		}
	}
	return false
}
