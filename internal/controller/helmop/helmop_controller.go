// Package helmop reconciles HelmOps: it resolves the chart version centrally, writes a Bundle that
// carries only the exact version, polls the repository on pollingInterval, and explains the state
// in the HelmOp's status.
package helmop

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/controller/shard"
	"github.com/helmops/helmops/internal/downstreamres"
	"github.com/helmops/helmops/internal/fleetcompat"
	"github.com/helmops/helmops/internal/lifecycle"
	"github.com/helmops/helmops/internal/policy"
	"github.com/helmops/helmops/internal/redact"
)

// Resolver resolves a chart reference to an exact version (chartsource.Resolver in production).
type Resolver interface {
	Resolve(ctx context.Context, ref chartsource.Ref, auth chartsource.Auth) (*chartsource.Resolution, error)
}

const (
	secretNameIndex = "spec.helmSecretName"
	// noMatchRetry is how often a constraint that matches nothing is tried again without polling.
	noMatchRetry = time.Minute
	// hostBusyRetry is how soon a resolution refused because its host already has as many
	// waiting reconciles as allowed is tried again.
	hostBusyRetry = 3 * time.Second
	// DefaultReconcileTimeout bounds one reconcile's steps.
	DefaultReconcileTimeout = time.Minute
)

// Reconciler reconciles HelmOps.
type Reconciler struct {
	Client client.Client
	// APIReader reads the repository secret from the API server, so Secrets are never cached.
	APIReader client.Reader
	Resolver  Resolver
	Recorder  record.EventRecorder
	// Clock decides when polls are due; default the real clock.
	Clock clock.PassiveClock
	// ShardID is the shard this controller handles ("" for objects without a shard label).
	ShardID string
	// Workers is the number of concurrent reconciles; default 10.
	Workers int
	// ReconcileTimeout bounds the steps of one reconcile (the repository requests above all);
	// default DefaultReconcileTimeout.
	ReconcileTimeout time.Duration
}

// SetupWithManager registers the reconciler, the Secret index and the watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("helmops-controller")
	}
	if r.Workers == 0 {
		r.Workers = 10
	}
	if r.ReconcileTimeout <= 0 {
		r.ReconcileTimeout = DefaultReconcileTimeout
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.HelmOp{}, secretNameIndex, func(o client.Object) []string {
		if n := o.(*v1alpha1.HelmOp).Spec.HelmSecretName; n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return err
	}
	inShard := shard.Predicate(r.ShardID)
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmop").
		For(&v1alpha1.HelmOp{}, builder.WithPredicates(inShard, predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{},
			deletionPredicate()))).
		Owns(&v1alpha1.Bundle{}).
		// Only the Secrets' metadata is cached; the one a HelmOp names is read from the API server.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.helmOpsNamingSecret), builder.OnlyMetadata).
		Watches(&v1alpha1.Policy{}, handler.EnqueueRequestsFromMapFunc(r.helmOpsOfPolicy)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }}
}

func (r *Reconciler) helmOpsNamingSecret(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.HelmOpList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretNameIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing HelmOps that name a secret", "secret", klog.KObj(o))
		return nil
	}
	return append(r.requestsFor(list.Items, func(*v1alpha1.HelmOp) bool { return true }), r.helmOpsUsingDefaultSecret(ctx, o)...)
}

// facts are what the steps found; the status is computed from them alone.
type facts struct {
	specErr       error // invalid field combination or constraint: terminal until the spec changes
	policyErr     error // a Policy of the namespace refuses the HelmOp: terminal until either changes
	secretErr     error // missing or invalid helmSecretName
	resolveErr    error // the repository could not be asked or has no matching version
	bundleErr     error // the Bundle could not be written (e.g. a foreign Bundle)
	bundleForeign bool
	polling       bool
	pollAttempted bool
	pollErr       error
	version       string // exact version on the Bundle
	bundle        *v1alpha1.Bundle
	notApplicable []string // fields set that only apply to bundles built from git
	latestFacts
}

