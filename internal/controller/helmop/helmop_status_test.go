package helmop

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartversion"
)

func bundleWith(ready *metav1.ConditionStatus, targeted *metav1.Condition, readyN, desired int) *v1alpha1.Bundle {
	b := &v1alpha1.Bundle{}
	b.Generation, b.Status.ObservedGeneration = 1, 1
	b.Status.Summary = v1alpha1.BundleSummary{Ready: readyN, DesiredReady: desired}
	b.Status.ReadyClusters, b.Status.DesiredReadyClusters = readyN, desired
	if ready != nil {
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: v1alpha1.ReadyCondition, Status: *ready, Reason: "x", Message: "not ready on cluster prod: Deployment web 0/1"})
	}
	if targeted != nil {
		b.Status.Conditions = append(b.Status.Conditions, *targeted)
	}
	return b
}

func TestComputeStatus(t *testing.T) {
	tru, fls, unk := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	type want struct {
		accepted, ready, stalled, reconciling metav1.ConditionStatus // "" means absent
		acceptedReason, readyReason           string
		readyMessage                          string
	}
	type testCase struct {
		name string
		f    facts
		want want
		err  error // the error the reconcile ended with
		// keepsGeneration: the spec was not fully handled, observedGeneration stays.
		keepsGeneration bool
	}
	plain := []struct {
		name string
		f    facts
		want want
	}{
		{"invalid spec is stalled", facts{specErr: errors.New("spec.helm.chart: the helm block needs a chart")},
			want{accepted: fls, ready: fls, stalled: tru, acceptedReason: v1alpha1.ReasonInvalidSpec, readyReason: v1alpha1.ReasonNotAccepted, readyMessage: "spec.helm.chart: the helm block needs a chart"}},
		{"invalid constraint", facts{specErr: &chartversion.InvalidConstraintError{Constraint: "foo"}},
			want{accepted: fls, ready: fls, stalled: tru, acceptedReason: v1alpha1.ReasonInvalidConstraint, readyReason: v1alpha1.ReasonNotAccepted}},
		{"a Policy refuses it: stalled", facts{policyErr: errors.New("spec.helm.repo: not allowed by helmOp.allowedHelmRepoPatterns")},
			want{accepted: fls, ready: fls, stalled: tru, acceptedReason: v1alpha1.ReasonPolicyViolation, readyReason: v1alpha1.ReasonNotAccepted, readyMessage: "spec.helm.repo: not allowed by helmOp.allowedHelmRepoPatterns"}},
		{"missing secret waits, not stalled", facts{secretErr: errors.New("secret x/creds does not exist")},
			want{accepted: fls, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonSecretNotFound, readyReason: v1alpha1.ReasonNotAccepted}},
		{"no matching version", facts{resolveErr: &chartversion.NoMatchError{Constraint: "0.3.x"}},
			want{accepted: fls, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonNoMatchingVersion, readyReason: v1alpha1.ReasonNotAccepted}},
		{"foreign bundle is stalled", facts{bundleForeign: true, bundleErr: errors.New("a Bundle exists that was not created from this HelmOp")},
			want{accepted: fls, ready: fls, stalled: tru, acceptedReason: v1alpha1.ReasonBundleConflict, readyReason: v1alpha1.ReasonNotAccepted}},
		{"bundle not rolled up yet", facts{version: "1.0.0", bundle: bundleWith(nil, nil, 0, 0)},
			want{accepted: tru, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonSucceeded, readyReason: v1alpha1.ReasonProgressing}},
		{"bundle cannot be targeted", facts{version: "1.0.0", bundle: bundleWith(&fls, &metav1.Condition{Type: v1alpha1.TargetedCondition, Status: fls, Reason: v1alpha1.ReasonSecretNotFound, Message: "secret fleet-default/creds not found"}, 0, 2)},
			want{accepted: tru, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonSucceeded, readyReason: v1alpha1.ReasonSecretNotFound, readyMessage: "secret fleet-default/creds not found"}},
		{"no cluster matches", facts{version: "1.0.0", bundle: bundleWith(&tru, nil, 0, 0)},
			want{accepted: tru, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonSucceeded, readyReason: v1alpha1.ReasonNoTargets}},
		{"clusters not ready are named", facts{version: "1.0.0", bundle: bundleWith(&fls, nil, 1, 2)},
			want{accepted: tru, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonSucceeded, readyReason: v1alpha1.ReasonClustersNotReady, readyMessage: "not ready on cluster prod: Deployment web 0/1"}},
		{"healthy", facts{version: "1.0.0", bundle: bundleWith(&tru, nil, 2, 2)},
			want{accepted: tru, ready: tru, acceptedReason: v1alpha1.ReasonSucceeded, readyReason: v1alpha1.ReasonSucceeded, readyMessage: "Deployed on 2/2 clusters"}},
	}
	// The same with the error the reconcile ended with.
	cases := []testCase{
		{name: "terminal error of an invalid spec advances the generation", f: facts{specErr: errors.New("spec.helm.chart: the helm block needs a chart")},
			err:  reconcile.TerminalError(errors.New("spec.helm.chart: the helm block needs a chart")),
			want: want{accepted: fls, ready: fls, stalled: tru, acceptedReason: v1alpha1.ReasonInvalidSpec, readyReason: v1alpha1.ReasonNotAccepted}},
		{name: "transient secret read error is Unknown, not SecretNotFound", err: errors.New(`reading secret x/creds named by spec.helmSecretName: secrets "creds" is forbidden`),
			want: want{accepted: unk, ready: unk, reconciling: tru, acceptedReason: v1alpha1.ReasonTransientError, readyReason: v1alpha1.ReasonTransientError,
				readyMessage: `reading secret x/creds named by spec.helmSecretName: secrets "creds" is forbidden`}, keepsGeneration: true},
		{name: "repository down on a new version waits and keeps the generation", f: facts{polling: true, resolveErr: errors.New("connection refused")},
			want: want{accepted: fls, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonResolveFailed, readyReason: v1alpha1.ReasonNotAccepted}, keepsGeneration: true},
		{name: "repository down on a new version retried with backoff", f: facts{resolveErr: errors.New("connection refused")}, err: errors.New("connection refused"),
			want: want{accepted: fls, ready: fls, reconciling: tru, acceptedReason: v1alpha1.ReasonResolveFailed, readyReason: v1alpha1.ReasonNotAccepted}, keepsGeneration: true},
	}
	status := func(op *v1alpha1.HelmOp, t string) metav1.ConditionStatus {
		if c := meta.FindStatusCondition(op.Status.Conditions, t); c != nil {
			return c.Status
		}
		return ""
	}
	for _, p := range plain {
		cases = append(cases, testCase{name: p.name, f: p.f, want: p.want})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			op := &v1alpha1.HelmOp{}
			op.Generation = 3
			computeStatus(op, &tc.f, tc.err, time.Now())
			g.Expect(status(op, v1alpha1.AcceptedCondition)).To(Equal(tc.want.accepted))
			g.Expect(status(op, v1alpha1.ReadyCondition)).To(Equal(tc.want.ready))
			g.Expect(status(op, v1alpha1.StalledCondition)).To(Equal(tc.want.stalled))
			g.Expect(status(op, v1alpha1.ReconcilingCondition)).To(Equal(tc.want.reconciling))
			g.Expect(op.Condition(v1alpha1.AcceptedCondition).Reason).To(Equal(tc.want.acceptedReason))
			g.Expect(op.Condition(v1alpha1.ReadyCondition).Reason).To(Equal(tc.want.readyReason))
			if tc.want.readyMessage != "" {
				g.Expect(op.Condition(v1alpha1.ReadyCondition).Message).To(Equal(tc.want.readyMessage))
			}
			if tc.keepsGeneration {
				g.Expect(op.Status.ObservedGeneration).To(BeZero())
			} else {
				g.Expect(op.Status.ObservedGeneration).To(Equal(int64(3)))
			}
		})
	}
}

