package cluster

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/bundle"
	"github.com/helmops/helmops/internal/deploystate"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/resourcecounts"
)

// facts are what the Cluster reconcile observed; the status is computed from them alone.
type facts struct {
	now     time.Time
	timeout time.Duration
	// version is the controller's own helmops version.
	version string

	// namespace is the cluster namespace, once it exists.
	namespace string
	// namespaceErr is set when the namespace name is taken by something else.
	namespaceErr error
	// namespaceWaiting is set while the namespace is being deleted.
	namespaceWaiting string
	// deployments are the BundleDeployments in the cluster namespace; listed is true once they
	// were listed.
	deployments []v1alpha1.BundleDeployment
	listed      bool
}

func setCondition(conds *[]metav1.Condition, gen int64, t string, ok bool, reason, msg string, now time.Time) {
	lifecycle.SetCondition(conds, gen, t, lifecycle.Bool(ok), reason, msg, now)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// setReadyCondition is True while the agent's last heartbeat is within the timeout. A cluster
// whose agent never reported is False with WaitingForAgent; a stale heartbeat is False with
// AgentNotSeen. A cluster namespace problem comes first. The messages do not change between
// heartbeats, so a heartbeat alone causes no status write.
func setReadyCondition(c *v1alpha1.Cluster, f *facts) {
	set := func(ok bool, reason, msg string) {
		setCondition(&c.Status.Conditions, c.Generation, v1alpha1.ReadyCondition, ok, reason, msg, f.now)
	}
	last := c.Status.Agent.LastSeen
	switch {
	case f.namespaceErr != nil:
		set(false, v1alpha1.ReasonInvalidSpec, f.namespaceErr.Error())
	case f.namespaceWaiting != "":
		set(false, v1alpha1.ReasonProgressing, f.namespaceWaiting)
	case last == nil:
		set(false, v1alpha1.ReasonWaitingForAgent, fmt.Sprintf("waiting for the agent of cluster %s to report", c.Name))
	case f.now.Sub(last.Time) > f.timeout:
		set(false, v1alpha1.ReasonAgentNotSeen, fmt.Sprintf("agent last seen at %s, more than %s ago",
			last.UTC().Format(time.RFC3339), f.timeout))
	default:
		set(true, v1alpha1.ReasonAgentSeen, fmt.Sprintf("agent seen within the last %s", f.timeout))
	}
}

// setAgentUpToDateCondition compares the version the agent reported with the controller's: True
// when they are the same, False with VersionSkew (saying which is newer when both are semantic
// versions) when not. Without a reported version there is nothing to compare and no condition.
func setAgentUpToDateCondition(c *v1alpha1.Cluster, f *facts) {
	agent := c.Status.Agent.Version
	if agent == "" || f.version == "" {
		meta.RemoveStatusCondition(&c.Status.Conditions, v1alpha1.AgentUpToDateCondition)
		return
	}
	set := func(ok bool, reason, msg string) {
		setCondition(&c.Status.Conditions, c.Generation, v1alpha1.AgentUpToDateCondition, ok, reason, msg, f.now)
	}
	if agent == f.version {
		set(true, v1alpha1.ReasonSameVersion, fmt.Sprintf("the agent runs helmops %s, as the controller does", agent))
		return
	}
	skew := "another version than"
	a, aerr := semver.NewVersion(agent)
	ctl, cerr := semver.NewVersion(f.version)
	if aerr == nil && cerr == nil {
		skew = "an older version than"
		if a.GreaterThan(ctl) {
			skew = "a newer version than"
		}
	}
	set(false, v1alpha1.ReasonVersionSkew, fmt.Sprintf("the agent runs helmops %s, %s the controller's %s: upgrade the agent to %s "+
		"(the helmops-agent chart of that version; an agent the controller installed through spec.kubeConfigSecret is upgraded by it)",
		agent, skew, f.version, f.version))
}

// setSummary counts the cluster's BundleDeployments (summary, readyHelmOps and
// desiredReadyHelmOps: those labelled with fleet.cattle.io/fleet-helm-name) and their resources
// (resourceCounts), and writes the display.
func setSummary(c *v1alpha1.Cluster, f *facts) {
	entries := make([]bundle.Entry, 0, len(f.deployments))
	ready, desired := 0, 0
	c.Status.ResourceCounts = v1alpha1.ResourceCounts{}
	for i := range f.deployments {
		bd := &f.deployments[i]
		resourcecounts.Add(&c.Status.ResourceCounts, resourcecounts.Of(bd))
		name := bd.Labels[v1alpha1.BundleNamespaceLabel] + "/" + bd.Labels[v1alpha1.BundleNameLabel]
		if bd.Labels[v1alpha1.BundleNameLabel] == "" {
			name = bd.Name
		}
		entries = append(entries, bundle.Entry{Name: name, BundleDeployment: bd})
		if bd.Labels[v1alpha1.HelmOpLabel] != "" {
			desired++
			if s, _ := deploystate.Of(bd); s == deploystate.Ready {
				ready++
			}
		}
	}
	s := bundle.Summarize(entries)
	c.Status.Summary = s
	c.Status.ReadyHelmOps, c.Status.DesiredReadyHelmOps = ready, desired
	c.Status.Display.ReadyBundles = fmt.Sprintf("%d/%d", s.Ready, s.DesiredReady)
	c.Status.Display.State = ""
	if w := bundle.WorstState(s); w != deploystate.Ready {
		c.Status.Display.State = string(w)
	}
}

// setStatus computes the status from the facts and the error the reconcile ended with. A
// transient error before the cluster namespace was read leaves Ready as it was (Unknown when there
// was none); one before the BundleDeployments were listed leaves the summary as it was; and
// observedGeneration advances only without one.
func setStatus(c *v1alpha1.Cluster, f *facts, err error) {
	transient := lifecycle.IsTransient(err)
	if !transient {
		c.Status.ObservedGeneration = c.Generation
	}
	if f.namespace != "" {
		c.Status.Namespace = f.namespace
	}
	switch {
	case !transient || f.namespace != "":
		setReadyCondition(c, f)
	case meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition) == nil:
		lifecycle.SetCondition(&c.Status.Conditions, c.Generation, v1alpha1.ReadyCondition, metav1.ConditionUnknown, v1alpha1.ReasonTransientError, err.Error(), f.now)
	}
	if f.namespace != "" && (f.listed || !transient) {
		setSummary(c, f)
	}
	setAgentUpToDateCondition(c, f)
}