// scope is one reconcile of one HelmOp: its inputs, what the steps found, and the facts.
type scope struct {
	op       *v1alpha1.HelmOp
	now      time.Time
	kind     chartsource.Kind
	auth     chartsource.Auth
	secretRV string
	// defaults are the Policies' service account and secret for a HelmOp that names none.
	defaults policy.Defaults
	// existing is the Bundle as it is now, nil when there is none.
	existing *v1alpha1.Bundle
	// last is what the existing Bundle's versions were resolved from.
	last resolved
	// next is what the Bundle is written from: the last resolution or a new one.
	next resolved
	res  *chartsource.Resolution
	// undoAttempt, set by a resolution, takes back its poll and request marks when its answer
	// could not be written.
	undoAttempt func()
	facts
}

// Reconcile drives one HelmOp toward its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx).WithValues("HelmOp", req.NamespacedName)
	ctx = ctrl.LoggerInto(ctx, log)
	start := r.Clock.Now()
	defer func() { reconcileDuration.Observe(r.Clock.Since(start).Seconds()) }()

	op, err := r.get(ctx, req.NamespacedName)
	if op == nil {
		return ctrl.Result{}, err
	}
	if !op.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.delete(ctx, op)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, op, v1alpha1.HelmOpFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	patch := lifecycle.SnapshotOwned(r.Client, op)
	s := &scope{op: op, now: r.Clock.Now()}
	defer func() {
		retErr = patch.Status(ctx, op, retErr, func(err error) {
			computeStatus(op, &s.facts, err, s.now)
			recordMetrics(op)
		})
		result, retErr = lifecycle.RetryStale(ctx, result, retErr)
	}()
	// The steps have a deadline; the status patch above does not share it.
	stepsCtx, cancel := context.WithTimeout(ctx, r.ReconcileTimeout)
	defer cancel()
	result, err = lifecycle.Run(stepsCtx, s,
		lifecycle.Step[*scope]{Name: "validate", Run: r.validate},
		lifecycle.Step[*scope]{Name: "policy", Run: r.checkPolicy},
		lifecycle.Step[*scope]{Name: "credentials", Run: r.credentials},
		lifecycle.Step[*scope]{Name: "bundle", Run: r.readBundle},
		lifecycle.Step[*scope]{Name: "resolve", Run: r.resolve},
		lifecycle.Step[*scope]{Name: "write", Run: r.writeBundle},
		lifecycle.Step[*scope]{Name: "schedule", Run: r.schedule},
	)
	return pollPriority(s, result), err
}

// get reads the HelmOp: nil and no error when it is gone, whose metrics then go with it.
func (r *Reconciler) get(ctx context.Context, key client.ObjectKey) (*v1alpha1.HelmOp, error) {
	op := &v1alpha1.HelmOp{}
	if err := r.Client.Get(ctx, key, op); err != nil {
		if apierrors.IsNotFound(err) {
			deleteMetrics(key.Namespace, key.Name)
		}
		return nil, client.IgnoreNotFound(err)
	}
	return op, nil
}

// pollPriority queues the next poll of a polling HelmOp behind new and changed HelmOps.
func pollPriority(s *scope, res ctrl.Result) ctrl.Result {
	if !s.polling {
		return res
	}
	return lifecycle.Periodic(res)
}

