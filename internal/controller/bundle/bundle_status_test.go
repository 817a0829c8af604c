package bundle

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
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

func TestDeploymentState(t *testing.T) {
	tests := []struct {
		name  string
		bd    *v1alpha1.BundleDeployment
		state State
		msg   string
	}{
		{"ready", bd(applied("s-new"), ready(), deployed), StateReady, ""},
		{"nothing reported yet", bd(), StateWaitApplied, "waiting for the agent to deploy"},
		{"progressing first install", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonProgressing, "installing")),
			StateWaitApplied, "installing"},
		{"paused before the first install", bd(paused(), condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonPaused, "the BundleDeployment is paused")),
			StateWaitApplied, "paused before the first deployment"},
		{"install failed", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, "boom")), StateErrApplied, "boom"},
		{"upgrade failed keeps the old applied ID", bd(applied("s-old"), condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonUpgradeFailed, "bad")),
			StateErrApplied, "bad"},
		{"download failed without message", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonDownloadFailed, "")),
			StateErrApplied, v1alpha1.ReasonDownloadFailed},
		{"older deployment applied", bd(applied("s-old"), ready(), deployed), StateOutOfSync, "the agent has not deployed the current spec yet"},
		{"older deployment held by paused", bd(paused(), applied("s-old"), ready(),
			condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonPaused, "paused")),
			StateOutOfSync, "paused: the deployed release is older than the spec"},
		{"drifted", bd(applied("s-new"), deployed, modified("ConfigMap", "app", "cfg"), modified("Secret", "", "s")),
			StateModified, "ConfigMap app/cfg modified; Secret s modified"},
		{"not ready with the agent's message", bd(applied("s-new"), deployed,
			condition(v1alpha1.ReadyCondition, false, v1alpha1.ReasonResourcesNotReady, "Deployment app/web InProgress")),
			StateNotReady, "Deployment app/web InProgress"},
		{"not ready from nonReadyStatus", bd(applied("s-new"), deployed, func(b *v1alpha1.BundleDeployment) {
			b.Status.NonReadyStatus = []v1alpha1.NonReadyStatus{{Kind: "Deployment", Namespace: "app", Name: "web",
				Summary: v1alpha1.NonReadySummary{State: "InProgress", Message: []string{"0/1 replicas"}}}}
		}), StateNotReady, "Deployment app/web InProgress: 0/1 replicas"},
		{"ready flag without Deployed=True", bd(applied("s-new"), ready()), StateNotReady, "resources are not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			state, msg := DeploymentState(tt.bd)
			g.Expect(state).To(Equal(tt.state))
			g.Expect(msg).To(Equal(tt.msg))
		})
	}
}

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
	g.Expect(WorstState(s)).To(Equal(StateErrApplied))
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
		want State
	}{
		{v1alpha1.BundleSummary{Ready: 2, DesiredReady: 2}, StateReady},
		{v1alpha1.BundleSummary{}, StateReady},
		{v1alpha1.BundleSummary{NotReady: 1}, StateNotReady},
		{v1alpha1.BundleSummary{NotReady: 1, Pending: 1}, StatePending},
		{v1alpha1.BundleSummary{Pending: 1, OutOfSync: 1}, StateOutOfSync},
		{v1alpha1.BundleSummary{OutOfSync: 1, Modified: 1}, StateModified},
		{v1alpha1.BundleSummary{Modified: 1, WaitApplied: 1}, StateWaitApplied},
		{v1alpha1.BundleSummary{WaitApplied: 1, ErrApplied: 1}, StateErrApplied},
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
			setStatus(b, &tt.f)
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

func TestMessagesAreBounded(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("x", 5000)
	s := Summarize([]Entry{{Name: "a", BundleDeployment: bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, long))}})
	g.Expect(len(s.NonReadyResources[0].Message)).To(BeNumerically("<=", maxMessage))
}