// maxNonReadyClusters is how many non-ready clusters a ClusterGroup names.
const maxNonReadyClusters = 10

// clusterNotReady says why a cluster counts as not ready in a group: its Ready condition is not
// True, or not all its BundleDeployments are ready. Empty when it is ready.
func clusterNotReady(c *v1alpha1.Cluster) string {
	cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition)
	switch {
	case cond == nil:
		return "not reconciled yet"
	case cond.Status != metav1.ConditionTrue:
		return cond.Message
	case c.Status.Summary.Ready < c.Status.Summary.DesiredReady:
		return fmt.Sprintf("%d/%d bundles ready", c.Status.Summary.Ready, c.Status.Summary.DesiredReady)
	}
	return ""
}

// setGroupStatus counts the group's member clusters; selectorErr is set when the group's
// selector is malformed (it then has no members).
func setGroupStatus(g *v1alpha1.ClusterGroup, members []v1alpha1.Cluster, selectorErr error) {
	g.Status.ObservedGeneration = g.Generation
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	var notReady, reasons []string
	sum := v1alpha1.BundleSummary{}
	g.Status.ResourceCounts = v1alpha1.ResourceCounts{}
	for i := range members {
		c := &members[i]
		resourcecounts.Add(&g.Status.ResourceCounts, c.Status.ResourceCounts)
		if why := clusterNotReady(c); why != "" {
			notReady = append(notReady, c.Name)
			if len(reasons) < maxNonReadyClusters {
				reasons = append(reasons, c.Name+" ("+why+")")
			}
		}
		addSummary(&sum, c.Name, c.Status.Summary)
	}
	g.Status.ClusterCount = len(members)
	g.Status.NonReadyClusterCount = len(notReady)
	if len(notReady) > maxNonReadyClusters {
		notReady = notReady[:maxNonReadyClusters]
	}
	g.Status.NonReadyClusters = notReady
	g.Status.Summary = sum
	ready := len(members) - g.Status.NonReadyClusterCount
	g.Status.Display = v1alpha1.ClusterGroupDisplay{
		ReadyClusters: fmt.Sprintf("%d/%d", ready, len(members)),
		ReadyBundles:  fmt.Sprintf("%d/%d", sum.Ready, sum.DesiredReady),
	}
	if w := bundle.WorstState(sum); w != deploystate.Ready {
		g.Status.Display.State = string(w)
	} else if g.Status.NonReadyClusterCount > 0 {
		g.Status.Display.State = "NotReady"
	}
	setGroupReadyCondition(g, ready, reasons, selectorErr)
}

// addSummary adds one cluster's summary to a group's, naming its non-ready resources after it.
func addSummary(sum *v1alpha1.BundleSummary, cluster string, s v1alpha1.BundleSummary) {
	sum.Ready += s.Ready
	sum.DesiredReady += s.DesiredReady
	sum.NotReady += s.NotReady
	sum.WaitApplied += s.WaitApplied
	sum.ErrApplied += s.ErrApplied
	sum.OutOfSync += s.OutOfSync
	sum.Modified += s.Modified
	sum.Pending += s.Pending
	for _, r := range s.NonReadyResources {
		if len(sum.NonReadyResources) < maxNonReadyClusters {
			r.Name = cluster + ": " + r.Name
			sum.NonReadyResources = append(sum.NonReadyResources, r)
		}
	}
}

// setGroupReadyCondition is True when every member is ready, False naming those that are not.
func setGroupReadyCondition(g *v1alpha1.ClusterGroup, ready int, reasons []string, selectorErr error) {
	set := func(ok bool, reason, msg string) {
		setCondition(&g.Status.Conditions, g.Generation, v1alpha1.ReadyCondition, ok, reason, msg, time.Time{})
	}
	switch {
	case selectorErr != nil:
		set(false, v1alpha1.ReasonInvalidSpec, selectorErr.Error())
	case g.Status.NonReadyClusterCount > 0:
		msg := fmt.Sprintf("%d/%d clusters ready; not ready: %s", ready, g.Status.ClusterCount, strings.Join(reasons, ", "))
		if more := g.Status.NonReadyClusterCount - len(reasons); more > 0 {
			msg += fmt.Sprintf(" and %d more", more)
		}
		set(false, v1alpha1.ReasonClustersNotReady, msg)
	default:
		set(true, v1alpha1.ReasonSucceeded, fmt.Sprintf("%d/%d clusters ready", ready, g.Status.ClusterCount))
	}
}