func (r *Reconciler) delete(ctx context.Context, op *v1alpha1.HelmOp) error {
	if !controllerutil.ContainsFinalizer(op, v1alpha1.HelmOpFinalizer) {
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting the Bundle of a deleted HelmOp")
	if err := r.Client.DeleteAllOf(ctx, &v1alpha1.Bundle{}, client.InNamespace(op.Namespace),
		client.MatchingLabels{v1alpha1.HelmOpLabel: op.Name}, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return fmt.Errorf("deleting the Bundle of HelmOp %s/%s: %w", op.Namespace, op.Name, err)
	}
	deleteMetrics(op.Namespace, op.Name)
	return lifecycle.RemoveFinalizer(ctx, r.Client, op, v1alpha1.HelmOpFinalizer)
}

// validate checks the field combinations and the constraints' syntax: an invalid spec is
// terminal until it changes. Fields Fleet accepts that mean nothing for a HelmOp are reported,
// not dropped silently.
func (r *Reconciler) validate(_ context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	s.notApplicable = fleetcompat.NotApplicable(&op.Spec)
	if msg := fleetcompat.Message(s.notApplicable); msg != "" && !acceptedSays(op, msg) {
		r.Recorder.Event(op, corev1.EventTypeWarning, v1alpha1.ReasonFieldsNotApplicable, "Fields "+msg)
	}
	helm := op.Spec.HelmOrEmpty()
	kind, err := chartsource.Classify(chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version})
	if err == nil {
		err = checkConstraint(helm.Version, "helm.version")
	}
	for i, t := range op.Spec.Targets {
		if err == nil && t.Helm != nil && t.Helm.Version != "" {
			err = checkConstraint(t.Helm.Version, fmt.Sprintf("targets[%d].helm.version", i))
		}
	}
	if err == nil {
		err = downstreamres.Validate(op.Spec.BundleDeploymentOptions, op.Spec.Targets)
	}
	if err != nil {
		s.specErr = specError(err)
		r.Recorder.Event(op, corev1.EventTypeWarning, "InvalidSpec", redact.Error(s.specErr))
		return ctrl.Result{}, reconcile.TerminalError(s.specErr)
	}
	s.kind = kind
	s.polling = op.PollingEvery() > 0 && kind != chartsource.KindTarball && !chartversion.IsStatic(helm.Version)
	return ctrl.Result{}, nil
}

// credentials reads the Secret named by helmSecretName. A missing or unusable Secret is waited
// for (its watch brings the HelmOp back); any other error reading it is retried with backoff.
func (r *Reconciler) credentials(ctx context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	s.auth = chartsource.Auth{InsecureSkipTLSVerify: op.Spec.InsecureSkipTLSVerify}
	name := s.secretName()
	if name == "" {
		return ctrl.Result{}, nil
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			s.secretErr = fmt.Errorf("secret %s/%s named by %s does not exist: create it with the repository credentials", op.Namespace, name, secretField(op))
			return lifecycle.Halt(ctrl.Result{})
		}
		return ctrl.Result{}, fmt.Errorf("reading secret %s/%s named by %s: %w", op.Namespace, name, secretField(op), err)
	}
	auth, err := chartsource.AuthFromSecret(secret)
	if err != nil {
		s.secretErr = fmt.Errorf("%s: %w", secretField(op), err)
		return lifecycle.Halt(ctrl.Result{})
	}
	auth.InsecureSkipTLSVerify = auth.InsecureSkipTLSVerify || op.Spec.InsecureSkipTLSVerify
	// The credentials are for the HelmOp's own repository: a per-target helm.repo on another
	// host gets none.
	helm := op.Spec.HelmOrEmpty()
	auth = auth.BoundTo(chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart}.Location())
	s.auth, s.secretRV = auth, secret.ResourceVersion
	return ctrl.Result{}, nil
}

// readBundle reads the Bundle as it is now; one this HelmOp does not control is never touched.
func (r *Reconciler) readBundle(ctx context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	existing := &v1alpha1.Bundle{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(op), existing); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading Bundle %s/%s: %w", op.Namespace, op.Name, err)
		}
		return ctrl.Result{}, nil
	}
	if !metav1.IsControlledBy(existing, op) {
		s.bundleForeign = true
		s.bundleErr = fmt.Errorf("a Bundle %s/%s exists that was not created from this HelmOp; helmops does not overwrite it: delete or rename it", op.Namespace, op.Name)
		return lifecycle.Halt(ctrl.Result{})
	}
	s.existing, s.bundle = existing, existing
	s.last = lastResolved(existing)
	return ctrl.Result{}, nil
}

