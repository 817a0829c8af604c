package bundle

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

// State is the state of one BundleDeployment as the roll-up counts it.
type State string

// The states, from best to worst (see rank).
const (
	StateReady       State = "Ready"
	StateNotReady    State = "NotReady"
	StatePending     State = "Pending"
	StateOutOfSync   State = "OutOfSync"
	StateModified    State = "Modified"
	StateWaitApplied State = "WaitApplied"
	StateErrApplied  State = "ErrApplied"
)

func rank(s State) int {
	switch s {
	case StateReady:
		return 0
	case StateNotReady:
		return 1
	case StatePending:
		return 2
	case StateOutOfSync:
		return 3
	case StateModified:
		return 4
	case StateWaitApplied:
		return 5
	case StateErrApplied:
		return 6
	}
	return 7
}

// maxNonReady is how many non-ready deployments a summary lists.
const maxNonReady = 10

// maxMessage bounds the messages copied from deployments into summaries and conditions.
const maxMessage = 512

// DeploymentState is the state of a BundleDeployment from what its agent reported, checked in
// this order:
//   - ErrApplied: the Deployed condition is False for a failure (not while progressing or paused);
//   - WaitApplied: nothing was applied yet;
//   - OutOfSync: the applied deploymentID is not the current one (an update in progress, or held
//     by paused);
//   - Modified: resources drifted (modifiedStatus is not empty);
//   - NotReady: status.ready is false or Deployed is not True;
//   - Ready otherwise.
//
// The message says why, for every state but Ready.
func DeploymentState(bd *v1alpha1.BundleDeployment) (State, string) {
	deployed := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.DeployedCondition)
	ready := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
	switch {
	case deployed != nil && deployed.Status == metav1.ConditionFalse &&
		deployed.Reason != v1alpha1.ReasonProgressing && deployed.Reason != v1alpha1.ReasonPaused:
		return StateErrApplied, orDefault(deployed.Message, deployed.Reason)
	case bd.Status.AppliedDeploymentID == "":
		switch {
		case bd.Spec.Paused:
			return StateWaitApplied, "paused before the first deployment"
		case deployed != nil && deployed.Message != "":
			return StateWaitApplied, deployed.Message
		}
		return StateWaitApplied, "waiting for the agent to deploy"
	case bd.Status.AppliedDeploymentID != bd.Spec.DeploymentID:
		if bd.Spec.Paused {
			return StateOutOfSync, "paused: the deployed release is older than the spec"
		}
		return StateOutOfSync, "the agent has not deployed the current spec yet"
	case len(bd.Status.ModifiedStatus) > 0:
		return StateModified, modifiedMessage(bd.Status.ModifiedStatus)
	case !bd.Status.Ready || deployed == nil || deployed.Status != metav1.ConditionTrue:
		if ready != nil && ready.Status != metav1.ConditionTrue && ready.Message != "" {
			return StateNotReady, ready.Message
		}
		if len(bd.Status.NonReadyStatus) > 0 {
			return StateNotReady, nonReadyMessage(bd.Status.NonReadyStatus)
		}
		return StateNotReady, "resources are not ready"
	}
	return StateReady, ""
}

func modifiedMessage(ms []v1alpha1.ModifiedStatus) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		id := m.Kind + " " + qualified(m.Namespace, m.Name)
		switch {
		case m.Missing:
			parts = append(parts, id+" missing")
		case m.Delete:
			parts = append(parts, id+" extra")
		default:
			parts = append(parts, id+" modified")
		}
	}
	return strings.Join(parts, "; ")
}

