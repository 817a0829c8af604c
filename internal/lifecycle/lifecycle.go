// Package lifecycle is the skeleton every helmops reconciler shares: a finalizer added and
// removed with a merge patch, a status computed once from what the reconcile observed (and the
// error it ended with) and patched only when it changed, and an ordered list of named steps whose
// results are aggregated.
//
// A Reconcile then reads as its table of contents:
//
//	patch := lifecycle.Snapshot(c, obj)
//	defer func() { retErr = patch.Status(ctx, obj, retErr, func(err error) { computeStatus(obj, s, err) }) }()
//	return lifecycle.Run(ctx, s, steps...)
package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/internal/redact"
)

// Step is one named part of a reconcile. It records what it found in the scope S.
type Step[S any] struct {
	Name string
	Run  func(ctx context.Context, s S) (ctrl.Result, error)
}

// errHalt is what Halt returns; Run turns it into a nil error.
var errHalt = errors.New("halt")

// Halt ends a run without an error: the next steps need what this one could not provide, and the
// answer is to wait (for a watch event, or for res.RequeueAfter).
func Halt(res ctrl.Result) (ctrl.Result, error) { return res, errHalt }

// Run runs the steps in order. The first error ends the run and is returned (steps depend on
// the ones before them); Halt ends it without one. The result is the soonest RequeueAfter any
// step that ran asked for, and no requeue when the run ends in an error (controller-runtime
// then retries with backoff, or not at all for a reconcile.TerminalError).
func Run[S any](ctx context.Context, s S, steps ...Step[S]) (ctrl.Result, error) {
	var res ctrl.Result
	log := ctrl.LoggerFrom(ctx)
	for _, st := range steps {
		r, err := st.Run(ctrl.LoggerInto(ctx, log.WithValues("step", st.Name)), s)
		res = Soonest(res, r)
		switch {
		case errors.Is(err, errHalt):
			return res, nil
		case err != nil:
			log.V(1).Info("Reconcile step failed", "step", st.Name, "error", err.Error())
			return ctrl.Result{}, err
		}
	}
	return res, nil
}

// Soonest combines two results: the lowest non-zero RequeueAfter wins.
func Soonest(a, b ctrl.Result) ctrl.Result {
	switch {
	case a.RequeueAfter == 0:
		return b
	case b.RequeueAfter == 0 || a.RequeueAfter <= b.RequeueAfter:
		return a
	}
	return b
}

// Periodic queues the requeue of res (a poll, a drift check) behind work that events bring: the
// priority queue takes events at the default priority and an event for the same object raises
// this one again. A result without RequeueAfter is returned as it is.
func Periodic(res ctrl.Result) ctrl.Result {
	if res.RequeueAfter > 0 {
		res.Priority = ptr.To(handler.LowPriority)
	}
	return res
}

// IsTerminal reports whether err is a reconcile.TerminalError: bad input that a retry cannot fix.
func IsTerminal(err error) bool { return errors.Is(err, reconcile.TerminalError(nil)) }

// IsTransient reports whether err is worth a retry: any error but a terminal one.
func IsTransient(err error) bool { return err != nil && !IsTerminal(err) }

// AddFinalizer adds the finalizer with a merge patch (guarded by the resourceVersion, so a
// concurrent change to the list is not lost) when obj does not have it yet.
func AddFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, finalizer)
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer %s to %s: %w", finalizer, klog.KObj(obj), err)
	}
	return nil
}

// RemoveFinalizer removes the finalizer with a merge patch when obj has it. An object already
// gone is not an error.
func RemoveFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, finalizer)
	err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s from %s: %w", finalizer, klog.KObj(obj), err)
	}
	return nil
}

// StatusPatch holds an object as it was read, to patch its status at the end of a reconcile.
type StatusPatch struct {
	c      client.Client
	before client.Object
	lock   bool
}

// Snapshot copies obj as it is now; take it before any step changes the status.
func Snapshot(c client.Client, obj client.Object) *StatusPatch {
	return &StatusPatch{c: c, before: obj.DeepCopyObject().(client.Object)}
}

