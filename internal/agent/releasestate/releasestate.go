// Package releasestate decides what the agent does next with a Helm release. It is pure: the
// facts come from the release history and the BundleDeployment, the decision goes back to the
// reconciler, which runs it through the Helm wrappers.
package releasestate

import "fmt"

// Phase is where a release stands relative to its BundleDeployment.
type Phase string

const (
	// Absent: no release exists.
	Absent Phase = "Absent"
	// InSync: the release is deployed for the desired deploymentID and its resources match.
	InSync Phase = "InSync"
	// OutOfSync: the release is deployed, but for an older deploymentID.
	OutOfSync Phase = "OutOfSync"
	// Failed: the newest revision failed (or was superseded without a deployed successor).
	Failed Phase = "Failed"
	// Locked: the newest revision is pending-install, -upgrade or -rollback.
	Locked Phase = "Locked"
	// Drifted: deployed for the desired deploymentID, but resources were changed or deleted.
	Drifted Phase = "Drifted"
	// Deleting: the BundleDeployment is being deleted.
	Deleting Phase = "Deleting"
	// Foreign: a release of that name exists that this BundleDeployment did not install.
	Foreign Phase = "Foreign"
)

// Action is the next step.
type Action string

const (
	// None: nothing to do.
	None Action = "None"
	// Install a new release.
	Install Action = "Install"
	// Upgrade the release to the desired chart and values (also retries a failed release).
	Upgrade Action = "Upgrade"
	// Recover marks an interrupted (pending) revision failed so the next operation can run.
	Recover Action = "Recover"
	// Wait: an operation this process started is still running.
	Wait Action = "Wait"
	// CorrectDrift re-applies the current revision's chart and values.
	CorrectDrift Action = "CorrectDrift"
	// Uninstall removes the release and its resources.
	Uninstall Action = "Uninstall"
	// Forget removes the release records but keeps the resources.
	Forget Action = "Forget"
	// Finalize: nothing left downstream; let the BundleDeployment go.
	Finalize Action = "Finalize"
	// Refuse: the release belongs to someone else; change nothing and say so.
	Refuse Action = "Refuse"
)

// Helm release statuses, as stored by Helm.
const (
	StatusDeployed        = "deployed"
	StatusFailed          = "failed"
	StatusSuperseded      = "superseded"
	StatusUninstalled     = "uninstalled"
	StatusUninstalling    = "uninstalling"
	StatusPendingInstall  = "pending-install"
	StatusPendingUpgrade  = "pending-upgrade"
	StatusPendingRollback = "pending-rollback"
)

// Facts are everything the decision depends on.
type Facts struct {
	// LastStatus is the Helm status of the newest revision; empty when there is no release.
	LastStatus string
	// OperationInFlight is true when this process is running an operation on the release now.
	OperationInFlight bool
	// DesiredID is spec.deploymentID; AppliedID is status.appliedDeploymentID.
	DesiredID, AppliedID string
	// Drifted is true when a release resource differs from the manifest or is missing.
	Drifted bool
	// CorrectDrift is correctDrift.enabled.
	CorrectDrift bool
	// Deleting is true when the BundleDeployment has a deletion timestamp.
	Deleting bool
	// KeepResources is the keepResources option.
	KeepResources bool
	// Foreign is true when a release of that name exists (in any status) that this
	// BundleDeployment did not install.
	Foreign bool
}

// Decision is the phase the facts describe and the action to take.
type Decision struct {
	Phase  Phase
	Action Action
	Reason string
}

// IsPending reports whether a Helm status is one of the pending-* statuses.
func IsPending(status string) bool {
	return status == StatusPendingInstall || status == StatusPendingUpgrade || status == StatusPendingRollback
}

// Decide picks the next action.
func Decide(f Facts) Decision {
	if f.Deleting {
		switch {
		case f.LastStatus != "" && f.Foreign:
			return Decision{Deleting, Finalize, "the release belongs to another owner and stays"}
		case f.LastStatus == "" || f.LastStatus == StatusUninstalled:
			return Decision{Deleting, Finalize, "no release left"}
		case IsPending(f.LastStatus) && f.OperationInFlight:
			return Decision{Deleting, Wait, "an operation on the release is still running"}
		case f.KeepResources:
			return Decision{Deleting, Forget, "keepResources: the release's resources stay"}
		default:
			return Decision{Deleting, Uninstall, "the BundleDeployment is being deleted"}
		}
	}
	switch {
	case f.LastStatus != "" && f.Foreign:
		return Decision{Foreign, Refuse, "the release was not installed by this BundleDeployment"}
	case f.LastStatus == "" || f.LastStatus == StatusUninstalled:
		return Decision{Absent, Install, "no release yet"}
	case IsPending(f.LastStatus) && f.OperationInFlight:
		return Decision{Locked, Wait, fmt.Sprintf("release is %s by a running operation", f.LastStatus)}
	case IsPending(f.LastStatus) || f.LastStatus == StatusUninstalling:
		return Decision{Locked, Recover, fmt.Sprintf("release was left %s by an interrupted operation", f.LastStatus)}
	case f.LastStatus != StatusDeployed:
		return Decision{Failed, Upgrade, fmt.Sprintf("newest revision is %s", f.LastStatus)}
	case f.DesiredID != f.AppliedID:
		return Decision{OutOfSync, Upgrade, "deploymentID changed"}
	case f.Drifted && f.CorrectDrift:
		return Decision{Drifted, CorrectDrift, "resources drifted and correctDrift is enabled"}
	case f.Drifted:
		return Decision{Drifted, None, "resources drifted; correctDrift is disabled"}
	default:
		return Decision{InSync, None, "release is deployed for the current deploymentID"}
	}
}
