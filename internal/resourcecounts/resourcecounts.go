// Package resourcecounts rolls the resources BundleDeployments report up into the fields Fleet
// users read on a HelmOp, a Cluster and a ClusterGroup: resourceCounts (resources by state),
// perClusterResourceCounts, and resources[] with the clusters each resource is in each state on.
//
// A resource's state on one cluster is, in this order: Orphaned (it exists but the release no
// longer has it), Missing (the release has it but it does not exist), Modified (it drifted), the
// kstatus state the agent reported when it is not ready (counted as NotReady), and otherwise the
// deployment's: Ready when the deployment is applied (Ready, NotReady or Modified), else the
// deployment's state (WaitApplied, Pending, OutOfSync, ErrApplied; counted as WaitApplied). The
// package is pure.
package resourcecounts

import (
	"sort"
	"strings"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
)

// The resource states, as Fleet names them.
const (
	Ready       = "Ready"
	NotReady    = "NotReady"
	WaitApplied = "WaitApplied"
	Pending     = "Pending"
	Modified    = "Modified"
	Orphaned    = "Orphaned"
	Missing     = "Missing"
	Unknown     = "Unknown"
)

// maxClusterIDBytes bounds the cluster names listed in resources[].perClusterState.
const maxClusterIDBytes = 1 << 20

// ClusterID names the cluster of a BundleDeployment as Fleet does: "<workspace>/<cluster>".
func ClusterID(bd *v1alpha1.BundleDeployment) string {
	return bd.Labels[v1alpha1.ClusterNamespaceLabel] + "/" + bd.Labels[v1alpha1.ClusterLabel]
}

type key struct{ apiVersion, kind, namespace, name string }

// states returns the state of each resource of one BundleDeployment.
func states(bd *v1alpha1.BundleDeployment) map[key]string {
	def := WaitApplied
	switch s, _ := deploystate.Of(bd); s {
	case deploystate.Ready, deploystate.NotReady, deploystate.Modified:
		def = Ready
	case deploystate.Pending:
		def = Pending
	}
	out := make(map[key]string, len(bd.Status.Resources))
	for _, r := range bd.Status.Resources {
		out[key{r.APIVersion, r.Kind, r.Namespace, r.Name}] = def
	}
	if def != Ready {
		return out // not applied: what was observed belongs to an older deployment
	}
	for _, r := range bd.Status.NonReadyStatus {
		st := r.Summary.State
		if st == "" || st == Ready || st == "Current" {
			st = NotReady
		}
		out[key{r.APIVersion, r.Kind, r.Namespace, r.Name}] = st
	}
	for _, m := range bd.Status.ModifiedStatus {
		st := Modified
		switch {
		case m.Delete:
			st = Orphaned
		case m.Missing:
			st = Missing
		}
		out[key{m.APIVersion, m.Kind, m.Namespace, m.Name}] = st
	}
	return out
}

func count(c *v1alpha1.ResourceCounts, state string) {
	switch state {
	case Ready:
		c.Ready++
	case WaitApplied, Pending:
		c.WaitApplied++
	case Modified:
		c.Modified++
	case Orphaned:
		c.Orphaned++
		return // not part of the release: not desired
	case Missing:
		c.Missing++
	case Unknown:
		c.Unknown++
	default:
		c.NotReady++
	}
	c.DesiredReady++
}

// Add adds src to dst.
func Add(dst *v1alpha1.ResourceCounts, src v1alpha1.ResourceCounts) {
	dst.Ready += src.Ready
	dst.DesiredReady += src.DesiredReady
	dst.WaitApplied += src.WaitApplied
	dst.Modified += src.Modified
	dst.Orphaned += src.Orphaned
	dst.Missing += src.Missing
	dst.Unknown += src.Unknown
	dst.NotReady += src.NotReady
}

// Of counts the resources of one BundleDeployment by state.
func Of(bd *v1alpha1.BundleDeployment) v1alpha1.ResourceCounts {
	var c v1alpha1.ResourceCounts
	for _, st := range states(bd) {
		count(&c, st)
	}
	return c
}