func TestPolledCondition(t *testing.T) {
	g := NewWithT(t)
	op := &v1alpha1.HelmOp{}
	op.Status.Version = "0.2.0"
	setPolledCondition(conditions{op: op}, &facts{polling: true, pollAttempted: true})
	g.Expect(op.Condition(v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionTrue))

	setPolledCondition(conditions{op: op}, &facts{polling: true})
	g.Expect(op.Condition(v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionTrue), "no poll this time: the last result stands")

	setPolledCondition(conditions{op: op}, &facts{polling: true, pollAttempted: true, pollErr: errors.New("connection refused")})
	g.Expect(op.Condition(v1alpha1.PolledCondition).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(op.Condition(v1alpha1.PolledCondition).Message).To(Equal("connection refused"))

	setPolledCondition(conditions{op: op}, &facts{polling: false})
	g.Expect(op.Condition(v1alpha1.PolledCondition)).To(BeNil(), "absent when polling does not apply")
}

func TestPollSchedule(t *testing.T) {
	g := NewWithT(t)
	op := &v1alpha1.HelmOp{}
	op.UID = "3f1c"
	op.Spec.PollingInterval = &metav1.Duration{Duration: 100e9}
	now := metav1.Now().Time
	g.Expect(pollDue(op, now)).To(BeTrue(), "never polled")
	op.Status.LastPollingTime = &metav1.Time{Time: now}
	g.Expect(pollDue(op, now.Add(99e9))).To(BeFalse())
	g.Expect(pollDue(op, now.Add(105e9))).To(BeTrue(), "jitter is at most 5%% of the interval")
	g.Expect(jitter(op)).To(Equal(jitter(op.DeepCopy())), "the jitter of a HelmOp is stable")
	r := &Reconciler{}
	wait := r.nextPoll(op, &facts{polling: true}, now.Add(50e9))
	g.Expect(wait).To(BeNumerically(">=", 50e9))
	g.Expect(wait).To(BeNumerically("<=", 55e9))
	g.Expect(r.nextPoll(op, &facts{polling: false}, now)).To(BeZero())
}
