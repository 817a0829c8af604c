package helmop

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/scheme"
	"github.com/helmops/helmops/internal/testutil"
)

// stubResolver answers from a table and counts the calls; err, when set, fails every call.
type stubResolver struct {
	versions map[string]string // constraint -> version
	err      error
	calls    int
}

func (s *stubResolver) Resolve(_ context.Context, ref chartsource.Ref, _ chartsource.Auth) (*chartsource.Resolution, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return &chartsource.Resolution{Version: s.versions[ref.Version]}, nil
}

// TestResolveStep: only version inputs ask the repository; everything else is written from the
// last resolution, also while the repository fails.
func TestResolveStep(t *testing.T) {
	const repo = "https://charts.example.com"
	base := func(opts ...testutil.HelmOpOption) *v1alpha1.HelmOp {
		op := testutil.HelmOp("ws", "app", append([]testutil.HelmOpOption{testutil.WithChart(repo, "app"), testutil.WithVersion("1.x"),
			testutil.WithHelmOpTargets(v1alpha1.BundleTarget{Name: "prod", ClusterName: "prod", Helm: &v1alpha1.HelmOptions{Version: "0.x"}})}, opts...)...)
		op.Status.LastHandledReconcileAt = ""
		return op
	}
	// What the Bundle of base() was written from.
	last := resolved{Credentials: credentialsHash(base(), ""), Versions: map[string]string{
		refKey(chartsource.Ref{Repo: repo, Chart: "app", Version: "1.x"}): "1.2.0",
		refKey(chartsource.Ref{Repo: repo, Chart: "app", Version: "0.x"}): "0.9.0",
	}}
	down := errors.New("dial tcp: connection refused")
	cases := []struct {
		name      string
		op        *v1alpha1.HelmOp
		err       error // the resolver's
		calls     int
		wantErr   bool
		resolveEr bool // a resolveErr fact
		version   string
	}{
		{name: "nothing changed", op: base(), calls: 0, version: "1.2.0"},
		{name: "paused and values need no repository", op: base(func(h *v1alpha1.HelmOp) {
			h.Spec.Paused = true
			h.Spec.Helm.Values = testutil.Values(map[string]any{"a": "b"})
		}), calls: 0, version: "1.2.0"},
		{name: "removing a target needs no repository", op: base(testutil.WithHelmOpTargets()), calls: 0, version: "1.2.0"},
		{name: "a new constraint asks the repository", op: base(testutil.WithVersion("2.x")), calls: 2, version: "2.0.0"},
		{name: "a new target override asks the repository", op: base(testutil.WithHelmOpTargets(
			v1alpha1.BundleTarget{Name: "dev", ClusterName: "dev", Helm: &v1alpha1.HelmOptions{Version: "1.1.x"}})), calls: 2, version: "1.2.0"},
		{name: "new credentials ask the repository", op: base(testutil.WithSecret("creds")), calls: 2, version: "1.2.0"},
		{name: "new credentials with the repository down keep the last versions", op: base(testutil.WithSecret("creds")), err: down, calls: 1, version: "1.2.0"},
		{name: "a new constraint with the repository down is retried", op: base(testutil.WithVersion("2.x")), err: down, calls: 1, wantErr: true, resolveEr: true},
		{name: "a new constraint that matches nothing waits", op: base(testutil.WithVersion("3.x")),
			err: &chartversion.NoMatchError{Constraint: "3.x"}, calls: 1, resolveEr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			stub := &stubResolver{versions: map[string]string{"1.x": "1.2.0", "2.x": "2.0.0", "0.x": "0.9.0", "1.1.x": "1.1.3"}, err: tc.err}
			r := &Reconciler{Resolver: stub, Recorder: record.NewFakeRecorder(10)}
			s := &scope{op: tc.op, now: time.Now(), kind: chartsource.KindHelmRepo, last: last}
			_, err := lifecycle.Run(context.Background(), s, lifecycle.Step[*scope]{Name: "resolve", Run: r.resolve})
			g.Expect(stub.calls).To(Equal(tc.calls))
			g.Expect(err != nil).To(Equal(tc.wantErr), "%v", err)
			g.Expect(s.resolveErr != nil).To(Equal(tc.resolveEr))
			if tc.version != "" {
				g.Expect(bundleSpec(tc.op, s.kind, s.next).Helm.Version).To(Equal(tc.version))
			}
		})
	}
}