// resolve asks the repository when a version input changed (repository, chart, constraint,
// credentials, a per-target override), a poll is due, or a reconcile was asked for. Otherwise,
// and when only a poll failed, the Bundle is written from the last resolution.
func (r *Reconciler) resolve(ctx context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	if s.kind == chartsource.KindTarball {
		s.latestKnown = true // a chart archive offers no other version
	}
	refs := versionRefs(op, s.kind)
	credentials := credentialsHash(op, s.secretRV)
	unknown := !s.last.covers(refs)
	requested := pendingRequest(s)
	due := s.polling && pollDue(op, s.now)
	s.next = s.last
	if !unknown && !requested && !due && s.last.Credentials == credentials {
		return ctrl.Result{}, nil
	}
	takeBack := s.markAttempt(requested)
	if requested {
		ctx = chartsource.WithRevalidate(ctx) // the user asked for a fresh look
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Resolving chart version", "constraint", op.Spec.HelmOrEmpty().Version, "poll", s.pollAttempted)
	next, res, err := r.resolveRefs(ctx, refs, s.auth)
	switch {
	case errors.Is(err, chartsource.ErrHostBusy):
		// Not an answer: the poll or request did not happen, and is tried again shortly
		// without holding a worker.
		ctrl.LoggerFrom(ctx).V(1).Info("Waiting for the repository host", "reason", redact.Error(err))
		takeBack()
		if unknown {
			return lifecycle.Halt(ctrl.Result{RequeueAfter: hostBusyRetry})
		}
		return ctrl.Result{RequeueAfter: hostBusyRetry}, nil
	case err != nil:
		return r.resolveFailed(s, unknown, err)
	}
	s.recordResolution(next, res, credentials, requested)
	return ctrl.Result{}, nil
}

// pendingRequest reports whether the reconcile annotation asks for a resolution not handled
// yet. A request the Bundle says was handled is marked handled: the HelmOp was read from a cache
// older than the status of the reconcile that handled it.
func pendingRequest(s *scope) bool {
	op := s.op
	requested := reconcileRequested(op)
	if value := op.Annotations[v1alpha1.ReconcileRequestedAnnotation]; requested && s.last.Requested == value {
		op.Status.LastHandledReconcileAt, requested = value, false
	}
	return requested
}

// markAttempt stamps the poll and the handled request of a resolution about to be asked, and
// sets undoAttempt. It returns what takes the stamps back when the repository was not asked
// after all.
func (s *scope) markAttempt(requested bool) (takeBack func()) {
	op := s.op
	lastPoll, lastHandled := op.Status.LastPollingTime, op.Status.LastHandledReconcileAt
	takeBack = func() {
		op.Status.LastPollingTime, op.Status.LastHandledReconcileAt = lastPoll, lastHandled
		s.pollAttempted = false
	}
	s.undoAttempt = func() {
		// The answer never reached the Bundle: the next reconcile asks again.
		takeBack()
		s.latestKnown = false
	}
	if s.polling || requested {
		s.pollAttempted = true
		op.Status.LastPollingTime = &metav1.Time{Time: s.now}
	}
	if requested {
		op.Status.LastHandledReconcileAt = op.Annotations[v1alpha1.ReconcileRequestedAnnotation]
	}
	return takeBack
}

// recordResolution records a successful resolution as what the Bundle is written from.
func (s *scope) recordResolution(next resolved, res *chartsource.Resolution, credentials string, requested bool) {
	if s.pollAttempted {
		pollsTotal.WithLabelValues("success").Inc()
	}
	next.Credentials = credentials
	next.Requested = s.last.Requested
	if requested {
		next.Requested = s.op.Annotations[v1alpha1.ReconcileRequestedAnnotation]
	}
	s.next, s.res = next, res
	if res != nil {
		s.latestKnown, s.latest = true, res.Latest
	}
}

// resolveFailed records a failed resolution. When every version the spec needs is known from the
// last resolution, the Bundle is still written from it (the repository being down must not keep
// a user from pausing or untargeting); otherwise nothing can be written until it succeeds.
func (r *Reconciler) resolveFailed(s *scope, unknown bool, err error) (ctrl.Result, error) {
	var ic *chartversion.InvalidConstraintError
	if errors.As(err, &ic) {
		s.specErr = specError(err)
		return ctrl.Result{}, reconcile.TerminalError(s.specErr)
	}
	r.Recorder.Eventf(s.op, corev1.EventTypeWarning, "FailedToResolveVersion", "%s", redact.Error(err))
	if s.pollAttempted {
		s.pollErr = err
		pollsTotal.WithLabelValues("failure").Inc()
	}
	retry := noMatchRetry
	if s.polling {
		retry = min(noMatchRetry, r.nextPoll(s.op, &s.facts, s.now))
	}
	if !unknown {
		// The credentials changed or a poll failed: keep the last versions (and the last
		// credentials, so the next reconcile tries again).
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	s.resolveErr = err
	var nm *chartversion.NoMatchError
	if errors.As(err, &nm) || s.polling {
		return lifecycle.Halt(ctrl.Result{RequeueAfter: retry})
	}
	return ctrl.Result{}, err
}

// writeBundle creates or updates the Bundle, with exact versions only; an unchanged Bundle is
// not written.
func (r *Reconciler) writeBundle(ctx context.Context, s *scope) (ctrl.Result, error) {
	op := s.op
	bundle := s.existing
	if bundle == nil {
		bundle = &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: op.Name, Namespace: op.Namespace}}
	}
	before := bundle.DeepCopy()
	bundle.Labels = bundleLabels(op)
	if bundle.Annotations == nil {
		bundle.Annotations = map[string]string{}
	}
	bundle.Annotations[inputsAnnotation] = s.next.encode()
	bundle.Spec = bundleSpec(op, s.kind, s.next)
	s.defaults.ApplyToBundle(&bundle.Spec)
	if err := controllerutil.SetControllerReference(op, bundle, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.putBundle(ctx, s, before, bundle); err != nil {
		if s.undoAttempt != nil {
			s.undoAttempt()
		}
		return ctrl.Result{}, err
	}
	s.bundle = bundle
	s.version = bundle.Spec.HelmOrEmpty().Version
	if old := before.Spec.HelmOrEmpty().Version; s.existing != nil && old != "" && old != s.version {
		ctrl.LoggerFrom(ctx).Info("Got new chart version", "old", old, "new", s.version)
		r.Recorder.Eventf(op, corev1.EventTypeNormal, "GotNewChartVersion", "Chart version changed from %s to %s", old, s.version)
	}
	if old, now := chartDigestOf(before), chartDigestOf(bundle); s.existing != nil && old != "" && now != "" && old != now &&
		before.Spec.HelmOrEmpty().Version == s.version {
		ctrl.LoggerFrom(ctx).Info("Chart content changed under the same version", "version", s.version, "old", old, "new", now)
		r.Recorder.Eventf(op, corev1.EventTypeWarning, "ChartContentChanged",
			"Chart version %s was re-published with other content (%s, now %s): clusters deploy the new content", s.version, old, now)
	}
	return ctrl.Result{}, nil
}

// putBundle creates the Bundle, or patches it when it differs from before. The patch carries
// no resourceVersion: this reconciler alone writes a Bundle's spec, labels and annotations, while
// the bundle controller keeps writing its status, which would otherwise fail every other write
// with a conflict.
func (r *Reconciler) putBundle(ctx context.Context, s *scope, before, bundle *v1alpha1.Bundle) error {
	op := s.op
	switch {
	case s.existing == nil:
		controllerutil.AddFinalizer(bundle, v1alpha1.BundleFinalizer) // the bundle controller's; one patch less
		if err := r.Client.Create(ctx, bundle); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return err // the cache was behind: try again
			}
			s.bundleErr = fmt.Errorf("creating Bundle %s/%s: %w", op.Namespace, op.Name, err)
			return s.bundleErr
		}
		r.Recorder.Eventf(op, corev1.EventTypeNormal, "BundleCreated", "Created Bundle with %s", describeVersion(s.res))
	case !equality.Semantic.DeepEqual(before, bundle):
		if err := r.Client.Patch(ctx, bundle, client.MergeFrom(before)); err != nil {
			s.bundleErr = fmt.Errorf("updating Bundle %s/%s: %w", op.Namespace, op.Name, err)
			return s.bundleErr
		}
	}
	return nil
}

