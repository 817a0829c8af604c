package helmop

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/fleetcompat"
	"github.com/helmops/helmops/internal/lifecycle"
)

const reasonBundleWriteFailed = "BundleWriteFailed"

// computeStatus writes the whole status from the facts of one reconcile and the error it ended
// with. A transient error leaves what was not observed as it was (the Bundle's roll-up), makes
// Accepted Unknown when no fact explains it, and keeps observedGeneration: the spec was not fully
// handled. So does a resolution that failed for a reason other than no matching version.
func computeStatus(op *v1alpha1.HelmOp, f *facts, err error, now time.Time) {
	c := conditions{op: op, now: now}
	var nm *chartversion.NoMatchError
	if !lifecycle.IsTransient(err) && (f.resolveErr == nil || errors.As(f.resolveErr, &nm)) {
		op.Status.ObservedGeneration = op.Generation
	}
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
		op.Status.ResourceCounts = b.ResourceCounts
		op.Status.PerClusterResourceCounts = b.PerClusterResourceCounts
		op.Status.Resources = b.Resources
	}
	setAcceptedCondition(c, f, err)
	noteNotApplicable(c, f)
	setPolledCondition(c, f)
	setLatestVersion(c, f)
	setReadyCondition(c, f, err)
	setStalledCondition(c, f)
	setReconcilingCondition(c, err)
}

// conditions sets the conditions of one HelmOp at one time.
type conditions struct {
	op  *v1alpha1.HelmOp
	now time.Time
}

func (c conditions) set(t string, status metav1.ConditionStatus, reason, msg string) {
	lifecycle.SetCondition(&c.op.Status.Conditions, c.op.Generation, t, status, reason, msg, c.now)
}

func setAcceptedCondition(c conditions, f *facts, err error) {
	var ic *chartversion.InvalidConstraintError
	var nm *chartversion.NoMatchError
	switch {
	case f.specErr != nil && errors.As(f.specErr, &ic):
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonInvalidConstraint, f.specErr.Error())
	case f.specErr != nil:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, f.specErr.Error())
	case f.policyErr != nil:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation, f.policyErr.Error())
	case f.secretErr != nil:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, f.secretErr.Error())
	case f.bundleForeign:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonBundleConflict, f.bundleErr.Error())
	case f.resolveErr != nil && errors.As(f.resolveErr, &nm):
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonNoMatchingVersion, f.resolveErr.Error())
	case f.resolveErr != nil:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, v1alpha1.ReasonResolveFailed, f.resolveErr.Error())
	case f.bundleErr != nil:
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionFalse, reasonBundleWriteFailed, f.bundleErr.Error())
	case f.bundle != nil:
		msg := "Bundle written with the chart archive"
		if f.version != "" {
			msg = "Bundle written with chart version " + f.version
		}
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, msg)
	case lifecycle.IsTransient(err):
		c.set(v1alpha1.AcceptedCondition, metav1.ConditionUnknown, v1alpha1.ReasonTransientError, err.Error())
	}
}

// noteNotApplicable appends the fields that mean nothing for a HelmOp to the Accepted message,
// whatever its status, so they are never ignored silently.
func noteNotApplicable(c conditions, f *facts) {
	msg := fleetcompat.Message(f.notApplicable)
	accepted := meta.FindStatusCondition(c.op.Status.Conditions, v1alpha1.AcceptedCondition)
	if msg == "" || accepted == nil || strings.Contains(accepted.Message, msg) {
		return
	}
	c.set(v1alpha1.AcceptedCondition, accepted.Status, accepted.Reason, accepted.Message+"; fields "+msg)
}

// acceptedSays reports whether the Accepted condition already carries msg.
func acceptedSays(op *v1alpha1.HelmOp, msg string) bool {
	c := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
	return c != nil && c.ObservedGeneration == op.Generation && strings.Contains(c.Message, msg)
}