func nonReadyMessage(ns []v1alpha1.NonReadyStatus) string {
	parts := make([]string, 0, len(ns))
	for _, n := range ns {
		msg := n.Kind + " " + qualified(n.Namespace, n.Name) + " " + n.Summary.State
		if len(n.Summary.Message) > 0 {
			msg += ": " + strings.Join(n.Summary.Message, ", ")
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func truncate(s string) string {
	if len(s) > maxMessage {
		return s[:maxMessage-3] + "..."
	}
	return s
}

// Entry is one deployment to count: a name for it (the cluster in a Bundle's summary, the
// Bundle in a Cluster's) and its BundleDeployment, nil while the deployment cannot be written yet
// (it then counts as Pending with PendingMessage).
type Entry struct {
	Name             string
	BundleDeployment *v1alpha1.BundleDeployment
	PendingMessage   string
}

// Summarize counts the entries by state. DesiredReady counts every entry; nonReadyResources
// lists up to ten non-ready ones, worst first, then by cluster name.
func Summarize(entries []Entry) v1alpha1.BundleSummary {
	s := v1alpha1.BundleSummary{DesiredReady: len(entries)}
	var nonReady []v1alpha1.NonReadyResource
	for _, e := range entries {
		state, msg := StatePending, orDefault(e.PendingMessage, "waiting for the cluster namespace")
		if e.BundleDeployment != nil {
			state, msg = DeploymentState(e.BundleDeployment)
		}
		switch state {
		case StateReady:
			s.Ready++
			continue
		case StateNotReady:
			s.NotReady++
		case StatePending:
			s.Pending++
		case StateOutOfSync:
			s.OutOfSync++
		case StateModified:
			s.Modified++
		case StateWaitApplied:
			s.WaitApplied++
		case StateErrApplied:
			s.ErrApplied++
		}
		r := v1alpha1.NonReadyResource{Name: e.Name, State: string(state), Message: truncate(msg)}
		if bd := e.BundleDeployment; bd != nil {
			r.ModifiedStatus = firstN(bd.Status.ModifiedStatus, maxNonReady)
			r.NonReadyStatus = firstN(bd.Status.NonReadyStatus, maxNonReady)
		}
		nonReady = append(nonReady, r)
	}
	sort.SliceStable(nonReady, func(i, j int) bool {
		ri, rj := rank(State(nonReady[i].State)), rank(State(nonReady[j].State))
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

func firstN[T any](in []T, n int) []T {
	if len(in) > n {
		return append([]T(nil), in[:n]...)
	}
	return append([]T(nil), in...)
}

// WorstState is the worst state counted in the summary, StateReady when all are ready.
func WorstState(s v1alpha1.BundleSummary) State {
	for _, c := range []struct {
		n     int
		state State
	}{
		{s.ErrApplied, StateErrApplied}, {s.WaitApplied, StateWaitApplied}, {s.Modified, StateModified},
		{s.OutOfSync, StateOutOfSync}, {s.Pending, StatePending}, {s.NotReady, StateNotReady},
	} {
		if c.n > 0 {
			return c.state
		}
	}
	return StateReady
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
	// secretErr is set when the repository secret cannot be read or copied.
	secretErr    error
	secretReason string
	// entries are the targeted clusters with their deployments.
	entries []Entry
	// paused is the Bundle's spec.paused.
	paused bool
}

func setCondition(b *v1alpha1.Bundle, t string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: b.Generation,
	})
}

// setTargetedCondition is True when the targets could be evaluated and the repository secret
// copied; False with the reason otherwise.
func setTargetedCondition(b *v1alpha1.Bundle, f *facts) {
	switch {
	case f.targetErr != nil:
		setCondition(b, v1alpha1.TargetedCondition, false, v1alpha1.ReasonInvalidSpec, f.targetErr.Error())
	case f.secretErr != nil:
		setCondition(b, v1alpha1.TargetedCondition, false, f.secretReason, f.secretErr.Error())
	case len(f.entries) == 0:
		setCondition(b, v1alpha1.TargetedCondition, true, v1alpha1.ReasonNoTargets,
			fmt.Sprintf("no cluster in namespace %s matches the targets", b.Namespace))
	default:
		setCondition(b, v1alpha1.TargetedCondition, true, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("%d clusters targeted", len(f.entries)))
	}
}

// setSummary writes the counts and the display from the entries.
func setSummary(b *v1alpha1.Bundle, f *facts) {
	s := Summarize(f.entries)
	b.Status.Summary = s
	b.Status.ReadyClusters = s.Ready
	b.Status.DesiredReadyClusters = s.DesiredReady
	d := v1alpha1.StatusDisplay{ReadyBundleDeployments: fmt.Sprintf("%d/%d", s.Ready, s.DesiredReady)}
	if worst := WorstState(s); worst != StateReady {
		d.State = string(worst)
		d.Error = worst == StateErrApplied
		if len(s.NonReadyResources) > 0 {
			d.Message = s.NonReadyResources[0].Name + ": " + s.NonReadyResources[0].Message
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
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonInvalidSpec, f.targetErr.Error())
	case f.secretErr != nil:
		setCondition(b, v1alpha1.ReadyCondition, false, f.secretReason, f.secretErr.Error())
	case s.DesiredReady == 0:
		setCondition(b, v1alpha1.ReadyCondition, false, v1alpha1.ReasonNoTargets,
			fmt.Sprintf("no cluster in namespace %s matches the targets", b.Namespace))
	case s.Ready < s.DesiredReady:
		reason := v1alpha1.ReasonClustersNotReady
		if f.paused {
			reason = v1alpha1.ReasonPaused
		}
		setCondition(b, v1alpha1.ReadyCondition, false, reason, truncateLong(NotReadyMessage(s)))
	default:
		setCondition(b, v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("%d/%d clusters ready", s.Ready, s.DesiredReady))
	}
}

// truncateLong keeps condition messages well under the API's 32 KiB limit.
func truncateLong(s string) string {
	const max = 8192
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

// setStatus computes the whole status from the facts.
func setStatus(b *v1alpha1.Bundle, f *facts) {
	b.Status.ObservedGeneration = b.Generation
	setTargetedCondition(b, f)
	setSummary(b, f)
	setReadyCondition(b, f)
}
