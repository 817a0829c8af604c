package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	step := func(name string, res ctrl.Result, err error) Step[*[]string] {
		return Step[*[]string]{Name: name, Run: func(_ context.Context, ran *[]string) (ctrl.Result, error) {
			*ran = append(*ran, name)
			return res, err
		}}
	}
	halt := Step[*[]string]{Name: "halt", Run: func(_ context.Context, ran *[]string) (ctrl.Result, error) {
		*ran = append(*ran, "halt")
		return Halt(ctrl.Result{RequeueAfter: 3 * time.Second})
	}}
	cases := []struct {
		name    string
		steps   []Step[*[]string]
		ran     []string
		res     ctrl.Result
		wantErr error
	}{
		{"all run, the soonest requeue wins", []Step[*[]string]{step("a", ctrl.Result{RequeueAfter: time.Minute}, nil), step("b", ctrl.Result{}, nil),
			step("c", ctrl.Result{RequeueAfter: time.Second}, nil)}, []string{"a", "b", "c"}, ctrl.Result{RequeueAfter: time.Second}, nil},
		{"an error stops the run and drops the requeue", []Step[*[]string]{step("a", ctrl.Result{RequeueAfter: time.Minute}, nil), step("b", ctrl.Result{}, boom),
			step("c", ctrl.Result{}, nil)}, []string{"a", "b"}, ctrl.Result{}, boom},
		{"halt stops without an error", []Step[*[]string]{step("a", ctrl.Result{RequeueAfter: time.Minute}, nil), halt, step("c", ctrl.Result{}, nil)},
			[]string{"a", "halt"}, ctrl.Result{RequeueAfter: 3 * time.Second}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var ran []string
			res, err := Run(context.Background(), &ran, tc.steps...)
			g.Expect(ran).To(Equal(tc.ran))
			g.Expect(res).To(Equal(tc.res))
			if tc.wantErr == nil {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(tc.wantErr))
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	g := NewWithT(t)
	g.Expect(IsTransient(nil)).To(BeFalse())
	g.Expect(IsTransient(errors.New("timeout"))).To(BeTrue())
	g.Expect(IsTerminal(reconcile.TerminalError(errors.New("bad spec")))).To(BeTrue())
	g.Expect(IsTransient(reconcile.TerminalError(errors.New("bad spec")))).To(BeFalse())
}

// TestStatusWritesOnlyChanges: an unchanged status (or one that differs only below what the API
// stores) is not written: the patch helper has no client to write with here.
func TestStatusWritesOnlyChanges(t *testing.T) {
	g := NewWithT(t)
	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ws"}}
	op.Status.LastPollingTime = &metav1.Time{Time: time.Unix(100, 0)}
	p := Snapshot(nil, op)
	reconcileErr := errors.New("transient")
	var seen error
	err := p.Status(context.Background(), op, reconcileErr, func(err error) {
		seen = err
		op.Status.LastPollingTime = &metav1.Time{Time: time.Unix(100, 5)} // nanoseconds are not stored
	})
	g.Expect(seen).To(Equal(reconcileErr), "compute sees the reconcile's error")
	g.Expect(err).To(Equal(reconcileErr))

	changed, err := statusChanged(client.MergeFrom(p.before), &v1alpha1.HelmOp{ObjectMeta: op.ObjectMeta, Status: v1alpha1.HelmOpStatus{Version: "1.0.0"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changed).To(BeTrue())
}

func TestConditions(t *testing.T) {
	g := NewWithT(t)
	var conds []metav1.Condition
	t0 := time.Unix(1000, 0)
	SetCondition(&conds, 2, "Ready", Bool(false), "Deleting", "waiting", t0)
	SetCondition(&conds, 2, "Ready", Bool(false), "Deleting", "still waiting", t0.Add(time.Minute))
	g.Expect(conds[0].LastTransitionTime.Time).To(Equal(t0), "kept while the status does not change")
	g.Expect(conds[0].Message).To(Equal("still waiting"))
	g.Expect(conds[0].ObservedGeneration).To(Equal(int64(2)))
	g.Expect(Waited(conds, "Ready", metav1.ConditionFalse, "Deleting", t0.Add(5*time.Minute))).To(Equal(5 * time.Minute))
	g.Expect(Waited(conds, "Ready", metav1.ConditionTrue, "Deleting", t0)).To(BeZero())
	g.Expect(Soonest(ctrl.Result{}, ctrl.Result{RequeueAfter: time.Second})).To(Equal(ctrl.Result{RequeueAfter: time.Second}))
}

// TestOwnedStatusFromAStaleRead: a reconcile that read a copy older than the status it wrote
// last must not drop a condition that write added. A merge patch replaces the whole conditions
// list, so the unguarded patch loses it; the owned one gets a conflict and keeps it.
func TestOwnedStatusFromAStaleRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot func(client.Client, client.Object) *StatusPatch
		conflict bool
	}{
		{"owned", SnapshotOwned, true},
		{"shared", Snapshot, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			scheme := runtime.NewScheme()
			g.Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
			op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ws"}}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(op).WithStatusSubresource(op).Build()
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(op), op)).To(Succeed())
			stale := op.DeepCopy()

			SetCondition(&op.Status.Conditions, 1, "NewerVersionAvailable", metav1.ConditionTrue, "OutsideConstraint", "1.4.2 is available", time.Time{})
			g.Expect(c.Status().Update(ctx, op)).To(Succeed())

			p := tc.snapshot(c, stale)
			err := p.Status(ctx, stale, nil, func(error) {
				SetCondition(&stale.Status.Conditions, 1, "Ready", metav1.ConditionTrue, "Ready", "", time.Time{})
			})
			got := &v1alpha1.HelmOp{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(op), got)).To(Succeed())
			if tc.conflict {
				g.Expect(err).To(MatchError(ErrStale))
				g.Expect(got.Condition("NewerVersionAvailable")).NotTo(BeNil())
				res, err := RetryStale(ctx, ctrl.Result{RequeueAfter: time.Hour}, err)
				g.Expect(err).NotTo(HaveOccurred(), "a stale read is not an error")
				g.Expect(res).To(Equal(ctrl.Result{RequeueAfter: StaleRetry}))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got.Condition("NewerVersionAvailable")).To(BeNil(), "why the HelmOp's status is owned")
			}
		})
	}
}

func TestRetryStale(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	poll := ctrl.Result{RequeueAfter: time.Minute}
	res, err := RetryStale(ctx, poll, nil)
	g.Expect(res).To(Equal(poll))
	g.Expect(err).NotTo(HaveOccurred())
	boom := errors.New("boom")
	res, err = RetryStale(ctx, poll, boom)
	g.Expect(res).To(BeZero(), "an error comes alone")
	g.Expect(err).To(Equal(boom))
}

func TestPeriodic(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Periodic(ctrl.Result{})).To(BeZero(), "nothing to requeue")
	res := Periodic(ctrl.Result{RequeueAfter: time.Minute})
	g.Expect(res.RequeueAfter).To(Equal(time.Minute))
	g.Expect(res.Priority).NotTo(BeNil())
	g.Expect(*res.Priority).To(BeNumerically("<", 0), "below events, which come at priority 0")
}
