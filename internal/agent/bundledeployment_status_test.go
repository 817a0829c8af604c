package agent

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

var (
	cmModified = v1alpha1.ModifiedStatus{Kind: "ConfigMap", Namespace: "app", Name: "app-config", Patch: "changed: data.x"}
	cmMissing  = v1alpha1.ModifiedStatus{Kind: "ConfigMap", Namespace: "app", Name: "gone", Missing: true}
	depNotDone = v1alpha1.NonReadyStatus{Kind: "Deployment", Namespace: "app", Name: "web",
		Summary: v1alpha1.NonReadySummary{State: "InProgress", Message: []string{"Available: 0/1"}}}
)

func TestSetStatus(t *testing.T) {
	type cond struct {
		status metav1.ConditionStatus
		reason string
		msg    string // substring
	}
	cases := []struct {
		name                                  string
		f                                     facts
		installed, deployed, monitored, ready cond
		readyField, nonModified               bool
		state                                 string
	}{
		{
			name:      "deployed and healthy",
			f:         facts{deployed: true, monitored: true},
			installed: cond{"True", v1alpha1.ReasonSucceeded, ""}, deployed: cond{"True", v1alpha1.ReasonSucceeded, ""},
			monitored: cond{"True", v1alpha1.ReasonSucceeded, ""}, ready: cond{"True", v1alpha1.ReasonSucceeded, ""},
			readyField: true, nonModified: true, state: "Ready",
		},
		{
			name:      "download failed",
			f:         facts{downloadErr: errors.New("downloading chart: 401 Unauthorized")},
			installed: cond{"False", v1alpha1.ReasonDownloadFailed, "401"}, deployed: cond{"False", v1alpha1.ReasonDownloadFailed, "401"},
			monitored: cond{"False", v1alpha1.ReasonProgressing, "no deployed release"}, ready: cond{"False", v1alpha1.ReasonDownloadFailed, "401"},
			state: "ErrApplied",
		},
		{
			name:      "upgrade failed while the old release still runs",
			f:         facts{deployErr: errors.New(`template: x/templates/broken.yaml:4: unexpected "}"`), deployReason: v1alpha1.ReasonUpgradeFailed, monitored: true},
			installed: cond{"False", v1alpha1.ReasonUpgradeFailed, "broken.yaml"}, deployed: cond{"False", v1alpha1.ReasonUpgradeFailed, "broken.yaml"},
			monitored: cond{"True", v1alpha1.ReasonSucceeded, ""}, ready: cond{"False", v1alpha1.ReasonUpgradeFailed, "broken.yaml"},
			nonModified: true, state: "ErrApplied",
		},
		{
			name:      "drifted",
			f:         facts{deployed: true, monitored: true, modified: []v1alpha1.ModifiedStatus{cmModified, cmMissing}},
			installed: cond{"True", v1alpha1.ReasonSucceeded, ""}, deployed: cond{"True", v1alpha1.ReasonSucceeded, ""},
			monitored: cond{"True", v1alpha1.ReasonSucceeded, ""}, ready: cond{"False", v1alpha1.ReasonModified, "ConfigMap app/app-config modified; ConfigMap app/gone missing"},
			state: "Modified",
		},
		{
			name:      "resources not ready",
			f:         facts{deployed: true, monitored: true, nonReady: []v1alpha1.NonReadyStatus{depNotDone}},
			installed: cond{"True", v1alpha1.ReasonSucceeded, ""}, deployed: cond{"True", v1alpha1.ReasonSucceeded, ""},
			monitored: cond{"True", v1alpha1.ReasonSucceeded, ""}, ready: cond{"False", v1alpha1.ReasonResourcesNotReady, "Deployment app/web InProgress: Available: 0/1"},
			nonModified: true, state: "NotReady",
		},
		{
			name:      "waiting for a running operation",
			f:         facts{waiting: "release is pending-upgrade by a running operation"},
			installed: cond{"False", v1alpha1.ReasonProgressing, "pending-upgrade"}, deployed: cond{"False", v1alpha1.ReasonProgressing, "pending-upgrade"},
			monitored: cond{"False", v1alpha1.ReasonProgressing, ""}, ready: cond{"False", v1alpha1.ReasonProgressing, "pending-upgrade"},
			state: "WaitApplied",
		},
		{
			name:      "monitoring failed",
			f:         facts{deployed: true, monitorErr: errors.New("reading ConfigMap app/x: forbidden")},
			installed: cond{"True", v1alpha1.ReasonSucceeded, ""}, deployed: cond{"True", v1alpha1.ReasonSucceeded, ""},
			monitored: cond{"False", v1alpha1.ReasonProgressing, "forbidden"}, ready: cond{"False", v1alpha1.ReasonProgressing, "checking"},
			state: "WaitApplied",
		},
		{
			name:      "paused before the first deploy",
			f:         facts{paused: true},
			installed: cond{"False", v1alpha1.ReasonPaused, ""}, deployed: cond{"False", v1alpha1.ReasonPaused, ""},
			monitored: cond{"False", v1alpha1.ReasonProgressing, ""}, ready: cond{"False", v1alpha1.ReasonPaused, ""},
			state: "WaitApplied",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			bd := &v1alpha1.BundleDeployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			f := tc.f
			if f.deployed {
				bd.Spec.DeploymentID, bd.Status.AppliedDeploymentID = "id-1", "id-1" // as the agent records a deploy
			}
			setStatus(bd, &f, nil)
			for typ, want := range map[string]cond{
				v1alpha1.InstalledCondition: tc.installed, v1alpha1.DeployedCondition: tc.deployed,
				v1alpha1.MonitoredCondition: tc.monitored, v1alpha1.ReadyCondition: tc.ready,
			} {
				c := meta.FindStatusCondition(bd.Status.Conditions, typ)
				g.Expect(c).NotTo(BeNil(), typ)
				g.Expect(c.Status).To(Equal(want.status), typ)
				g.Expect(c.Reason).To(Equal(want.reason), typ)
				g.Expect(c.Message).To(ContainSubstring(want.msg), typ)
				g.Expect(c.ObservedGeneration).To(Equal(int64(3)))
			}
			g.Expect(bd.Status.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(bd.Status.Ready).To(Equal(tc.readyField))
			g.Expect(bd.Status.NonModified).To(Equal(tc.nonModified))
			g.Expect(bd.Status.Display.State).To(Equal(tc.state))
			g.Expect(bd.Status.ModifiedStatus).To(Equal(tc.f.modified))
			g.Expect(bd.Status.NonReadyStatus).To(Equal(tc.f.nonReady))
		})
	}
}

// display.deployed and display.monitored read as Fleet writes them.
func TestDisplayAsFleetWritesIt(t *testing.T) {
	for _, tc := range []struct {
		name                string
		f                   facts
		deployed, monitored string
	}{
		{"deployed and monitored", facts{deployed: true, monitored: true}, "True", "True"},
		{"upgrade failed", facts{deployErr: errors.New("boom"), deployReason: v1alpha1.ReasonUpgradeFailed, monitored: true}, "Error: boom", "True"},
		{"monitoring failed", facts{deployed: true, monitorErr: errors.New("forbidden")}, "True", "Error: could not check the release's resources: forbidden"},
		{"not deployed yet", facts{}, "False", "False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			bd := &v1alpha1.BundleDeployment{}
			f := tc.f
			setStatus(bd, &f, nil)
			g.Expect(bd.Status.Display.Deployed).To(Equal(tc.deployed))
			g.Expect(bd.Status.Display.Monitored).To(Equal(tc.monitored))
		})
	}
}