// TestBundleSpecWritesOnlyExactVersions: the spec carries the HelmOp's options with every
// constraint replaced by its resolved version, and names the targets.
func TestBundleSpecWritesOnlyExactVersions(t *testing.T) {
	g := NewWithT(t)
	op := testutil.HelmOp("ws", "app", testutil.WithChart("https://charts.example.com", "app"), testutil.WithVersion("1.x"),
		testutil.WithHelmOpTargets(v1alpha1.BundleTarget{ClusterName: "a", Helm: &v1alpha1.HelmOptions{Version: "0.x"}}, v1alpha1.BundleTarget{Name: "b"}))
	op.Spec.Paused = true
	refs := versionRefs(op, chartsource.KindHelmRepo)
	g.Expect(refs).To(HaveLen(2))
	g.Expect(refs[1].field).To(Equal("targets[0] (target000)"))
	v := resolved{Versions: map[string]string{refKey(refs[0].ref): "1.2.0", refKey(refs[1].ref): "0.9.0"}}
	g.Expect(v.covers(refs)).To(BeTrue())
	g.Expect(resolved{}.covers(refs)).To(BeFalse())
	spec := bundleSpec(op, chartsource.KindHelmRepo, v)
	g.Expect(spec.Helm.Version).To(Equal("1.2.0"))
	g.Expect(spec.Paused).To(BeTrue())
	g.Expect(spec.Targets[0].Name).To(Equal("target000"))
	g.Expect(spec.Targets[0].Helm.Version).To(Equal("0.9.0"))
	g.Expect(spec.Targets[1].Name).To(Equal("b"))
	g.Expect(op.Spec.Helm.Version).To(Equal("1.x"), "the HelmOp is not changed")
	g.Expect(lastResolved(&v1alpha1.Bundle{})).To(Equal(resolved{}))
}

// TestAFailedBundleWriteIsAskedAgain: a poll or a requested reconcile whose answer cannot be
// written to the Bundle is not counted as done, so the next reconcile asks again instead of
// waiting a whole polling interval with the new version unwritten (and status claiming the
// constraint keeps the old one).
func TestAFailedBundleWriteIsAskedAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	op := testutil.HelmOp("ws", "app", testutil.WithChart("https://charts.example.com", "app"), testutil.WithVersion("1.x"))
	op.Spec.PollingInterval = &metav1.Duration{Duration: time.Hour}
	op.Annotations = map[string]string{v1alpha1.ReconcileRequestedAnnotation: "2026-12-03T07:00:00Z"}
	op.Status.LastHandledReconcileAt = ""
	earlier := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	op.Status.LastPollingTime = &earlier
	last := resolved{Versions: map[string]string{refKey(chartsource.Ref{Repo: "https://charts.example.com", Chart: "app", Version: "1.x"}): "1.0.0"}}
	last.Credentials = credentialsHash(op, "")
	existing := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ws"}}
	existing.Spec = bundleSpec(op, chartsource.KindHelmRepo, last)
	g.Expect(controllerutil.SetControllerReference(op, existing, scheme.New())).To(Succeed())

	conflict := apierrors.NewConflict(schema.GroupResource{Group: "fleet.cattle.io", Resource: "bundles"}, "app", errors.New("the object has been modified"))
	failing := true
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(existing).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if failing {
				return conflict
			}
			return c.Patch(ctx, obj, p, opts...)
		},
	}).Build()
	stub := &stubResolver{versions: map[string]string{"1.x": "1.1.0"}}
	r := &Reconciler{Client: c, Resolver: stub, Recorder: record.NewFakeRecorder(10)}
	run := func() (*scope, error) {
		b := &v1alpha1.Bundle{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(existing), b)).To(Succeed())
		s := &scope{op: op, now: time.Now(), kind: chartsource.KindHelmRepo, last: last, existing: b}
		s.polling = true
		_, err := lifecycle.Run(ctx, s,
			lifecycle.Step[*scope]{Name: "resolve", Run: r.resolve},
			lifecycle.Step[*scope]{Name: "write", Run: r.writeBundle})
		return s, err
	}

	s, err := run()
	g.Expect(err).To(HaveOccurred())
	g.Expect(op.Status.LastHandledReconcileAt).To(BeEmpty(), "the request is not marked handled")
	g.Expect(op.Status.LastPollingTime).To(Equal(&earlier), "the poll is not counted")
	g.Expect(s.latestKnown).To(BeFalse(), "no newer-version claim from an unwritten answer")

	failing = false
	_, err = run()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stub.calls).To(Equal(2), "asked again")
	b := &v1alpha1.Bundle{}
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(existing), b)).To(Succeed())
	g.Expect(b.Spec.Helm.Version).To(Equal("1.1.0"))
	g.Expect(op.Status.LastHandledReconcileAt).To(Equal("2026-12-03T07:00:00Z"))
}
