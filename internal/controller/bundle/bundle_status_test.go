package bundle

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
)

type bdOption func(*v1alpha1.BundleDeployment)

func bd(opts ...bdOption) *v1alpha1.BundleDeployment {
	b := &v1alpha1.BundleDeployment{Spec: v1alpha1.BundleDeploymentSpec{DeploymentID: "s-new"}}
	for _, o := range opts {
		o(b)
	}
	return b
}

func applied(id string) bdOption {
	return func(b *v1alpha1.BundleDeployment) { b.Status.AppliedDeploymentID = id }
}

func ready() bdOption { return func(b *v1alpha1.BundleDeployment) { b.Status.Ready = true } }

func paused() bdOption { return func(b *v1alpha1.BundleDeployment) { b.Spec.Paused = true } }

func condition(t string, ok bool, reason, msg string) bdOption {
	return func(b *v1alpha1.BundleDeployment) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg})
	}
}

func modified(kind, ns, name string) bdOption {
	return func(b *v1alpha1.BundleDeployment) {
		b.Status.ModifiedStatus = append(b.Status.ModifiedStatus, v1alpha1.ModifiedStatus{Kind: kind, Namespace: ns, Name: name})
	}
}

var deployed = condition(v1alpha1.DeployedCondition, true, v1alpha1.ReasonSucceeded, "release deployed")

func TestSummarize(t *testing.T) {
	g := NewWithT(t)
	entries := []Entry{
		{Name: "c-ready", BundleDeployment: bd(applied("s-new"), ready(), deployed)},
		{Name: "b-wait", BundleDeployment: bd()},
		{Name: "a-err", BundleDeployment: bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, "boom"))},
		{Name: "d-pending", PendingMessage: "waiting for the cluster namespace of cluster d-pending"},
		{Name: "e-mod", BundleDeployment: bd(applied("s-new"), deployed, modified("ConfigMap", "app", "cfg"))},
	}
	s := Summarize(entries)
	g.Expect(s.DesiredReady).To(Equal(5))
	g.Expect(s.Ready).To(Equal(1))
	g.Expect(s.WaitApplied).To(Equal(1))
	g.Expect(s.ErrApplied).To(Equal(1))
	g.Expect(s.Pending).To(Equal(1))
	g.Expect(s.Modified).To(Equal(1))
	var names []string
	for _, r := range s.NonReadyResources {
		names = append(names, r.Name+"="+r.State)
	}
	g.Expect(names).To(Equal([]string{"a-err=ErrApplied", "b-wait=WaitApplied", "e-mod=Modified", "d-pending=Pending"}), "worst first")
	g.Expect(s.NonReadyResources[2].ModifiedStatus).To(HaveLen(1))
	g.Expect(WorstState(s)).To(Equal(deploystate.ErrApplied))
}

func TestSummarizeListsAtMostTen(t *testing.T) {
	g := NewWithT(t)
	var entries []Entry
	for i := 0; i < 25; i++ {
		entries = append(entries, Entry{Name: fmt.Sprintf("c%02d", i), BundleDeployment: bd()})
	}
	s := Summarize(entries)
	g.Expect(s.WaitApplied).To(Equal(25))
	g.Expect(s.NonReadyResources).To(HaveLen(10))
	g.Expect(s.NonReadyResources[0].Name).To(Equal("c00"))
	msg := NotReadyMessage(s)
	g.Expect(msg).To(HavePrefix("0/25 clusters ready; not ready: c00 (WaitApplied: waiting for the agent to deploy)"))
	g.Expect(msg).To(HaveSuffix(" and 15 more"))
}

func TestWorstState(t *testing.T) {
	tests := []struct {
		s    v1alpha1.BundleSummary
		want deploystate.State
	}{
		{v1alpha1.BundleSummary{Ready: 2, DesiredReady: 2}, deploystate.Ready},
		{v1alpha1.BundleSummary{}, deploystate.Ready},
		{v1alpha1.BundleSummary{NotReady: 1}, deploystate.NotReady},
		{v1alpha1.BundleSummary{NotReady: 1, Pending: 1}, deploystate.Pending},
		{v1alpha1.BundleSummary{Pending: 1, OutOfSync: 1}, deploystate.OutOfSync},
		{v1alpha1.BundleSummary{OutOfSync: 1, Modified: 1}, deploystate.Modified},
		{v1alpha1.BundleSummary{Modified: 1, WaitApplied: 1}, deploystate.WaitApplied},
		{v1alpha1.BundleSummary{WaitApplied: 1, ErrApplied: 1}, deploystate.ErrApplied},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			NewWithT(t).Expect(WorstState(tt.s)).To(Equal(tt.want))
		})
	}
}

func bundleObj() *v1alpha1.Bundle {
	return &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ws", Generation: 3}}
}

