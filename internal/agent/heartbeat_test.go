package agent

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestHeartbeatWritesOnlyTheAgentStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "beating", Namespace: workspace}}
	g.Expect(upstream.Client.Create(ctx, cl)).To(Succeed())
	// Status written by the controller.
	cl.Status.Namespace = "cluster-x"
	cl.Status.Display.State = "NotReady"
	cl.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonAgentNotSeen, Message: "never seen", LastTransitionTime: metav1.Now()}}
	g.Expect(upstream.Client.Status().Update(ctx, cl)).To(Succeed())

	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	hb := &Heartbeat{Client: upstream.Client, Cluster: types.NamespacedName{Namespace: workspace, Name: "beating"}, Interval: time.Minute, Clock: clk}
	g.Expect(hb.Beat(ctx)).To(Succeed())
	got := &v1alpha1.Cluster{}
	g.Expect(upstream.Client.Get(ctx, client.ObjectKeyFromObject(cl), got)).To(Succeed())
	g.Expect(got.Status.Agent.LastSeen.Time).To(BeTemporally("==", start))

	clk.Step(time.Minute)
	g.Expect(hb.Beat(ctx)).To(Succeed())
	g.Expect(upstream.Client.Get(ctx, client.ObjectKeyFromObject(cl), got)).To(Succeed())
	g.Expect(got.Status.Agent.LastSeen.Time).To(BeTemporally("==", start.Add(time.Minute)))
	g.Expect(got.Status.Namespace).To(Equal("cluster-x"))
	g.Expect(got.Status.Display.State).To(Equal("NotReady"))
	g.Expect(got.Status.Conditions).To(HaveLen(1))
	g.Expect(got.Spec).To(Equal(cl.Spec))

	// A missing Cluster is an error that names it, not a panic.
	hb.Cluster.Name = "absent"
	g.Expect(hb.Beat(ctx)).To(MatchError(ContainSubstring("Cluster " + workspace + "/absent")))
}
