package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// state builds a target's deployment: "-" none, "old" ready on the old ID, "new" ready on the
// new one, "moving" given the new ID and not applied yet, "failed" failed with the new ID,
// "slow" given the new ID an hour ago and still not ready, "sick" not ready on the old ID.
func state(s string) *Deployment {
	switch s {
	case "-":
		return nil
	case "old":
		return &Deployment{DeploymentID: "old", AppliedDeploymentID: "old", Ready: true, Since: now.Add(-time.Hour)}
	case "new":
		return &Deployment{DeploymentID: "new", AppliedDeploymentID: "new", Ready: true, Since: now.Add(-time.Hour)}
	case "moving":
		return &Deployment{DeploymentID: "new", AppliedDeploymentID: "old", Ready: true, Since: now.Add(-time.Minute)}
	case "failed":
		return &Deployment{DeploymentID: "new", AppliedDeploymentID: "old", Ready: true, Failed: true,
			Message: "upgrade failed: boom", Since: now.Add(-time.Minute)}
	case "slow":
		return &Deployment{DeploymentID: "new", AppliedDeploymentID: "new", Ready: false, Since: now.Add(-time.Hour)}
	case "sick":
		return &Deployment{DeploymentID: "old", AppliedDeploymentID: "old", Ready: false, Since: now.Add(-time.Hour)}
	}
	panic("unknown state " + s)
}

// fleet builds targets c01, c02, … with the given states; cluster i is labelled
// stage=<stages[i]> when stages is given.
func fleet(states string, stages ...string) []Target {
	var out []Target
	for i, s := range strings.Fields(states) {
		t := Target{Cluster: fmt.Sprintf("c%02d", i+1), DesiredID: "new", Version: "2.0.0",
			Labels: map[string]string{}, Deployment: state(s)}
		if i < len(stages) {
			t.Labels["stage"] = stages[i]
			t.Groups = []Group{{Name: "group-" + stages[i], Labels: map[string]string{"stage": stages[i]}}}
		}
		out = append(out, t)
	}
	return out
}

func actions(p Plan) string {
	var parts []string
	for _, a := range p.Actions {
		parts = append(parts, map[Action]string{Hold: "H", Create: "C", Update: "U", Keep: "K"}[a])
	}
	return strings.Join(parts, " ")
}