func TestSetStatus(t *testing.T) {
	readyBD := bd(applied("s-new"), ready(), deployed)
	errBD := bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, "boom"))
	tests := []struct {
		name                     string
		f                        facts
		targeted, readyCond      metav1.ConditionStatus
		targetedReason, rdReason string
		readyMsg                 string
		display                  string
	}{
		{"all ready", facts{entries: []Entry{{Name: "a", BundleDeployment: readyBD}, {Name: "b", BundleDeployment: readyBD}}},
			metav1.ConditionTrue, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, v1alpha1.ReasonSucceeded, "2/2 clusters ready", "2/2"},
		{"one failing", facts{entries: []Entry{{Name: "a", BundleDeployment: readyBD}, {Name: "b", BundleDeployment: errBD}}},
			metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, v1alpha1.ReasonClustersNotReady,
			"1/2 clusters ready; not ready: b (ErrApplied: boom)", "1/2"},
		{"paused and not ready", facts{paused: true, entries: []Entry{{Name: "a", BundleDeployment: bd(paused(), applied("s-old"), ready(), deployed)}}},
			metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, v1alpha1.ReasonPaused,
			"0/1 clusters ready; not ready: a (OutOfSync: paused: the deployed release is older than the spec)", "0/1"},
		{"no cluster targeted", facts{},
			metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonNoTargets, v1alpha1.ReasonNoTargets,
			"no cluster in namespace ws matches the targets", "0/0"},
		{"invalid target", facts{targetErr: errors.New("spec.targets[0] (x): invalid clusterSelector: bad")},
			metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonInvalidSpec,
			"spec.targets[0] (x): invalid clusterSelector: bad", "0/0"},
		{"missing secret", facts{secretReason: v1alpha1.ReasonSecretNotFound, secretErr: errors.New(`secret "s" named by helmSecretName does not exist in namespace "ws"`),
			entries: []Entry{{Name: "a", PendingMessage: "x"}}},
			metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, v1alpha1.ReasonSecretNotFound,
			`secret "s" named by helmSecretName does not exist in namespace "ws"`, "0/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := bundleObj()
			setStatus(b, &tt.f, nil)
			g.Expect(b.Status.ObservedGeneration).To(Equal(int64(3)))
			tc := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.TargetedCondition)
			g.Expect(tc.Status).To(Equal(tt.targeted))
			g.Expect(tc.Reason).To(Equal(tt.targetedReason))
			g.Expect(tc.ObservedGeneration).To(Equal(int64(3)))
			rc := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(rc.Status).To(Equal(tt.readyCond))
			g.Expect(rc.Reason).To(Equal(tt.rdReason))
			g.Expect(rc.Message).To(Equal(tt.readyMsg))
			g.Expect(b.Status.Display.ReadyBundleDeployments).To(Equal(tt.display))
			g.Expect(fmt.Sprintf("%d/%d", b.Status.ReadyClusters, b.Status.DesiredReadyClusters)).To(Equal(tt.display))
		})
	}
}

// TestSetStatusOnErrors: a transient error before the targets were evaluated (a failed Cluster
// list) changes neither Targeted nor the summary nor observedGeneration; a transient error after
// (a failed write) reports what was found and keeps observedGeneration; a terminal one advances it.
func TestSetStatusOnErrors(t *testing.T) {
	g := NewWithT(t)
	b := bundleObj()
	healthy := facts{targeted: true, entries: []Entry{{Name: "a", BundleDeployment: bd(applied("s-new"), ready(), deployed)}}}
	setStatus(b, &healthy, nil)
	before := b.Status.DeepCopy()

	b.Generation = 4
	setStatus(b, &facts{}, errors.New("listing the Clusters of namespace ws: etcdserver: request timed out"))
	g.Expect(b.Status).To(Equal(*before), "nothing observed, nothing changes")

	fresh := bundleObj()
	setStatus(fresh, &facts{}, errors.New("listing the Clusters of namespace ws: etcdserver: request timed out"))
	g.Expect(meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.TargetedCondition).Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.ReadyCondition).Message).To(ContainSubstring("request timed out"))
	g.Expect(fresh.Status.ObservedGeneration).To(BeZero())

	failedWrite := facts{targeted: true, entries: []Entry{{Name: "a", PendingMessage: "could not write the BundleDeployment: conflict"}}}
	setStatus(b, &failedWrite, errors.New("conflict"))
	g.Expect(b.Status.ObservedGeneration).To(Equal(int64(3)))
	g.Expect(b.Status.Summary.Pending).To(Equal(1))

	setStatus(b, &facts{targeted: true, targetErr: errors.New("bad selector")}, reconcile.TerminalError(errors.New("bad selector")))
	g.Expect(b.Status.ObservedGeneration).To(Equal(int64(4)))
}

func TestMessagesAreBounded(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("x", 5000)
	s := Summarize([]Entry{{Name: "a", BundleDeployment: bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, long))}})
	g.Expect(len(s.NonReadyResources[0].Message)).To(BeNumerically("<=", maxMessage))
}
