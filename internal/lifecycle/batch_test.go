package lifecycle

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestBatchedGathersABurst: fifty events for objects that map to one summary become one request,
// ready after the delay, on the priority queue controllers use.
func TestBatchedGathersABurst(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := priorityqueue.New[reconcile.Request]("batched")
	defer q.ShutDown()
	summary := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "ws", Name: "c"}}
	h := Batched(200*time.Millisecond, func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{summary}
	})
	for range 50 {
		h.Create(ctx, event.CreateEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bd"}}}, q)
	}
	g.Consistently(q.Len, 100*time.Millisecond, 10*time.Millisecond).Should(BeZero(), "nothing before the delay")
	g.Eventually(q.Len, time.Second, 10*time.Millisecond).Should(Equal(1), "one request for the burst")
	got, _ := q.Get()
	g.Expect(got).To(Equal(summary))
	q.Done(got)
	g.Consistently(q.Len, 300*time.Millisecond, 10*time.Millisecond).Should(BeZero())
}