// SnapshotOwned is Snapshot for a status that only this reconciler writes. Its patch carries
// the snapshot's resourceVersion: a merge patch replaces whole lists (the conditions), so a
// reconcile that read a stale cache would otherwise drop what a newer write of its own added.
// It gets a conflict instead and is retried on a fresher copy. Statuses that other writers share
// (a Cluster's, which agents heartbeat into) keep Snapshot: there a lock would conflict on every
// heartbeat, and the fields each writer owns are disjoint.
func SnapshotOwned(c client.Client, obj client.Object) *StatusPatch {
	p := Snapshot(c, obj)
	p.lock = true
	return p
}

// Status calls compute with the reconcile's error, then patches the status (a merge patch of the
// fields that changed, so fields another writer owns are kept) when it differs from the
// snapshot. It returns reconcileErr joined with the patch's error; an object already gone is not
// an error, and an owned status that changed since it was read is ErrStale.
func (p *StatusPatch) Status(ctx context.Context, obj client.Object, reconcileErr error, compute func(error)) error {
	compute(reconcileErr)
	patch := client.MergeFrom(p.before)
	if p.lock {
		patch = client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{})
	}
	changed, err := statusChanged(patch, obj)
	switch {
	case err != nil:
		return errors.Join(reconcileErr, err)
	case !changed:
		return reconcileErr
	}
	err = p.c.Status().Patch(ctx, obj, patch)
	switch {
	case err == nil || apierrors.IsNotFound(err):
		return reconcileErr
	case p.lock && apierrors.IsConflict(err) && reconcileErr != nil:
		return reconcileErr // retried with backoff anyway, on a fresher copy
	case p.lock && apierrors.IsConflict(err):
		return fmt.Errorf("%w: %s changed since it was read", ErrStale, klog.KObj(obj))
	}
	return errors.Join(reconcileErr, fmt.Errorf("patching the status of %s: %w", klog.KObj(obj), err))
}

// ErrStale is what Status returns when an owned status patch found a newer object than the one
// read: the reconcile ran on a cache that had not caught up yet. RetryStale turns it into a
// short requeue.
var ErrStale = errors.New("stale read")

// StaleRetry is how soon a reconcile that read a stale copy runs again; the cache usually
// catches up within milliseconds.
const StaleRetry = 200 * time.Millisecond

// RetryStale replaces ErrStale by a requeue after StaleRetry, so a stale read (which is expected
// and harmless) is neither logged as an error nor slowed by the error backoff. Any other error
// comes back alone: controller-runtime retries it with backoff and ignores a result beside it.
func RetryStale(ctx context.Context, res ctrl.Result, err error) (ctrl.Result, error) {
	switch {
	case err == nil:
		return res, nil
	case !errors.Is(err, ErrStale):
		return ctrl.Result{}, err // controller-runtime ignores a result that comes with an error
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Status patch found a newer object; reconciling again", "error", err.Error())
	return ctrl.Result{RequeueAfter: StaleRetry}, nil
}

// statusChanged reports whether the merge patch from the snapshot touches the status. Comparing
// serialised forms means a difference the API cannot store (nanoseconds of a time) costs no write.
func statusChanged(patch client.Patch, obj client.Object) (bool, error) {
	data, err := patch.Data(obj)
	if err != nil {
		return false, fmt.Errorf("computing the status patch of %s: %w", klog.KObj(obj), err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return false, fmt.Errorf("reading the status patch of %s: %w", klog.KObj(obj), err)
	}
	_, ok := fields["status"]
	return ok, nil
}

// SetCondition sets a condition of an object of generation gen. Its lastTransitionTime is now
// (the real time when now is zero) when the status changes, and kept otherwise. The message is
// redacted and truncated to what the API accepts (redact.Message): every condition helmops
// writes goes through here.
func SetCondition(conds *[]metav1.Condition, gen int64, t string, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: redact.Message(msg), ObservedGeneration: gen,
		LastTransitionTime: metav1.NewTime(now),
	})
}

// Bool is metav1.ConditionTrue for true and metav1.ConditionFalse for false.
func Bool(ok bool) metav1.ConditionStatus {
	if ok {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// Waited is how long a condition has held its status at now, 0 when it is absent or does not
// have the given status and reason: the start of a wait is the condition's lastTransitionTime.
func Waited(conds []metav1.Condition, t string, status metav1.ConditionStatus, reason string, now time.Time) time.Duration {
	c := meta.FindStatusCondition(conds, t)
	if c == nil || c.Status != status || c.Reason != reason {
		return 0
	}
	return now.Sub(c.LastTransitionTime.Time)
}
