package chartsource

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	indexRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helmops_index_requests_total",
		Help: "Helm repository index lookups by result: fetched (a body was downloaded), not_modified (the server answered 304), shared (joined a request already in flight), cached (validated within the minimum revalidation interval), error.",
	}, []string{"result"})
	indexFullParses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helmops_index_full_parses_total",
		Help: "Helm repository indexes parsed in full because the fast path does not read them, by reason (a shape of YAML or JSON the fast path leaves to the full parse, see the helmindex package).",
	}, []string{"reason"})
	slowFetchesCut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helmops_slow_fetches_cut_total",
		Help: "Requests cancelled after waiting one second on a host while --max-slow-fetches requests to slow hosts were already waiting; their HelmOps are reconciled again shortly.",
	})
	resolveDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "helmops_resolve_duration_seconds",
		Help:    "Time to resolve a chart version, by source kind (helm, oci, tarball).",
		Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"kind"})
)

func init() {
	metrics.Registry.MustRegister(indexRequests, indexFullParses, resolveDuration, slowFetchesCut)
}
