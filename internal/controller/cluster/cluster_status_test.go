package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestNamespaceName(t *testing.T) {
	tests := []struct {
		workspace, cluster string
		prefix             string
	}{
		{"fleet-default", "dev", "cluster-fleet-default-dev-"},
		{"fleet-local", "local", "cluster-fleet-local-local-"},
		{"fleet-default", "my.cluster.example", "cluster-fleet-default-my-cluster-example-"},
		{"fleet-default", strings.Repeat("a", 80), "cluster-fleet-default-aaaaaaaaaaaaaaaaaaaaaaaaaaaa-"},
		{"ws", "UPPER", "cluster-ws-upper-"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.workspace+"/"+tt.cluster, func(t *testing.T) {
			g := NewWithT(t)
			n := NamespaceName(tt.workspace, tt.cluster)
			g.Expect(len(n)).To(BeNumerically("<=", 63))
			g.Expect(n).To(MatchRegexp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`))
			g.Expect(n).To(HavePrefix(tt.prefix))
			g.Expect(n).To(MatchRegexp(`-[0-9a-f]{12}$`))
			g.Expect(NamespaceName(tt.workspace, tt.cluster)).To(Equal(n), "stable")
			g.Expect(seen[n]).To(BeFalse())
			seen[n] = true
		})
	}
	// Names that sanitise alike still get distinct namespaces.
	NewWithT(t).Expect(NamespaceName("a", "b.c")).NotTo(Equal(NamespaceName("a", "b-c")))
	NewWithT(t).Expect(NamespaceName("a-b", "c")).NotTo(Equal(NamespaceName("a", "b-c")))
}

func TestAgentRequeue(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	tests := []struct {
		name string
		last *metav1.Time
		want time.Duration
	}{
		{"never seen", nil, 0},
		{"just seen", at(0), time.Minute + time.Second},
		{"seen 40s ago", at(-40 * time.Second), 20*time.Second + time.Second},
		{"stale", at(-2 * time.Minute), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(AgentRequeue(tt.last, now, time.Minute)).To(Equal(tt.want))
		})
	}
}

func TestSetReadyCondition(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		last   *metav1.Time
		f      facts
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"never reported", nil, facts{}, metav1.ConditionFalse, v1alpha1.ReasonWaitingForAgent, "waiting for the agent of cluster dev to report"},
		{"fresh", &metav1.Time{Time: now.Add(-30 * time.Second)}, facts{}, metav1.ConditionTrue, v1alpha1.ReasonAgentSeen, "agent seen within the last 1m0s"},
		{"exactly at the timeout", &metav1.Time{Time: now.Add(-time.Minute)}, facts{}, metav1.ConditionTrue, v1alpha1.ReasonAgentSeen, "agent seen within the last 1m0s"},
		{"stale", &metav1.Time{Time: now.Add(-5 * time.Minute)}, facts{}, metav1.ConditionFalse, v1alpha1.ReasonAgentNotSeen,
			"agent last seen at 2026-01-01T11:55:00Z, more than 1m0s ago"},
		{"namespace taken", &metav1.Time{Time: now}, facts{namespaceErr: errors.New("namespace x exists and does not belong")},
			metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "namespace x exists and does not belong"},
		{"namespace terminating", &metav1.Time{Time: now}, facts{namespaceWaiting: "cluster namespace x is being deleted"},
			metav1.ConditionFalse, v1alpha1.ReasonProgressing, "cluster namespace x is being deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "dev", Generation: 2}}
			c.Status.Agent.LastSeen = tt.last
			f := tt.f
			f.now, f.timeout = now, time.Minute
			setReadyCondition(c, &f)
			cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(cond.Status).To(Equal(tt.status))
			g.Expect(cond.Reason).To(Equal(tt.reason))
			g.Expect(cond.Message).To(Equal(tt.msg))
			g.Expect(cond.ObservedGeneration).To(Equal(int64(2)))
		})
	}
}

func TestSetAgentUpToDateCondition(t *testing.T) {
	tests := []struct {
		name, agent, controller string
		status                  metav1.ConditionStatus // "" for no condition
		reason, msg             string
	}{
		{"no version reported", "", "v0.3.0", "", "", ""},
		{"same", "v0.3.0", "v0.3.0", metav1.ConditionTrue, v1alpha1.ReasonSameVersion, "the agent runs helmops v0.3.0, as the controller does"},
		{"older agent", "v0.2.1", "v0.3.0", metav1.ConditionFalse, v1alpha1.ReasonVersionSkew, "the agent runs helmops v0.2.1, an older version than the controller's v0.3.0"},
		{"newer agent", "v0.4.0-rc.1", "v0.3.0", metav1.ConditionFalse, v1alpha1.ReasonVersionSkew, "the agent runs helmops v0.4.0-rc.1, a newer version than the controller's v0.3.0"},
		{"not semantic versions", "dev", "v0.3.0", metav1.ConditionFalse, v1alpha1.ReasonVersionSkew, "the agent runs helmops dev, another version than the controller's v0.3.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "dev", Generation: 3}}
			// A condition from an earlier report goes when the agent reports no version.
			c.Status.Conditions = []metav1.Condition{{Type: v1alpha1.AgentUpToDateCondition, Status: metav1.ConditionTrue, Reason: "x"}}
			c.Status.Agent.Version = tt.agent
			setAgentUpToDateCondition(c, &facts{version: tt.controller})
			cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.AgentUpToDateCondition)
			if tt.status == "" {
				g.Expect(cond).To(BeNil())
				return
			}
			g.Expect(cond.Status).To(Equal(tt.status))
			g.Expect(cond.Reason).To(Equal(tt.reason))
			g.Expect(cond.Message).To(HavePrefix(tt.msg))
			g.Expect(cond.ObservedGeneration).To(Equal(int64(3)))
			if tt.status == metav1.ConditionFalse {
				g.Expect(cond.Message).To(ContainSubstring("upgrade the agent to " + tt.controller))
			}
		})
	}
}

func readyDeployment(bundle, helmop string) v1alpha1.BundleDeployment {
	bd := v1alpha1.BundleDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: bundle, Labels: map[string]string{
			v1alpha1.BundleNameLabel: bundle, v1alpha1.BundleNamespaceLabel: "ws"}},
		Spec: v1alpha1.BundleDeploymentSpec{DeploymentID: "s-1"},
	}
	if helmop != "" {
		bd.Labels[v1alpha1.HelmOpLabel] = helmop
	}
	bd.Status.AppliedDeploymentID = "s-1"
	bd.Status.Ready = true
	bd.Status.Conditions = []metav1.Condition{{Type: v1alpha1.DeployedCondition, Status: metav1.ConditionTrue, Reason: "Succeeded"}}
	return bd
}

func TestSetSummary(t *testing.T) {
	g := NewWithT(t)
	waiting := readyDeployment("b", "b")
	waiting.Status = v1alpha1.BundleDeploymentStatus{}
	other := readyDeployment("c", "")
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "dev"}}
	setSummary(c, &facts{deployments: []v1alpha1.BundleDeployment{readyDeployment("a", "a"), waiting, other}})
	g.Expect(c.Status.Summary.DesiredReady).To(Equal(3))
	g.Expect(c.Status.Summary.Ready).To(Equal(2))
	g.Expect(c.Status.Summary.WaitApplied).To(Equal(1))
	g.Expect(c.Status.Summary.NonReadyResources).To(ConsistOf(HaveField("Name", "ws/b")))
	g.Expect(c.Status.ReadyHelmOps).To(Equal(1), "only BundleDeployments of HelmOps count")
	g.Expect(c.Status.DesiredReadyHelmOps).To(Equal(2))
	g.Expect(c.Status.Display.ReadyBundles).To(Equal("2/3"))
	g.Expect(c.Status.Display.State).To(Equal("WaitApplied"))
}

func member(name string, ready bool, s v1alpha1.BundleSummary) v1alpha1.Cluster {
	c := v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
	st := metav1.ConditionFalse
	msg := "waiting for the agent of cluster " + name + " to report"
	if ready {
		st, msg = metav1.ConditionTrue, "agent seen"
	}
	c.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: st, Reason: "x", Message: msg}}
	c.Status.Summary = s
	return c
}

func TestSetGroupStatus(t *testing.T) {
	allReady := v1alpha1.BundleSummary{Ready: 2, DesiredReady: 2}
	tests := []struct {
		name          string
		members       []v1alpha1.Cluster
		selErr        error
		count, nonRdy int
		names         []string
		status        metav1.ConditionStatus
		msg           string
		readyClusters string
		readyBundles  string
		state         string
	}{
		{"empty group", nil, nil, 0, 0, nil, metav1.ConditionTrue, "0/0 clusters ready", "0/0", "0/0", ""},
		{"all ready", []v1alpha1.Cluster{member("a", true, allReady), member("b", true, allReady)}, nil,
			2, 0, nil, metav1.ConditionTrue, "2/2 clusters ready", "2/2", "4/4", ""},
		{"agent missing and bundles not ready", []v1alpha1.Cluster{
			member("c", true, v1alpha1.BundleSummary{Ready: 1, DesiredReady: 2, ErrApplied: 1}),
			member("a", false, allReady),
			member("b", true, allReady),
		}, nil, 3, 2, []string{"a", "c"}, metav1.ConditionFalse,
			"1/3 clusters ready; not ready: a (waiting for the agent of cluster a to report), c (1/2 bundles ready)",
			"1/3", "5/6", "ErrApplied"},
		{"invalid selector", nil, errors.New("ClusterGroup ws/g: invalid spec.selector: bad"), 0, 0, nil, metav1.ConditionFalse,
			"ClusterGroup ws/g: invalid spec.selector: bad", "0/0", "0/0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			grp := &v1alpha1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ws", Generation: 4}}
			setGroupStatus(grp, tt.members, tt.selErr)
			g.Expect(grp.Status.ObservedGeneration).To(Equal(int64(4)))
			g.Expect(grp.Status.ClusterCount).To(Equal(tt.count))
			g.Expect(grp.Status.NonReadyClusterCount).To(Equal(tt.nonRdy))
			g.Expect(grp.Status.NonReadyClusters).To(Equal(tt.names))
			cond := meta.FindStatusCondition(grp.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(cond.Status).To(Equal(tt.status))
			g.Expect(cond.Message).To(Equal(tt.msg))
			g.Expect(grp.Status.Display.ReadyClusters).To(Equal(tt.readyClusters))
			g.Expect(grp.Status.Display.ReadyBundles).To(Equal(tt.readyBundles))
			g.Expect(grp.Status.Display.State).To(Equal(tt.state))
		})
	}
}

func TestSetGroupStatusNamesAtMostTen(t *testing.T) {
	g := NewWithT(t)
	var members []v1alpha1.Cluster
	for _, n := range strings.Split("a b c d e f g h i j k l", " ") {
		members = append(members, member(n, false, v1alpha1.BundleSummary{}))
	}
	grp := &v1alpha1.ClusterGroup{}
	setGroupStatus(grp, members, nil)
	g.Expect(grp.Status.NonReadyClusterCount).To(Equal(12))
	g.Expect(grp.Status.NonReadyClusters).To(HaveLen(10))
	g.Expect(meta.FindStatusCondition(grp.Status.Conditions, v1alpha1.ReadyCondition).Message).To(HaveSuffix(" and 2 more"))
}
