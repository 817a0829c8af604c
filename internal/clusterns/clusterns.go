// Package clusterns names the namespace of a Cluster on the management cluster and says whether
// a namespace is the one the cluster controller created for it. The name is computed from the
// Cluster's workspace and name alone, never read from a field an agent could write, so that no
// agent can send another cluster's deployments or secrets to itself.
package clusterns

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

// Name is the cluster namespace of Cluster workspace/cluster: readable, unique (a hash of both
// names) and at most 63 characters.
func Name(workspace, cluster string) string {
	sum := sha256.Sum256([]byte(workspace + "/" + cluster))
	hash := hex.EncodeToString(sum[:])[:12]
	readable := sanitize("cluster-" + workspace + "-" + cluster)
	if max := 63 - len(hash) - 1; len(readable) > max {
		readable = strings.TrimRight(readable[:max], "-")
	}
	return readable + "-" + hash
}

func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			b[i] = '-'
		}
	}
	return string(b)
}

// Labels mark a namespace as the cluster namespace of Cluster workspace/cluster.
func Labels(workspace, cluster string) map[string]string {
	return map[string]string{
		v1alpha1.ManagedLabel:          "true",
		v1alpha1.ClusterLabel:          cluster,
		v1alpha1.ClusterNamespaceLabel: workspace,
	}
}

// Owns reports whether ns is the cluster namespace the cluster controller created for Cluster
// workspace/cluster: its name and its labels (which only the controller writes) say so.
func Owns(workspace, cluster string, ns metav1.Object) bool {
	if ns.GetName() != Name(workspace, cluster) {
		return false
	}
	got := ns.GetLabels()
	for k, v := range Labels(workspace, cluster) {
		if got[k] != v {
			return false
		}
	}
	return true
}

// AgentLease is the name of the Lease in a cluster namespace that the cluster's agent renews as
// its heartbeat. The cluster controller creates it; the agent may only read and update it.
const AgentLease = "helmops-agent"

// AgentVersionAnnotation on the agent's Lease is the version of the agent that renewed it.
const AgentVersionAnnotation = "fleet.cattle.io/agent-version"