// schedule asks to come back when the next poll is due.
func (r *Reconciler) schedule(_ context.Context, s *scope) (ctrl.Result, error) {
	return ctrl.Result{RequeueAfter: r.nextPoll(s.op, &s.facts, s.now)}, nil
}

func chartDigestOf(b *v1alpha1.Bundle) string {
	if b.Spec.HelmOpOptions == nil {
		return ""
	}
	return b.Spec.HelmOpOptions.ChartDigest
}

func describeVersion(res *chartsource.Resolution) string {
	if res == nil || res.Version == "" {
		return "the chart archive"
	}
	return "chart version " + res.Version
}

func checkConstraint(version, field string) error {
	v := strings.TrimSpace(version)
	if v == "" || v == "*" || chartversion.IsStatic(v) {
		return nil
	}
	if _, err := chartversion.Choose(nil, v); err != nil {
		var ic *chartversion.InvalidConstraintError
		if errors.As(err, &ic) {
			return &chartsource.FieldError{Field: field, Message: fmt.Sprintf("%v: use an exact version, \"*\" or a semver constraint such as 1.2.x or \">= 1.0, < 2.0\"", err)}
		}
	}
	return nil
}

// specError names the field from the HelmOp's spec.
func specError(err error) error {
	var fe *chartsource.FieldError
	if errors.As(err, &fe) {
		return fmt.Errorf("spec.%s: %s", fe.Field, fe.Message)
	}
	var ic *chartversion.InvalidConstraintError
	if errors.As(err, &ic) {
		return fmt.Errorf("spec.helm.version: %w", err)
	}
	return err
}

