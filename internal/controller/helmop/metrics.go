package helmop

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/helmops/helmops/api/v1alpha1"
)

var (
	helmOpLabels = []string{"name", "namespace", "repo", "chart", "version"}

	desiredReadyClusters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fleet_helmop_desired_ready_clusters", Help: "Clusters targeted by the HelmOp.",
	}, helmOpLabels)
	readyClusters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fleet_helmop_ready_clusters", Help: "Targeted clusters where the HelmOp's release is ready.",
	}, helmOpLabels)
	// resources counts the HelmOp's BundleDeployments by state, as Fleet's fleet_helmop_resources_* do.
	resources      = map[string]*prometheus.GaugeVec{}
	resourceStates = map[string]func(s v1alpha1.BundleSummary) int{
		"desired_ready": func(s v1alpha1.BundleSummary) int { return s.DesiredReady },
		"ready":         func(s v1alpha1.BundleSummary) int { return s.Ready },
		"not_ready":     func(s v1alpha1.BundleSummary) int { return s.NotReady },
		"wait_applied":  func(s v1alpha1.BundleSummary) int { return s.WaitApplied },
		"err_applied":   func(s v1alpha1.BundleSummary) int { return s.ErrApplied },
		"out_of_sync":   func(s v1alpha1.BundleSummary) int { return s.OutOfSync },
		"modified":      func(s v1alpha1.BundleSummary) int { return s.Modified },
		"pending":       func(s v1alpha1.BundleSummary) int { return s.Pending },
	}

	pollsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helmops_polls_total", Help: "Polls of chart repositories by HelmOps, by result (success, failure).",
	}, []string{"result"})
	reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "helmops_helmop_reconcile_duration_seconds", Help: "Duration of HelmOp reconciles, resolution included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
	})
)

func init() {
	metrics.Registry.MustRegister(desiredReadyClusters, readyClusters, pollsTotal, reconcileDuration, newerVersionAvailable)
	for state := range resourceStates {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleet_helmop_resources_" + state, Help: "BundleDeployments of the HelmOp in state " + state + ".",
		}, helmOpLabels)
		resources[state] = g
		metrics.Registry.MustRegister(g)
	}
}

func recordMetrics(op *v1alpha1.HelmOp) {
	deleteMetrics(op.Namespace, op.Name) // the version label may have changed
	helm := op.Spec.HelmOrEmpty()
	l := prometheus.Labels{"name": op.Name, "namespace": op.Namespace, "repo": helm.Repo, "chart": helm.Chart, "version": op.Status.Version}
	desiredReadyClusters.With(l).Set(float64(op.Status.DesiredReadyClusters))
	readyClusters.With(l).Set(float64(op.Status.ReadyClusters))
	for state, count := range resourceStates {
		resources[state].With(l).Set(float64(count(op.Status.Summary)))
	}
	recordLatestMetric(op)
}

func deleteMetrics(namespace, name string) {
	l := prometheus.Labels{"name": name, "namespace": namespace}
	desiredReadyClusters.DeletePartialMatch(l)
	readyClusters.DeletePartialMatch(l)
	newerVersionAvailable.DeletePartialMatch(l)
	for _, g := range resources {
		g.DeletePartialMatch(l)
	}
}
