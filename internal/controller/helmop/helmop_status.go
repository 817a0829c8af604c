package helmop

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/fleetcompat"
)

const reasonBundleWriteFailed = "BundleWriteFailed"

// computeStatus writes the whole status from the facts of one reconcile.
func computeStatus(op *v1alpha1.HelmOp, f *facts) {
	op.Status.ObservedGeneration = op.Generation
	if f.version != "" {
		op.Status.Version = f.version
	}
	if f.bundle != nil && !f.bundleForeign {
		b := f.bundle.Status
		op.Status.ReadyClusters = b.ReadyClusters
		op.Status.DesiredReadyClusters = b.DesiredReadyClusters
		op.Status.Summary = b.Summary
		op.Status.Display = b.Display
		op.Status.Display.ReadyBundleDeployments = fmt.Sprintf("%d/%d", b.Summary.Ready, b.Summary.DesiredReady)
	}
	setAcceptedCondition(op, f)
	noteNotApplicable(op, f)
	setPolledCondition(op, f)
	setReadyCondition(op, f)
	setStalledCondition(op, f)
	setReconcilingCondition(op)
}

func set(op *v1alpha1.HelmOp, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&op.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: op.Generation,
	})
}

func setAcceptedCondition(op *v1alpha1.HelmOp, f *facts) {
	var ic *chartversion.InvalidConstraintError
	var nm *chartversion.NoMatchError
	switch {
	case f.specErr != nil && errors.As(f.specErr, &ic):
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonInvalidConstraint, f.specErr.Error())
	case f.specErr != nil:
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, f.specErr.Error())
	case f.secretErr != nil:
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, f.secretErr.Error())
	case f.bundleForeign:
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonBundleConflict, f.bundleErr.Error())
	case f.resolveErr != nil && errors.As(f.resolveErr, &nm):
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonNoMatchingVersion, f.resolveErr.Error())
	case f.resolveErr != nil:
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonResolveFailed, f.resolveErr.Error())
	case f.bundleErr != nil:
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionFalse, reasonBundleWriteFailed, f.bundleErr.Error())
	case f.bundle != nil:
		msg := "Bundle written with the chart archive"
		if f.version != "" {
			msg = "Bundle written with chart version " + f.version
		}
		set(op, v1alpha1.AcceptedCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, msg)
	}
}

// noteNotApplicable appends the fields that mean nothing for a HelmOp to the Accepted message,
// whatever its status, so they are never ignored silently.
func noteNotApplicable(op *v1alpha1.HelmOp, f *facts) {
	msg := fleetcompat.Message(f.notApplicable)
	c := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
	if msg == "" || c == nil || strings.Contains(c.Message, msg) {
		return
	}
	set(op, v1alpha1.AcceptedCondition, c.Status, c.Reason, c.Message+"; fields "+msg)
}

// acceptedSays reports whether the Accepted condition already carries msg.
func acceptedSays(op *v1alpha1.HelmOp, msg string) bool {
	c := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
	return c != nil && c.ObservedGeneration == op.Generation && strings.Contains(c.Message, msg)
}

func setPolledCondition(op *v1alpha1.HelmOp, f *facts) {
	switch {
	case !f.polling:
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.PolledCondition)
	case !f.pollAttempted:
		// No poll this time: the last result stands.
	case f.pollErr != nil:
		set(op, v1alpha1.PolledCondition, metav1.ConditionFalse, v1alpha1.ReasonPollFailed, f.pollErr.Error())
	default:
		set(op, v1alpha1.PolledCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, "The repository was polled; the newest matching version is "+op.Status.Version)
	}
}

func setReadyCondition(op *v1alpha1.HelmOp, f *facts) {
	accepted := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
	if accepted == nil || accepted.Status != metav1.ConditionTrue {
		msg := "Waiting for the chart version to be resolved"
		if accepted != nil {
			msg = accepted.Message
		}
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonNotAccepted, msg)
		return
	}
	b := f.bundle
	if b == nil {
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "Waiting for the Bundle")
		return
	}
	if t := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.TargetedCondition); t != nil && t.Status == metav1.ConditionFalse {
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, t.Reason, t.Message)
		return
	}
	ready := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ReadyCondition)
	switch {
	case ready == nil || b.Status.ObservedGeneration < b.Generation:
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "Waiting for the BundleDeployments of the Bundle")
	case b.Status.Summary.DesiredReady == 0:
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonNoTargets, "No cluster matches the targets")
	case ready.Status == metav1.ConditionTrue:
		set(op, v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("Deployed on %d/%d clusters", b.Status.Summary.Ready, b.Status.Summary.DesiredReady))
	default:
		set(op, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonClustersNotReady, ready.Message)
	}
}

func setStalledCondition(op *v1alpha1.HelmOp, f *facts) {
	switch {
	case f.specErr != nil:
		set(op, v1alpha1.StalledCondition, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec, f.specErr.Error())
	case f.bundleForeign:
		set(op, v1alpha1.StalledCondition, metav1.ConditionTrue, v1alpha1.ReasonBundleConflict, f.bundleErr.Error())
	default:
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.StalledCondition)
	}
}

// setReconcilingCondition is True while the HelmOp is on its way to Ready and not stalled.
func setReconcilingCondition(op *v1alpha1.HelmOp) {
	ready := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.ReadyCondition)
	if meta.IsStatusConditionTrue(op.Status.Conditions, v1alpha1.StalledCondition) || ready == nil || ready.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.ReconcilingCondition)
		return
	}
	set(op, v1alpha1.ReconcilingCondition, metav1.ConditionTrue, v1alpha1.ReasonProgressing, ready.Message)
}
