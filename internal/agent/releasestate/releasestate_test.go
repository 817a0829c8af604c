package releasestate

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name  string
		facts Facts
		phase Phase
		want  Action
	}{
		{"no release installs", Facts{DesiredID: "a"}, Absent, Install},
		{"uninstalled release installs", Facts{LastStatus: StatusUninstalled, DesiredID: "a"}, Absent, Install},
		{"deployed and applied does nothing", Facts{LastStatus: StatusDeployed, DesiredID: "a", AppliedID: "a"}, InSync, None},
		{"new deploymentID upgrades", Facts{LastStatus: StatusDeployed, DesiredID: "b", AppliedID: "a"}, OutOfSync, Upgrade},
		{"deployed but never recorded upgrades", Facts{LastStatus: StatusDeployed, DesiredID: "a"}, OutOfSync, Upgrade},
		{"failed revision is retried", Facts{LastStatus: StatusFailed, DesiredID: "b", AppliedID: "a"}, Failed, Upgrade},
		{"failed revision with same ID is retried", Facts{LastStatus: StatusFailed, DesiredID: "a", AppliedID: "a"}, Failed, Upgrade},
		{"superseded newest revision is retried", Facts{LastStatus: StatusSuperseded, DesiredID: "a", AppliedID: "a"}, Failed, Upgrade},
		{"pending upgrade left by a crash is recovered", Facts{LastStatus: StatusPendingUpgrade, DesiredID: "b", AppliedID: "a"}, Locked, Recover},
		{"pending install left by a crash is recovered", Facts{LastStatus: StatusPendingInstall, DesiredID: "a"}, Locked, Recover},
		{"pending rollback left by a crash is recovered", Facts{LastStatus: StatusPendingRollback, DesiredID: "a", AppliedID: "a"}, Locked, Recover},
		{"uninstalling left by a crash is recovered", Facts{LastStatus: StatusUninstalling, DesiredID: "a", AppliedID: "a"}, Locked, Recover},
		{"pending upgrade still running waits", Facts{LastStatus: StatusPendingUpgrade, OperationInFlight: true, DesiredID: "b", AppliedID: "a"}, Locked, Wait},
		{"drift is only reported by default", Facts{LastStatus: StatusDeployed, DesiredID: "a", AppliedID: "a", Drifted: true}, Drifted, None},
		{"drift is corrected when asked", Facts{LastStatus: StatusDeployed, DesiredID: "a", AppliedID: "a", Drifted: true, CorrectDrift: true}, Drifted, CorrectDrift},
		{"a new deploymentID wins over drift", Facts{LastStatus: StatusDeployed, DesiredID: "b", AppliedID: "a", Drifted: true, CorrectDrift: true}, OutOfSync, Upgrade},
		{"deleting uninstalls", Facts{Deleting: true, LastStatus: StatusDeployed}, Deleting, Uninstall},
		{"deleting a failed release uninstalls", Facts{Deleting: true, LastStatus: StatusFailed}, Deleting, Uninstall},
		{"deleting with keepResources forgets", Facts{Deleting: true, KeepResources: true, LastStatus: StatusDeployed}, Deleting, Forget},
		{"deleting without a release finalizes", Facts{Deleting: true}, Deleting, Finalize},
		{"deleting waits for a running operation", Facts{Deleting: true, LastStatus: StatusPendingInstall, OperationInFlight: true}, Deleting, Wait},
		{"deleting a crashed pending release uninstalls", Facts{Deleting: true, LastStatus: StatusPendingInstall}, Deleting, Uninstall},
		{"another owner's release is refused", Facts{LastStatus: StatusDeployed, DesiredID: "a", Foreign: true}, Foreign, Refuse},
		{"another owner's failed release is refused, not retried", Facts{LastStatus: StatusFailed, DesiredID: "a", AppliedID: "a", Foreign: true}, Foreign, Refuse},
		{"another owner's pending release is not recovered", Facts{LastStatus: StatusPendingUpgrade, DesiredID: "a", Foreign: true}, Foreign, Refuse},
		{"deleting leaves another owner's release", Facts{Deleting: true, LastStatus: StatusDeployed, Foreign: true}, Deleting, Finalize},
		{"deleting with keepResources leaves another owner's records", Facts{Deleting: true, KeepResources: true, LastStatus: StatusDeployed, Foreign: true}, Deleting, Finalize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(tc.facts)
			g.Expect(d.Phase).To(Equal(tc.phase))
			g.Expect(d.Action).To(Equal(tc.want))
			g.Expect(d.Reason).NotTo(BeEmpty())
		})
	}
}
