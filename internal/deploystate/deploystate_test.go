package deploystate_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

func TestDeploymentState(t *testing.T) {
	tests := []struct {
		name  string
		bd    *v1alpha1.BundleDeployment
		state deploystate.State
		msg   string
	}{
		{"ready", bd(applied("s-new"), ready(), deployed), deploystate.Ready, ""},
		{"nothing reported yet", bd(), deploystate.WaitApplied, "waiting for the agent to deploy"},
		{"progressing first install", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonProgressing, "installing")),
			deploystate.WaitApplied, "installing"},
		{"paused before the first install", bd(paused(), condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonPaused, "the BundleDeployment is paused")),
			deploystate.WaitApplied, "paused before the first deployment"},
		{"install failed", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonInstallFailed, "boom")), deploystate.ErrApplied, "boom"},
		{"upgrade failed keeps the old applied ID", bd(applied("s-old"), condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonUpgradeFailed, "bad")),
			deploystate.ErrApplied, "bad"},
		{"download failed without message", bd(condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonDownloadFailed, "")),
			deploystate.ErrApplied, v1alpha1.ReasonDownloadFailed},
		{"older deployment applied", bd(applied("s-old"), ready(), deployed), deploystate.OutOfSync, "the agent has not deployed the current spec yet"},
		{"older deployment held by paused", bd(paused(), applied("s-old"), ready(),
			condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonPaused, "paused")),
			deploystate.OutOfSync, "paused: the deployed release is older than the spec"},
		{"drifted", bd(applied("s-new"), deployed, modified("ConfigMap", "app", "cfg"), modified("Secret", "", "s")),
			deploystate.Modified, "ConfigMap app/cfg modified; Secret s modified"},
		{"not ready with the agent's message", bd(applied("s-new"), deployed,
			condition(v1alpha1.ReadyCondition, false, v1alpha1.ReasonResourcesNotReady, "Deployment app/web InProgress")),
			deploystate.NotReady, "Deployment app/web InProgress"},
		{"not ready from nonReadyStatus", bd(applied("s-new"), deployed, func(b *v1alpha1.BundleDeployment) {
			b.Status.NonReadyStatus = []v1alpha1.NonReadyStatus{{Kind: "Deployment", Namespace: "app", Name: "web",
				Summary: v1alpha1.NonReadySummary{State: "InProgress", Message: []string{"0/1 replicas"}}}}
		}), deploystate.NotReady, "Deployment app/web InProgress: 0/1 replicas"},
		{"ready flag without Deployed=True", bd(applied("s-new"), ready()), deploystate.NotReady, "resources are not ready"},
		{"deployed, resources not checked yet", bd(applied("s-new"), deployed,
			condition(v1alpha1.MonitoredCondition, false, v1alpha1.ReasonProgressing, "could not check the release's resources: forbidden")),
			deploystate.WaitApplied, "could not check the release's resources: forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			state, msg := deploystate.Of(tt.bd)
			g.Expect(state).To(Equal(tt.state))
			g.Expect(msg).To(Equal(tt.msg))
		})
	}
}

func TestMessages(t *testing.T) {
	g := NewWithT(t)
	g.Expect(deploystate.ModifiedMessage([]v1alpha1.ModifiedStatus{
		{Kind: "ConfigMap", Namespace: "app", Name: "a"}, {Kind: "Secret", Name: "b", Missing: true}, {Kind: "Service", Namespace: "app", Name: "c", Delete: true},
	})).To(Equal("ConfigMap app/a modified; Secret b missing; Service app/c extra"))
	g.Expect(deploystate.NonReadyMessage([]v1alpha1.NonReadyStatus{
		{Kind: "Deployment", Namespace: "app", Name: "web", Summary: v1alpha1.NonReadySummary{State: "InProgress", Message: []string{"0/1", "waiting"}}},
	})).To(Equal("Deployment app/web InProgress: 0/1, waiting"))
	g.Expect(deploystate.Rank(deploystate.ErrApplied)).To(BeNumerically(">", deploystate.Rank(deploystate.Ready)))
}
