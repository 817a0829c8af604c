package helmop

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartversion"
)

// newerVersionAvailable is 1 for a HelmOp whose repository offers a stable version newer than
// the resolved one that its constraint excludes, 0 otherwise; its series go with the HelmOp.
var newerVersionAvailable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "helmops_helmop_newer_version_available",
	Help: "1 when the repository offers a stable version (label latest) newer than the resolved one (label version) that the HelmOp's constraint excludes.",
}, []string{"name", "namespace", "version", "latest"})

// latestFacts is what a resolution says about the versions the repository offers.
type latestFacts struct {
	// latestKnown is true when this reconcile resolved spec.helm (or found it is a chart archive).
	latestKnown bool
	// latest is the newest stable version offered; empty when the versions were not listed.
	latest string
}

// setLatestVersion records the newest stable version the repository offers and the
// NewerVersionAvailable condition. A reconcile that did not resolve keeps both as they were.
func setLatestVersion(c conditions, f *facts) {
	op := c.op
	if f.latestKnown {
		op.Status.LatestAvailableVersion = f.latest
	}
	msg, newer := newerVersionMessage(op.Spec.HelmOrEmpty().Version, op.Status.Version, op.Status.LatestAvailableVersion)
	if !newer {
		meta.RemoveStatusCondition(&op.Status.Conditions, v1alpha1.NewerVersionAvailableCondition)
		return
	}
	c.set(v1alpha1.NewerVersionAvailableCondition, metav1.ConditionTrue, v1alpha1.ReasonOutsideConstraint, msg)
}

// newerVersionMessage says whether latest is newer than the resolved version, and how the
// constraint keeps it out: "1.4.2 is available; the constraint ~1.3 keeps 1.3.9".
func newerVersionMessage(constraint, version, latest string) (string, bool) {
	if version == "" || latest == "" {
		return "", false
	}
	v, err1 := semver.NewVersion(version)
	l, err2 := semver.NewVersion(latest)
	if err1 != nil || err2 != nil || !l.GreaterThan(v) {
		return "", false
	}
	if chartversion.IsStatic(constraint) {
		return fmt.Sprintf("%s is available; helm.version pins %s", latest, version), true
	}
	return fmt.Sprintf("%s is available; the constraint %s keeps %s", latest, constraint, version), true
}

func recordLatestMetric(op *v1alpha1.HelmOp) {
	if op.Status.Version == "" {
		return
	}
	value := 0.0
	if meta.IsStatusConditionTrue(op.Status.Conditions, v1alpha1.NewerVersionAvailableCondition) {
		value = 1
	}
	newerVersionAvailable.With(prometheus.Labels{"name": op.Name, "namespace": op.Namespace, "version": op.Status.Version,
		"latest": op.Status.LatestAvailableVersion}).Set(value)
}