func setPolledCondition(c conditions, f *facts) {
	op := c.op
	switch {
	case !f.polling:
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.PolledCondition)
	case !f.pollAttempted:
		// No poll this time: the last result stands.
	case f.pollErr != nil:
		c.set(v1alpha1.PolledCondition, metav1.ConditionFalse, v1alpha1.ReasonPollFailed, f.pollErr.Error())
	default:
		c.set(v1alpha1.PolledCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, "The repository was polled; the newest matching version is "+op.Status.Version)
	}
}

func setReadyCondition(c conditions, f *facts, err error) {
	op := c.op
	if bundleUnobserved(c, f, err) {
		return
	}
	accepted := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
	if accepted == nil || accepted.Status != metav1.ConditionTrue {
		msg := "Waiting for the chart version to be resolved"
		if accepted != nil {
			msg = accepted.Message
		}
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonNotAccepted, msg)
		return
	}
	b := f.bundle
	if b == nil {
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "Waiting for the Bundle")
		return
	}
	if t := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.TargetedCondition); t != nil && t.Status == metav1.ConditionFalse {
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, t.Reason, t.Message)
		return
	}
	ready := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ReadyCondition)
	switch {
	case ready == nil || b.Status.ObservedGeneration < b.Generation:
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "Waiting for the BundleDeployments of the Bundle")
	case b.Status.Summary.DesiredReady == 0:
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonNoTargets, "No cluster matches the targets")
	case ready.Status == metav1.ConditionTrue:
		c.set(v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.ReasonSucceeded,
			fmt.Sprintf("Deployed on %d/%d clusters", b.Status.Summary.Ready, b.Status.Summary.DesiredReady))
	case ready.Reason == v1alpha1.ReasonRolloutHalted || ready.Reason == v1alpha1.ReasonRollingOut:
		// The rollout's own reason: halted on failures, or holding clusters back.
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, ready.Reason, ready.Message)
	default:
		c.set(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonClustersNotReady, ready.Message)
	}
}

// bundleUnobserved reports whether a transient error kept the Bundle from being read while nothing
// else explains Ready: its roll-up then keeps its last value (Unknown when there was none).
func bundleUnobserved(c conditions, f *facts, err error) bool {
	accepted := c.op.Condition(v1alpha1.AcceptedCondition)
	if !lifecycle.IsTransient(err) || f.bundle != nil || accepted != nil && accepted.Status == metav1.ConditionFalse {
		return false
	}
	if c.op.Condition(v1alpha1.ReadyCondition) == nil {
		c.set(v1alpha1.ReadyCondition, metav1.ConditionUnknown, v1alpha1.ReasonTransientError, err.Error())
	}
	return true
}

func setStalledCondition(c conditions, f *facts) {
	op := c.op
	switch {
	case f.specErr != nil:
		c.set(v1alpha1.StalledCondition, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec, f.specErr.Error())
	case f.policyErr != nil:
		c.set(v1alpha1.StalledCondition, metav1.ConditionTrue, v1alpha1.ReasonPolicyViolation, f.policyErr.Error())
	case f.bundleForeign:
		c.set(v1alpha1.StalledCondition, metav1.ConditionTrue, v1alpha1.ReasonBundleConflict, f.bundleErr.Error())
	default:
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.StalledCondition)
	}
}

// setReconcilingCondition is True while the HelmOp is on its way to Ready and not stalled, and
// while a transient error is retried.
func setReconcilingCondition(c conditions, err error) {
	op := c.op
	if lifecycle.IsTransient(err) {
		c.set(v1alpha1.ReconcilingCondition, metav1.ConditionTrue, v1alpha1.ReasonTransientError, err.Error())
		return
	}
	ready := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.ReadyCondition)
	if meta.IsStatusConditionTrue(op.Status.Conditions, v1alpha1.StalledCondition) || ready == nil || ready.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.ReconcilingCondition)
		return
	}
	c.set(v1alpha1.ReconcilingCondition, metav1.ConditionTrue, v1alpha1.ReasonProgressing, ready.Message)
}