func bundleLabels(op *v1alpha1.HelmOp) map[string]string {
	out := map[string]string{}
	for k, v := range op.Spec.Labels {
		out[k] = v
	}
	out[v1alpha1.HelmOpLabel] = op.Name
	if s, ok := op.Labels[v1alpha1.ShardLabel]; ok {
		out[v1alpha1.ShardLabel] = s
	}
	return out
}

// reconcileRequested reports whether the reconcile annotation carries a value not handled yet.
func reconcileRequested(op *v1alpha1.HelmOp) bool {
	v := op.Annotations[v1alpha1.ReconcileRequestedAnnotation]
	return v != "" && v != op.Status.LastHandledReconcileAt
}

// jitter spreads the polls of many HelmOps with the same interval: up to 5% of it, fixed per
// HelmOp so the schedule is stable across restarts.
func jitter(op *v1alpha1.HelmOp) time.Duration {
	interval := op.PollingEvery()
	if interval < 20*time.Millisecond {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(op.UID))
	return time.Duration(uint64(h.Sum32()) % uint64(interval/20))
}

func pollDue(op *v1alpha1.HelmOp, now time.Time) bool {
	if op.Status.LastPollingTime == nil {
		return true
	}
	return !now.Before(op.Status.LastPollingTime.Add(op.PollingEvery() + jitter(op)))
}

// nextPoll is how long until the next poll, 0 when polling does not apply.
func (r *Reconciler) nextPoll(op *v1alpha1.HelmOp, f *facts, now time.Time) time.Duration {
	if !f.polling {
		return 0
	}
	last := now
	if op.Status.LastPollingTime != nil {
		last = op.Status.LastPollingTime.Time
	}
	wait := last.Add(op.PollingEvery() + jitter(op)).Sub(now)
	if wait <= 0 {
		wait = time.Millisecond
	}
	return wait
}
