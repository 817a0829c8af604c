package bundle

import (
	"math"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/rollout"
)

// TestRolloutStatus: the Ready condition, the display and the partition counts computed from
// what the rollout step decided.
func TestRolloutStatus(t *testing.T) {
	old := func() *v1alpha1.BundleDeployment {
		b := bd(applied("s-old"), ready(), deployed)
		b.Spec.DeploymentID = "s-old"
		return b
	}
	failed := bd(applied("s-old"), condition(v1alpha1.DeployedCondition, false, v1alpha1.ReasonUpgradeFailed, "upgrade failed: boom"))
	twoPartitions := func(halted bool, failures ...rollout.Failure) *rolloutFacts {
		return &rolloutFacts{
			index: map[string]int{}, entry: map[int]int{0: 0, 1: 1}, waits: map[int][]string{},
			plan: rollout.Plan{
				Actions: []rollout.Action{rollout.Keep, rollout.Hold}, Rolling: 0, Halted: halted, Failures: failures,
				Unavailable: 1, MaxUnavailable: 1, UnavailablePartitions: 1,
				Partitions: []rollout.PartitionStatus{
					{Name: "canary", Count: 1, MaxUnavailable: 0, Unavailable: 1, Targets: []int{0}, Reached: true},
					{Name: "stable", Count: 1, MaxUnavailable: 0, Unavailable: 1, Targets: []int{1}},
				},
			},
		}
	}
	tests := []struct {
		name                 string
		f                    facts
		reason, msg, display string
		displayState         string
	}{
		{name: "rolling: the first partition waits, the second waits for it",
			f: facts{targeted: true, rollout: twoPartitions(false), entries: []Entry{
				{Name: "a", BundleDeployment: bd(applied("s-old"), ready(), deployed)},
				{Name: "b", BundleDeployment: old(), Held: true, PendingMessage: "waiting for the rollout to reach partition stable"},
			}},
			reason: v1alpha1.ReasonRollingOut,
			msg: "rolling out partition canary (1 of 2 partitions): 1/1 clusters not yet ready with the new deployment, 0 allowed; " +
				"partition stable waits for it; 0/2 clusters ready; not ready: a (OutOfSync: the agent has not deployed the current spec yet), " +
				"b (OutOfSync: waiting for the rollout to reach partition stable)",
			display:      "rolling out partition canary (1 of 2 partitions): 1/1 clusters not yet ready with the new deployment, 0 allowed; partition stable waits for it",
			displayState: "OutOfSync"},
		{name: "halted: names the version, the partition and the failed cluster",
			f: facts{targeted: true, rollout: twoPartitions(true, rollout.Failure{Cluster: "a", Version: "2.0.0", Reason: "upgrade failed: boom"}),
				entries: []Entry{
					{Name: "a", BundleDeployment: failed},
					{Name: "b", BundleDeployment: old(), Held: true, PendingMessage: "held: the rollout is halted"},
				}},
			reason: v1alpha1.ReasonRolloutHalted,
			msg: "rollout of version 2.0.0 halted at partition canary: failed on a (upgrade failed: boom); clusters not yet reached keep their version " +
				"until the failures clear or a newer version is resolved; 0/2 clusters ready; not ready: a (ErrApplied: upgrade failed: boom), " +
				"b (OutOfSync: held: the rollout is halted)",
			display: "rollout of version 2.0.0 halted at partition canary: failed on a (upgrade failed: boom); clusters not yet reached keep their version " +
				"until the failures clear or a newer version is resolved",
			displayState: v1alpha1.ReasonRolloutHalted},
		{name: "nothing held: the plain not-ready message",
			f: facts{targeted: true, rollout: &rolloutFacts{plan: rollout.Plan{Rolling: -1}, entry: map[int]int{}}, entries: []Entry{
				{Name: "a", BundleDeployment: bd(applied("s-new"), deployed)},
			}},
			reason: v1alpha1.ReasonClustersNotReady, msg: "0/1 clusters ready; not ready: a (NotReady: resources are not ready)",
			display: "a: resources are not ready", displayState: "NotReady"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := bundleObj()
			setStatus(b, &tt.f, nil)
			rc := b.Condition(v1alpha1.ReadyCondition)
			g.Expect(rc.Reason).To(Equal(tt.reason))
			g.Expect(rc.Message).To(Equal(tt.msg))
			g.Expect(b.Status.Display.Message).To(Equal(tt.display))
			g.Expect(b.Status.Display.State).To(Equal(tt.displayState))
		})
	}

	g := NewWithT(t)
	b := bundleObj()
	f := facts{targeted: true, rollout: twoPartitions(false), entries: []Entry{
		{Name: "a", BundleDeployment: bd(applied("s-old"), ready(), deployed)},
		{Name: "b", BundleDeployment: old(), Held: true, PendingMessage: "waiting"},
	}}
	setStatus(b, &f, nil)
	g.Expect(b.Status.PartitionStatus).To(HaveLen(2))
	g.Expect(b.Status.PartitionStatus[0].Name).To(Equal("canary"))
	g.Expect(b.Status.PartitionStatus[0].Summary.OutOfSync).To(Equal(1))
	g.Expect(b.Status.PartitionStatus[1].Summary.OutOfSync).To(Equal(1))
	g.Expect(b.Status.Unavailable).To(Equal(1))
	g.Expect(b.Status.UnavailablePartitions).To(Equal(1))
}

func TestStrategyProgressDeadline(t *testing.T) {
	g := NewWithT(t)
	deadline := func(secs *int) time.Duration {
		return strategy(&v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{RolloutStrategy: &v1alpha1.RolloutStrategy{ProgressDeadlineSeconds: secs}}}).ProgressDeadline
	}
	n := func(i int) *int { return &i }
	g.Expect(deadline(nil)).To(BeZero(), "unset: the default")
	g.Expect(deadline(n(30))).To(Equal(30 * time.Second))
	g.Expect(deadline(n(0))).To(Equal(time.Duration(-1)), "0: no deadline")
	g.Expect(deadline(n(-5))).To(Equal(time.Duration(-1)))
	g.Expect(deadline(n(math.MaxInt))).To(Equal(time.Duration(-1)), "too large for a duration: no deadline, no overflow")
}
