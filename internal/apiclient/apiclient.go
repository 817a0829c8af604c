// Package apiclient holds the client-side rate limits helmops sets on its Kubernetes clients and
// why they are what they are.
//
// client-go throttles each REST client with a token bucket (QPS, burst). controller-runtime's
// client builds one REST client per resource kind, so the limit applies per kind: HelmOp writes,
// Bundle writes and BundleDeployment writes each have their own bucket. Without a setting,
// client-go allows 5 requests/s with a burst of 10, which lets one controller write about 5
// HelmOp statuses per second: 100 HelmOps polling every 2 s already need 50.
//
// The server protects itself (API Priority and Fairness), so the client limit is a guard against
// a runaway loop, not the governor of throughput: it is set at what one kube-apiserver on
// 2 cores sustains for one kind (docs/benchmarks.md has the measurements), so on such a server
// the apiserver, not the client, is what bounds a large fan-out.
package apiclient

import "k8s.io/client-go/rest"

const (
	// ControllerQPS and ControllerBurst limit each resource kind's client of `helmops controller`.
	ControllerQPS   = 200
	ControllerBurst = 400
	// AgentUpstreamQPS and AgentUpstreamBurst limit an agent's client of the management cluster.
	// Many agents share that apiserver, so they are lower than the controller's: an agent writes
	// one status per BundleDeployment that changed, and 500 of them fit in 10 s.
	AgentUpstreamQPS   = 50
	AgentUpstreamBurst = 100
	// AgentDownstreamQPS and AgentDownstreamBurst limit an agent's client of its own cluster,
	// which Helm installs and upgrades use (about ten requests per upgrade of a small chart).
	AgentDownstreamQPS   = 100
	AgentDownstreamBurst = 200
)

// WithLimits returns a copy of cfg that allows qps requests per second with the given burst per
// REST client.
func WithLimits(cfg *rest.Config, qps float32, burst int) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.QPS, out.Burst = qps, burst
	out.RateLimiter = nil
	return out
}