// Rollup is what a HelmOp's status shows about the resources of its deployments.
type Rollup struct {
	Counts     v1alpha1.ResourceCounts
	PerCluster map[string]*v1alpha1.ResourceCounts
	Resources  []v1alpha1.Resource
}

// Roll rolls the deployments of one Bundle up. nil entries are skipped.
func Roll(bds []*v1alpha1.BundleDeployment) Rollup {
	out := Rollup{PerCluster: map[string]*v1alpha1.ResourceCounts{}}
	sorted := make([]*v1alpha1.BundleDeployment, 0, len(bds))
	for _, bd := range bds {
		if bd != nil {
			sorted = append(sorted, bd)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return ClusterID(sorted[i]) < ClusterID(sorted[j]) })

	byKey := map[key][]clusterState{}
	for _, bd := range sorted {
		id := ClusterID(bd)
		c := out.PerCluster[id]
		if c == nil {
			c = &v1alpha1.ResourceCounts{}
			out.PerCluster[id] = c
		}
		for k, st := range states(bd) {
			count(c, st)
			byKey[k] = append(byKey[k], clusterState{id, st})
		}
	}
	for _, c := range out.PerCluster {
		Add(&out.Counts, *c)
	}
	// In the order they are listed, so that the ones past the budget are always the same.
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sortKey(keys[i]) < sortKey(keys[j]) })
	size := 0
	for _, k := range keys {
		out.Resources = append(out.Resources, resourceOf(k, byKey[k], &size))
	}
	return out
}

// sortKey orders resources[] by type and ID.
func sortKey(k key) string { return typeOf(k.apiVersion, k.kind) + "/" + idOf(k.namespace, k.name) }

// clusterState is the state of a resource on one cluster.
type clusterState struct{ cluster, state string }

// resourceOf is the resource k with its state on each cluster: the first state that is not
// Ready, and the clusters per state while the cluster IDs of every resource so far (size) fit
// in maxClusterIDBytes; past that the resource's state is marked incomplete.
func resourceOf(k key, entries []clusterState, size *int) v1alpha1.Resource {
	r := v1alpha1.Resource{
		APIVersion: k.apiVersion, Kind: k.kind, Namespace: k.namespace, Name: k.name,
		Type: typeOf(k.apiVersion, k.kind), ID: idOf(k.namespace, k.name), State: Ready,
		PerClusterState: &v1alpha1.PerClusterState{},
	}
	for _, e := range entries {
		if r.State == Ready {
			r.State = e.state
		}
		*size += len(e.cluster)
		if *size > maxClusterIDBytes {
			r.IncompleteState = true
			continue
		}
		add(r.PerClusterState, e.state, e.cluster)
	}
	r.Error = r.State == "Failed"
	r.Transitioning = r.State == "InProgress" || r.State == WaitApplied || r.State == Pending
	return r
}

func add(p *v1alpha1.PerClusterState, state, cluster string) {
	switch state {
	case Ready:
		p.Ready = append(p.Ready, cluster)
	case WaitApplied:
		p.WaitApplied = append(p.WaitApplied, cluster)
	case Pending:
		p.Pending = append(p.Pending, cluster)
	case Modified:
		p.Modified = append(p.Modified, cluster)
	case Orphaned:
		p.Orphaned = append(p.Orphaned, cluster)
	case Missing:
		p.Missing = append(p.Missing, cluster)
	case Unknown:
		p.Unknown = append(p.Unknown, cluster)
	default:
		p.NotReady = append(p.NotReady, cluster)
	}
}

// typeOf is the lower-cased kind qualified by its API group, as Fleet writes it: "configmap",
// "apps.deployment".
func typeOf(apiVersion, kind string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found || group == "" {
		return strings.ToLower(kind)
	}
	return group + "." + strings.ToLower(kind)
}

func idOf(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
