package agent

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/lifecycle"
)

// facts are what the reconcile steps observed; the conditions are computed from them alone.
type facts struct {
	paused bool

	// downloadErr is set when the chart could not be downloaded or loaded.
	downloadErr error
	// deployErr is set when Helm (or preparing its input, e.g. valuesFrom) failed.
	deployErr    error
	deployReason string
	// waiting is set while an operation this process started is still running.
	waiting string
	// deployed is true when the newest revision is deployed for the desired deploymentID.
	deployed bool
	// releaseStatus is Helm's status of the newest revision, empty when none.
	releaseStatus string
	// deployedBefore is true when a revision of the release was ever deployed.
	deployedBefore bool

	// monitored is true when the release's resources could be read.
	monitored  bool
	monitorErr error
	nonReady   []v1alpha1.NonReadyStatus
	modified   []v1alpha1.ModifiedStatus
}

// downloadReason is ChartDigestMismatch for a chart refused for its content, DownloadFailed
// otherwise.
func downloadReason(err error) string {
	var dm *DigestMismatchError
	if errors.As(err, &dm) {
		return v1alpha1.ReasonChartDigestMismatch
	}
	return v1alpha1.ReasonDownloadFailed
}

func setCondition(bd *v1alpha1.BundleDeployment, t string, ok bool, reason, msg string) {
	lifecycle.SetCondition(&bd.Status.Conditions, bd.Generation, t, lifecycle.Bool(ok), reason, msg, time.Time{})
}

// setInstalledCondition: True when the chart was downloaded and Helm accepted it.
func setInstalledCondition(bd *v1alpha1.BundleDeployment, f *facts) {
	switch {
	case f.downloadErr != nil:
		setCondition(bd, v1alpha1.InstalledCondition, false, downloadReason(f.downloadErr), f.downloadErr.Error())
	case f.deployErr != nil:
		setCondition(bd, v1alpha1.InstalledCondition, false, f.deployReason, f.deployErr.Error())
	case f.deployed:
		setCondition(bd, v1alpha1.InstalledCondition, true, v1alpha1.ReasonSucceeded, "chart installed")
	case f.paused:
		setCondition(bd, v1alpha1.InstalledCondition, false, v1alpha1.ReasonPaused, "the BundleDeployment is paused")
	default:
		setCondition(bd, v1alpha1.InstalledCondition, false, v1alpha1.ReasonProgressing, orDefault(f.waiting, "installing"))
	}
}

// setDeployedCondition: True when the release for the current deploymentID is deployed.
func setDeployedCondition(bd *v1alpha1.BundleDeployment, f *facts) {
	switch {
	case f.downloadErr != nil:
		setCondition(bd, v1alpha1.DeployedCondition, false, downloadReason(f.downloadErr), f.downloadErr.Error())
	case f.deployErr != nil:
		setCondition(bd, v1alpha1.DeployedCondition, false, f.deployReason, f.deployErr.Error())
	case f.deployed:
		setCondition(bd, v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed")
	case f.paused:
		setCondition(bd, v1alpha1.DeployedCondition, false, v1alpha1.ReasonPaused, "the BundleDeployment is paused")
	default:
		setCondition(bd, v1alpha1.DeployedCondition, false, v1alpha1.ReasonProgressing, orDefault(f.waiting, "deploying"))
	}
}

// setMonitoredCondition: True when the release's resources could be checked.
func setMonitoredCondition(bd *v1alpha1.BundleDeployment, f *facts) {
	switch {
	case f.monitorErr != nil:
		setCondition(bd, v1alpha1.MonitoredCondition, false, v1alpha1.ReasonProgressing, "could not check the release's resources: "+f.monitorErr.Error())
	case f.monitored:
		setCondition(bd, v1alpha1.MonitoredCondition, true, v1alpha1.ReasonSucceeded, fmt.Sprintf("%d resources checked", len(bd.Status.Resources)))
	default:
		setCondition(bd, v1alpha1.MonitoredCondition, false, v1alpha1.ReasonProgressing, "no deployed release to check yet")
	}
}

// setReadyCondition: True when deployed, every resource is ready and none drifted. On failure
// the message is Helm's (or the download's) error.
func setReadyCondition(bd *v1alpha1.BundleDeployment, f *facts) {
	switch {
	case f.downloadErr != nil:
		setCondition(bd, v1alpha1.ReadyCondition, false, downloadReason(f.downloadErr), f.downloadErr.Error())
	case f.deployErr != nil:
		setCondition(bd, v1alpha1.ReadyCondition, false, f.deployReason, f.deployErr.Error())
	case f.paused && !f.deployed:
		setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonPaused, "the BundleDeployment is paused")
	case !f.deployed:
		setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonProgressing, orDefault(f.waiting, "deploying"))
	case len(f.modified) > 0:
		setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonModified, deploystate.ModifiedMessage(f.modified))
	case len(f.nonReady) > 0:
		setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonResourcesNotReady, deploystate.NonReadyMessage(f.nonReady))
	case !f.monitored:
		setCondition(bd, v1alpha1.ReadyCondition, false, v1alpha1.ReasonProgressing, "checking the release's resources")
	default:
		setCondition(bd, v1alpha1.ReadyCondition, true, v1alpha1.ReasonSucceeded, "release deployed and every resource ready")
	}
}

// setSummary writes ready, nonModified, the lists and the display from the facts.
func setSummary(bd *v1alpha1.BundleDeployment, f *facts) {
	bd.Status.NonReadyStatus = f.nonReady
	bd.Status.ModifiedStatus = f.modified
	bd.Status.Ready = f.deployed && f.monitored && len(f.nonReady) == 0 && len(f.modified) == 0 && f.downloadErr == nil && f.deployErr == nil
	bd.Status.NonModified = f.monitored && len(f.modified) == 0
	d := &bd.Status.Display
	// As Fleet writes them: the condition's status, or "Error: <message>" when it failed.
	d.Deployed = displayOf(bd, v1alpha1.DeployedCondition, f.downloadErr != nil || f.deployErr != nil)
	d.Monitored = displayOf(bd, v1alpha1.MonitoredCondition, f.monitorErr != nil)
	state, _ := deploystate.Of(bd)
	d.State = string(state)
}

// displayOf is a condition as Fleet's display shows it: "True", "False", "Unknown", or
// "Error: <message>" when failed.
func displayOf(bd *v1alpha1.BundleDeployment, conditionType string, failed bool) string {
	c := meta.FindStatusCondition(bd.Status.Conditions, conditionType)
	switch {
	case c == nil:
		return string(metav1.ConditionUnknown)
	case failed:
		return "Error: " + c.Message
	}
	return string(c.Status)
}

// setStatus computes the status from the facts and the error the reconcile ended with.
// observedGeneration advances unless the reconcile ended in a transient error that no fact
// explains (a failed download or Helm action is a result: it is reported).
func setStatus(bd *v1alpha1.BundleDeployment, f *facts, err error) {
	if !lifecycle.IsTransient(err) || f.downloadErr != nil || f.deployErr != nil {
		bd.Status.ObservedGeneration = bd.Generation
	}
	setInstalledCondition(bd, f)
	setDeployedCondition(bd, f)
	setMonitoredCondition(bd, f)
	setReadyCondition(bd, f)
	setSummary(bd, f)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func resourceID(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}
