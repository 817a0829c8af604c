package agent

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/internal/clusterns"
)

func TestHeartbeatRenewsTheAgentLease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := "cluster-heartbeat"
	g.Expect(upstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	hb := &Heartbeat{Client: upstream.Client, Namespace: ns, Holder: "beating", Interval: time.Minute, Clock: clk}
	// No Lease yet: the controller creates it; the error says so, nothing panics.
	g.Expect(hb.Beat(ctx)).To(MatchError(ContainSubstring("controller creates it")))

	g.Expect(upstream.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: clusterns.AgentLease, Namespace: ns}})).To(Succeed())
	g.Expect(hb.Beat(ctx)).To(Succeed())
	got := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: ns, Name: clusterns.AgentLease}
	g.Expect(upstream.Client.Get(ctx, key, got)).To(Succeed())
	g.Expect(got.Spec.RenewTime.Time).To(BeTemporally("==", start))
	g.Expect(*got.Spec.HolderIdentity).To(Equal("beating"))
	g.Expect(got.Annotations).To(HaveKey(clusterns.AgentVersionAnnotation))

	clk.Step(time.Minute)
	g.Expect(hb.Beat(ctx)).To(Succeed())
	g.Expect(upstream.Client.Get(ctx, key, got)).To(Succeed())
	g.Expect(got.Spec.RenewTime.Time).To(BeTemporally("==", start.Add(time.Minute)))
}
