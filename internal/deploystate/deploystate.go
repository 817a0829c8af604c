// Package deploystate says what state a BundleDeployment is in, from what its agent reported,
// and why. The agent (its display), the bundle and cluster roll-ups and the CLI all use it.
package deploystate

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

// State is the state of one BundleDeployment (Fleet's display states).
type State string

// The states, from best to worst (see Rank).
const (
	Ready       State = "Ready"
	NotReady    State = "NotReady"
	Pending     State = "Pending"
	OutOfSync   State = "OutOfSync"
	Modified    State = "Modified"
	WaitApplied State = "WaitApplied"
	ErrApplied  State = "ErrApplied"
)

// Rank orders the states from best (0) to worst.
func Rank(s State) int {
	switch s {
	case Ready:
		return 0
	case NotReady:
		return 1
	case Pending:
		return 2
	case OutOfSync:
		return 3
	case Modified:
		return 4
	case WaitApplied:
		return 5
	case ErrApplied:
		return 6
	}
	return 7
}

// Of is the state of a BundleDeployment, checked in this order:
//   - ErrApplied: the Deployed condition is False for a failure (not while progressing or paused);
//   - WaitApplied: nothing was applied yet;
//   - OutOfSync: the applied deploymentID is not the current one (an update in progress, or held
//     by paused);
//   - WaitApplied: deployed, but the agent could not check the resources yet (Monitored False);
//   - Modified: resources drifted (modifiedStatus is not empty);
//   - NotReady: status.ready is false or Deployed is not True;
//   - Ready otherwise.
//
// The message says why, for every state but Ready.
func Of(bd *v1alpha1.BundleDeployment) (State, string) {
	deployed := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.DeployedCondition)
	ready := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.ReadyCondition)
	monitored := meta.FindStatusCondition(bd.Status.Conditions, v1alpha1.MonitoredCondition)
	switch {
	case deployed != nil && deployed.Status == metav1.ConditionFalse &&
		deployed.Reason != v1alpha1.ReasonProgressing && deployed.Reason != v1alpha1.ReasonPaused:
		return ErrApplied, orDefault(deployed.Message, deployed.Reason)
	case bd.Status.AppliedDeploymentID == "":
		switch {
		case bd.Spec.Paused:
			return WaitApplied, "paused before the first deployment"
		case deployed != nil && deployed.Message != "":
			return WaitApplied, deployed.Message
		}
		return WaitApplied, "waiting for the agent to deploy"
	case bd.Status.AppliedDeploymentID != bd.Spec.DeploymentID:
		if bd.Spec.Paused {
			return OutOfSync, "paused: the deployed release is older than the spec"
		}
		return OutOfSync, "the agent has not deployed the current spec yet"
	case monitored != nil && monitored.Status == metav1.ConditionFalse && deployed != nil && deployed.Status == metav1.ConditionTrue:
		return WaitApplied, orDefault(monitored.Message, "the agent has not checked the resources yet")
	case len(bd.Status.ModifiedStatus) > 0:
		return Modified, ModifiedMessage(bd.Status.ModifiedStatus)
	case !bd.Status.Ready || deployed == nil || deployed.Status != metav1.ConditionTrue:
		if ready != nil && ready.Status != metav1.ConditionTrue && ready.Message != "" {
			return NotReady, ready.Message
		}
		if len(bd.Status.NonReadyStatus) > 0 {
			return NotReady, NonReadyMessage(bd.Status.NonReadyStatus)
		}
		return NotReady, "resources are not ready"
	}
	return Ready, ""
}

// ModifiedMessage names the drifted resources: "ConfigMap app/cfg modified; Secret s missing".
func ModifiedMessage(ms []v1alpha1.ModifiedStatus) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		id := resourceID(m.Kind, m.Namespace, m.Name)
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

// NonReadyMessage names the resources that are not ready and why:
// "Deployment app/web InProgress: Available: 0/1".
func NonReadyMessage(ns []v1alpha1.NonReadyStatus) string {
	parts := make([]string, 0, len(ns))
	for _, n := range ns {
		msg := resourceID(n.Kind, n.Namespace, n.Name) + " " + n.Summary.State
		if len(n.Summary.Message) > 0 {
			msg += ": " + strings.Join(n.Summary.Message, ", ")
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

func resourceID(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