func num(i int) *intstr.IntOrString    { v := intstr.FromInt32(int32(i)); return &v }
func str(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
func ptr[T any](v T) *T                { return &v }

func byStage(stage string, mu *intstr.IntOrString) PartitionSpec {
	return PartitionSpec{Name: stage, MaxUnavailable: mu,
		ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": stage}}}
}

var threeStages = []string{"canary", "canary", "canary", "canary", "early", "early", "early", "early", "late", "late", "late", "late"}

func threePartitions(mu *intstr.IntOrString) Strategy {
	return Strategy{Partitions: []PartitionSpec{byStage("canary", mu), byStage("early", mu), byStage("late", mu)}}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		strategy Strategy
		targets  []Target
		// want is one letter per target: Hold, Create, Update, Keep.
		want string
		// partitions is "name count max unavailable" per partition.
		partitions  []string
		unavailable int
		halted      bool
		rolling     int
	}{
		{name: "defaults: every cluster moves at once", targets: fleet("old old old old"),
			want: "U U U U", partitions: []string{"All 4 4 4"}, unavailable: 4, rolling: 0},
		{name: "first deployment: every BundleDeployment is created", targets: fleet("- - -"),
			want: "C C C", partitions: []string{"All 3 3 3"}, rolling: 0},
		{name: "maxNew bounds the creations of one pass", strategy: Strategy{MaxNew: ptr(2)}, targets: fleet("- - - new"),
			want: "C C H K", partitions: []string{"All 4 4 3"}, rolling: 0},
		{name: "in sync: nothing moves", targets: fleet("new new"), want: "K K", partitions: []string{"All 2 2 0"}, rolling: -1},
		{name: "maxUnavailable 1: one cluster at a time", strategy: Strategy{MaxUnavailable: num(1)},
			targets: fleet("old old old"), want: "U H H", partitions: []string{"All 3 1 3"}, unavailable: 1, rolling: 0},
		{name: "maxUnavailable 1 with one moving: the others wait", strategy: Strategy{MaxUnavailable: num(1)},
			targets: fleet("new moving old"), want: "K K H", partitions: []string{"All 3 1 2"}, unavailable: 1, rolling: 0},
		{name: "an unavailable cluster may always move", strategy: Strategy{MaxUnavailable: num(1)},
			targets: fleet("moving sick old"), want: "K U H", partitions: []string{"All 3 1 3"}, unavailable: 2, rolling: 0},
		{name: "maxUnavailable 0 never moves an available cluster (as in Fleet)", strategy: Strategy{MaxUnavailable: num(0)},
			targets: fleet("old old"), want: "H H", partitions: []string{"All 2 0 2"}, rolling: 0},
		{name: "percentages round down", strategy: Strategy{MaxUnavailable: str("50%")},
			targets: fleet("old old old old old"), want: "U U H H H", partitions: []string{"All 5 2 5"}, unavailable: 2, rolling: 0},
		{name: "a percentage below one cluster is one", strategy: Strategy{MaxUnavailable: str("10%")},
			targets: fleet("old old old"), want: "U H H", partitions: []string{"All 3 1 3"}, unavailable: 1, rolling: 0},
		{name: "manual partitions: the second waits for the first", strategy: threePartitions(num(2)),
			targets: fleet("old old old old old old old old old old old old", threeStages...),
			want:    "U U H H H H H H H H H H", partitions: []string{"canary 4 2 4", "early 4 2 4", "late 4 2 4"},
			unavailable: 2, rolling: 0},
		{name: "first partition within its maxUnavailable: the next starts", strategy: threePartitions(num(2)),
			targets: fleet("new new moving old old old old old old old old old", threeStages...),
			want:    "K K K U U U H H H H H H", partitions: []string{"canary 4 2 2", "early 4 2 4", "late 4 2 4"},
			unavailable: 4, rolling: 0},
		{name: "first partition done: the second rolls", strategy: threePartitions(num(2)),
			targets: fleet("new new new new old old old old old old old old", threeStages...),
			want:    "K K K K U U H H H H H H", partitions: []string{"canary 4 2 0", "early 4 2 4", "late 4 2 4"},
			unavailable: 2, rolling: 1},
		{name: "the Bundle-wide maxUnavailable holds across partitions",
			strategy: Strategy{MaxUnavailable: num(3), Partitions: threePartitions(num(2)).Partitions},
			targets:  fleet("new new moving moving old old old old old old old old", threeStages...),
			want:     "K K K K U H H H H H H H", partitions: []string{"canary 4 2 2", "early 4 2 4", "late 4 2 4"},
			unavailable: 3, rolling: 0},
		{name: "maxUnavailablePartitions 1 lets the next partition start too",
			strategy: Strategy{MaxUnavailablePartitions: num(1), Partitions: threePartitions(num(1)).Partitions},
			targets:  fleet("old old old old old old old old old old old old", threeStages...),
			want:     "U H H H U H H H H H H H", partitions: []string{"canary 4 1 4", "early 4 1 4", "late 4 1 4"},
			unavailable: 2, rolling: 0},
		{name: "the default 100% per partition lets every partition roll at once", strategy: threePartitions(nil),
			targets: fleet("old old old old old old old old old old old old", threeStages...),
			want:    "U U U U U U U U U U U U", partitions: []string{"canary 4 4 4", "early 4 4 4", "late 4 4 4"},
			unavailable: 12, rolling: 0},
		{name: "a partition's maxUnavailable defaults to the strategy's",
			strategy: Strategy{MaxUnavailable: num(1), Partitions: threePartitions(nil).Partitions},
			targets:  fleet("old old old old old old old old old old old old", threeStages...),
			want:     "U H H H H H H H H H H H", partitions: []string{"canary 4 1 4", "early 4 1 4", "late 4 1 4"},
			unavailable: 1, rolling: 0},
		{name: "clusters in no partition are left out", strategy: Strategy{Partitions: []PartitionSpec{byStage("canary", nil)}},
			targets: fleet("old old old", "canary", "other"), want: "U H H", partitions: []string{"canary 1 1 1"}, unavailable: 1, rolling: 0},
		{name: "a cluster matched by two partitions belongs to the first",
			strategy: Strategy{Partitions: []PartitionSpec{{Name: "one", ClusterName: "c01"}, byStage("canary", nil)}},
			targets:  fleet("old old", "canary", "canary"), want: "U U", partitions: []string{"one 1 1 1", "canary 1 1 1"},
			unavailable: 2, rolling: 0},
		{name: "a partition with no criterion matches nothing", strategy: Strategy{Partitions: []PartitionSpec{{Name: "empty"}}},
			targets: fleet("old"), want: "H", partitions: []string{"empty 0 1 0"}, rolling: -1},
		{name: "partitions by cluster group, group selector and name",
			strategy: Strategy{MaxUnavailable: num(0), Partitions: []PartitionSpec{
				{Name: "by-group", ClusterGroup: "group-late"},
				{Name: "by-group-labels", ClusterGroupSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": "early"}}},
				{Name: "by-name", ClusterName: "c01"},
			}},
			targets: fleet("old old old", "canary", "early", "late"), want: "H H H",
			partitions: []string{"by-group 1 0 1", "by-group-labels 1 0 1", "by-name 1 0 1"}, rolling: 0},
		{name: "a name with a label selector needs both",
			strategy: Strategy{Partitions: []PartitionSpec{{Name: "both", ClusterName: "c01",
				ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": "late"}}}}},
			targets: fleet("old old", "canary", "late"), want: "H H", partitions: []string{"both 0 1 0"}, rolling: -1},
		{name: "auto partitions from the threshold on",
			strategy: Strategy{AutoPartitionThreshold: ptr(4), AutoPartitionSize: str("50%"), MaxUnavailable: num(1)},
			targets:  fleet("old old old old"), want: "U H H H",
			partitions: []string{"Partition 0 - 2 2 1 2", "Partition 2 - 4 2 1 2"}, unavailable: 1, rolling: 0},
		{name: "below the threshold one partition",
			strategy: Strategy{AutoPartitionThreshold: ptr(5), AutoPartitionSize: str("50%")},
			targets:  fleet("old old old old"), want: "U U U U", partitions: []string{"All 4 4 4"}, unavailable: 4, rolling: 0},
		{name: "autoPartitionSize 0 disables auto partitions",
			strategy: Strategy{AutoPartitionThreshold: ptr(1), AutoPartitionSize: num(0)},
			targets:  fleet("old old"), want: "U U", partitions: []string{"All 2 2 2"}, unavailable: 2, rolling: 0},
		{name: "an uneven split leaves a smaller last partition",
			strategy: Strategy{AutoPartitionThreshold: ptr(1), AutoPartitionSize: num(2)},
			targets:  fleet("new new new new new"), want: "K K K K K",
			partitions: []string{"Partition 0 - 2 2 2 0", "Partition 2 - 4 2 2 0", "Partition 4 - 5 1 1 0"}, rolling: -1},
		{name: "a failure in the first partition halts the rollout", strategy: threePartitions(num(2)),
			targets: fleet("new failed moving old old old old old old old old old", threeStages...),
			want:    "K K K H H H H H H H H H", partitions: []string{"canary 4 2 3", "early 4 2 4", "late 4 2 4"},
			unavailable: 2, halted: true, rolling: 0},
		{name: "a halt also holds creations", targets: fleet("failed -"), want: "K H",
			partitions: []string{"All 2 2 2"}, unavailable: 1, halted: true, rolling: 0},
		{name: "past the progress deadline a cluster counts as failed", strategy: threePartitions(num(4)),
			targets: fleet("slow new new new old old old old old old old old", threeStages...),
			want:    "K K K K H H H H H H H H", partitions: []string{"canary 4 4 1", "early 4 4 4", "late 4 4 4"},
			unavailable: 1, halted: true, rolling: 0},
		{name: "no deadline: only failed applies halt",
			strategy: Strategy{ProgressDeadline: -1, Partitions: threePartitions(num(4)).Partitions},
			targets:  fleet("slow new new new old old old old old old old old", threeStages...),
			want:     "K K K K U U U U U U U U", partitions: []string{"canary 4 4 1", "early 4 4 4", "late 4 4 4"},
			unavailable: 9, rolling: 0},
		{name: "failures with an older ID do not halt a new one", targets: fleet("old old"),
			want: "U U", partitions: []string{"All 2 2 2"}, unavailable: 2, rolling: 0},
		{name: "everything on the failing version: nothing left to hold, no halt", targets: fleet("failed new"),
			want: "K K", partitions: []string{"All 2 2 1"}, unavailable: 1, rolling: 0},
		{name: "paused clusters follow the spec and do not count", strategy: Strategy{MaxUnavailable: num(1)},
			targets: func() []Target {
				ts := fleet("old old old")
				ts[0].Paused = true
				return ts
			}(), want: "U U H", partitions: []string{"All 3 1 2"}, unavailable: 1, rolling: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			plan, err := Decide(tt.strategy, tt.targets, now)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(actions(plan)).To(Equal(tt.want))
			var parts []string
			for _, p := range plan.Partitions {
				parts = append(parts, fmt.Sprintf("%s %d %d %d", p.Name, p.Count, p.MaxUnavailable, p.Unavailable))
			}
			g.Expect(parts).To(Equal(tt.partitions))
			g.Expect(plan.Unavailable).To(Equal(tt.unavailable), "unavailable after the plan")
			g.Expect(plan.Halted).To(Equal(tt.halted))
			g.Expect(plan.Rolling).To(Equal(tt.rolling))
		})
	}
}

func TestHaltNamesTheFailedClusters(t *testing.T) {
	g := NewWithT(t)
	plan, err := Decide(threePartitions(num(4)), fleet("failed slow new new old old old old old old old old", threeStages...), now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(plan.Halted).To(BeTrue())
	g.Expect(plan.Failures).To(Equal([]Failure{
		{Cluster: "c01", Version: "2.0.0", Reason: "upgrade failed: boom"},
		{Cluster: "c02", Version: "2.0.0", Reason: "not ready 10m0s after it was given this version"},
	}))
}

func TestRecheckAtTheNextDeadline(t *testing.T) {
	g := NewWithT(t)
	ts := fleet("moving moving old")
	ts[0].Deployment.Since = now.Add(-4 * time.Minute)
	ts[1].Deployment.Since = now.Add(-9 * time.Minute)
	plan, err := Decide(Strategy{}, ts, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(plan.RecheckAfter).To(Equal(time.Minute))

	plan, err = Decide(Strategy{ProgressDeadline: -1}, ts, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(plan.RecheckAfter).To(BeZero())
}

// TestDriveToCompletion replays passes of the rollout with agents that deploy whatever they are
// given, and checks on every pass that no partition starts before the ones before it are within
// their maxUnavailable and that no limit is exceeded.
func TestDriveToCompletion(t *testing.T) {
	g := NewWithT(t)
	s := Strategy{MaxUnavailable: num(3), Partitions: threePartitions(num(2)).Partitions}
	ts := fleet("old old old old old old old old old old old old", threeStages...)
	for pass := 0; pass < 50; pass++ {
		plan, err := Decide(s, ts, now)
		g.Expect(err).NotTo(HaveOccurred())
		moving := 0
		for i, a := range plan.Actions {
			if a == Update {
				ts[i].Deployment.DeploymentID = "new"
			}
			if ts[i].Deployment.unavailable() {
				moving++
			}
		}
		g.Expect(moving).To(BeNumerically("<=", 3), "pass %d: Bundle-wide maxUnavailable", pass)
		for pi, p := range plan.Partitions {
			started := false
			for _, i := range p.Targets {
				started = started || ts[i].Deployment.DeploymentID == "new"
			}
			if !started || pi == 0 {
				continue
			}
			prev := plan.Partitions[pi-1]
			notDone := 0
			for _, i := range prev.Targets {
				d := ts[i].Deployment
				if d.DeploymentID != "new" || d.unavailable() {
					notDone++
				}
			}
			g.Expect(notDone).To(BeNumerically("<=", prev.MaxUnavailable), "pass %d: %s started early", pass, p.Name)
		}
		if plan.Rolling < 0 {
			return
		}
		// The agents deploy what they were given; the next pass sees it.
		for i := range ts {
			ts[i].Deployment.AppliedDeploymentID = ts[i].Deployment.DeploymentID
		}
	}
	t.Fatal("the rollout did not complete in 50 passes")
}

func TestInvalidStrategy(t *testing.T) {
	tests := []struct {
		name     string
		strategy Strategy
		want     string
	}{
		{"bad maxUnavailable", Strategy{MaxUnavailable: str("lots")},
			`spec.rolloutStrategy.maxUnavailable: "lots" is neither a number nor a percentage such as 10%`},
		{"bad percentage", Strategy{MaxUnavailablePartitions: str("x%")},
			`spec.rolloutStrategy.maxUnavailablePartitions: "x%" is not a percentage such as 10%`},
		{"bad partition maxUnavailable", Strategy{Partitions: []PartitionSpec{{Name: "a", ClusterName: "c01", MaxUnavailable: str("?")}}},
			`spec.rolloutStrategy.partitions[0].maxUnavailable: "?" is neither a number nor a percentage such as 10%`},
		{"bad partition selector", Strategy{Partitions: []PartitionSpec{{Name: "a", ClusterSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "stage", Operator: "Near"}}}}}},
			`spec.rolloutStrategy.partitions[0].clusterSelector: "Near" is not a valid label selector operator`},
		{"bad autoPartitionSize", Strategy{AutoPartitionThreshold: ptr(1), AutoPartitionSize: str("half")},
			`spec.rolloutStrategy.autoPartitionSize: "half" is neither a number nor a percentage such as 10%`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Decide(tt.strategy, fleet("old"), now)
			g.Expect(err).To(MatchError(tt.want))
		})
	}
}
