// Package helmop reconciles HelmOps: it resolves the chart version centrally, writes a Bundle that
// carries only the exact version, polls the repository on pollingInterval, and explains the state
// in the HelmOp's status.
package helmop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/helmops/helmops/internal/fleetcompat"
)

// Resolver resolves a chart reference to an exact version (chartsource.Resolver in production).
type Resolver interface {
	Resolve(ctx context.Context, ref chartsource.Ref, auth chartsource.Auth) (*chartsource.Resolution, error)
}

const (
	// inputsAnnotation on a Bundle records what its versions were resolved from, so a reconcile
	// that changes nothing does not contact the repository.
	inputsAnnotation = "fleet.cattle.io/helmop-inputs"
	secretNameIndex  = "spec.helmSecretName"
	// noMatchRetry is how often a constraint that matches nothing is tried again without polling.
	noMatchRetry = time.Minute
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
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		if shard.Matches(&list.Items[i], r.ShardID) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

// facts are what the steps found; the status is computed from them alone.
type facts struct {
	specErr       error // invalid field combination or constraint: terminal until the spec changes
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
}

// Reconcile drives one HelmOp toward its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx).WithValues("HelmOp", req.NamespacedName)
	ctx = ctrl.LoggerInto(ctx, log)
	start := r.Clock.Now()
	defer func() { reconcileDuration.Observe(r.Clock.Since(start).Seconds()) }()

	op := &v1alpha1.HelmOp{}
	if err := r.Client.Get(ctx, req.NamespacedName, op); err != nil {
		if apierrors.IsNotFound(err) {
			deleteMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !op.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.delete(ctx, op)
	}
	if controllerutil.AddFinalizer(op, v1alpha1.HelmOpFinalizer) {
		if err := r.Client.Update(ctx, op); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := op.DeepCopy()
	f := &facts{}
	defer func() {
		computeStatus(op, f)
		recordMetrics(op)
		if equality.Semantic.DeepEqual(base.Status, op.Status) {
			return
		}
		if err := r.Client.Status().Patch(ctx, op, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("patching status of HelmOp %s: %w", req.NamespacedName, err))
		}
	}()
	return r.reconcile(ctx, op, f)
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
	controllerutil.RemoveFinalizer(op, v1alpha1.HelmOpFinalizer)
	return client.IgnoreNotFound(r.Client.Update(ctx, op))
}

func (r *Reconciler) reconcile(ctx context.Context, op *v1alpha1.HelmOp, f *facts) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	helm := op.Spec.HelmOrEmpty()
	ref := chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version}

	// 1. The spec: field combinations and the constraint's syntax. Fields Fleet accepts that
	// mean nothing for a HelmOp are reported, not dropped silently.
	f.notApplicable = fleetcompat.NotApplicable(&op.Spec)
	if msg := fleetcompat.Message(f.notApplicable); msg != "" && !acceptedSays(op, msg) {
		r.Recorder.Event(op, corev1.EventTypeWarning, v1alpha1.ReasonFieldsNotApplicable, "Fields "+msg)
	}
	kind, err := chartsource.Classify(ref)
	if err == nil {
		err = checkConstraint(helm.Version, "helm.version")
	}
	for i, t := range op.Spec.Targets {
		if err == nil && t.Helm != nil && t.Helm.Version != "" {
			err = checkConstraint(t.Helm.Version, fmt.Sprintf("targets[%d].helm.version", i))
		}
	}
	if err != nil {
		f.specErr = specError(err)
		r.Recorder.Event(op, corev1.EventTypeWarning, "InvalidSpec", f.specErr.Error())
		return ctrl.Result{}, reconcile.TerminalError(f.specErr)
	}
	f.polling = op.PollingEvery() > 0 && kind != chartsource.KindTarball && !chartversion.IsStatic(helm.Version)

	// 2. The credentials.
	auth, secretRV, err := r.auth(ctx, op)
	if err != nil {
		f.secretErr = err
		return ctrl.Result{}, nil // a watch on the secret brings us back
	}

	// 3. The Bundle as it is now.
	existing := &v1alpha1.Bundle{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(op), existing); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		existing = nil
	}
	if existing != nil && !metav1.IsControlledBy(existing, op) {
		f.bundleForeign = true
		f.bundleErr = fmt.Errorf("a Bundle %s/%s exists that was not created from this HelmOp; helmops does not overwrite it: delete or rename it", op.Namespace, op.Name)
		return ctrl.Result{}, nil
	}
	f.bundle = existing

	// 4. Resolve when the inputs changed, a poll is due, or a reconcile was asked for.
	now := r.Clock.Now()
	inputs := inputsHash(op, secretRV)
	changed := existing == nil || existing.Annotations[inputsAnnotation] != inputs || existing.Spec.HelmOrEmpty().Version == "" && kind != chartsource.KindTarball
	requested := reconcileRequested(op)
	due := f.polling && pollDue(op, now)
	if !changed && !requested && !due {
		f.version = existing.Spec.HelmOrEmpty().Version
		return ctrl.Result{RequeueAfter: r.nextPoll(op, f, now)}, nil
	}
	if f.polling || requested {
		f.pollAttempted = true
		op.Status.LastPollingTime = &metav1.Time{Time: now}
	}
	if requested {
		op.Status.LastHandledReconcileAt = op.Annotations[v1alpha1.ReconcileRequestedAnnotation]
	}
	if requested {
		ctx = chartsource.WithRevalidate(ctx) // the user asked for a fresh look
	}
	log.V(1).Info("Resolving chart version", "constraint", helm.Version, "poll", f.pollAttempted)
	spec, res, err := r.bundleSpec(ctx, op, kind, auth)
	if err != nil {
		var ic *chartversion.InvalidConstraintError
		if errors.As(err, &ic) {
			f.specErr = specError(err)
			return ctrl.Result{}, reconcile.TerminalError(f.specErr)
		}
		r.Recorder.Eventf(op, corev1.EventTypeWarning, "FailedToResolveVersion", "%v", err)
		if f.pollAttempted {
			f.pollErr = err
			pollsTotal.WithLabelValues("failure").Inc()
		}
		f.resolveErr = err
		if existing != nil && !changed {
			// A failed poll keeps the Bundle at its last good version.
			f.version = existing.Spec.HelmOrEmpty().Version
			f.resolveErr = nil
			return ctrl.Result{RequeueAfter: r.nextPoll(op, f, now)}, nil
		}
		var nm *chartversion.NoMatchError
		if errors.As(err, &nm) || f.polling {
			return ctrl.Result{RequeueAfter: min(noMatchRetry, r.nextPoll(op, f, now))}, nil
		}
		return ctrl.Result{}, err
	}
	if f.pollAttempted {
		pollsTotal.WithLabelValues("success").Inc()
	}

	// 5. Write the Bundle, with an exact version only.
	oldVersion := ""
	if existing != nil {
		oldVersion = existing.Spec.HelmOrEmpty().Version
	}
	bundle := existing
	if bundle == nil {
		bundle = &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: op.Name, Namespace: op.Namespace}}
	}
	before := bundle.DeepCopy()
	bundle.Labels = bundleLabels(op)
	if bundle.Annotations == nil {
		bundle.Annotations = map[string]string{}
	}
	bundle.Annotations[inputsAnnotation] = inputs
	bundle.Spec = spec
	if err := controllerutil.SetControllerReference(op, bundle, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if existing == nil {
		if err := r.Client.Create(ctx, bundle); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return ctrl.Result{}, err // the cache was behind: try again
			}
			f.bundleErr = fmt.Errorf("creating Bundle %s/%s: %w", op.Namespace, op.Name, err)
			return ctrl.Result{}, f.bundleErr
		}
		r.Recorder.Eventf(op, corev1.EventTypeNormal, "BundleCreated", "Created Bundle with %s", describeVersion(res))
	} else if !equality.Semantic.DeepEqual(before, bundle) {
		if err := r.Client.Update(ctx, bundle); err != nil {
			f.bundleErr = fmt.Errorf("updating Bundle %s/%s: %w", op.Namespace, op.Name, err)
			return ctrl.Result{}, f.bundleErr
		}
	}
	f.bundle = bundle
	f.version = spec.HelmOrEmpty().Version
	if oldVersion != "" && oldVersion != f.version {
		log.Info("Got new chart version", "old", oldVersion, "new", f.version)
		r.Recorder.Eventf(op, corev1.EventTypeNormal, "GotNewChartVersion", "Chart version changed from %s to %s", oldVersion, f.version)
	}
	return ctrl.Result{RequeueAfter: r.nextPoll(op, f, now)}, nil
}

func describeVersion(res *chartsource.Resolution) string {
	if res == nil || res.Version == "" {
		return "the chart archive"
	}
	return "chart version " + res.Version
}

// bundleSpec is the HelmOp's deployment options with every version resolved to an exact one.
func (r *Reconciler) bundleSpec(ctx context.Context, op *v1alpha1.HelmOp, kind chartsource.Kind, auth chartsource.Auth) (v1alpha1.BundleSpec, *chartsource.Resolution, error) {
	in := op.Spec.DeepCopy()
	spec := v1alpha1.BundleSpec{
		BundleDeploymentOptions: in.BundleDeploymentOptions,
		Paused:                  in.Paused,
		TargetCustomizationMode: in.TargetCustomizationMode,
		TargetRestrictions:      in.TargetRestrictions,
		RolloutStrategy:         in.RolloutStrategy,
		DependsOn:               in.DependsOn,
		HelmOpOptions: &v1alpha1.BundleHelmOptions{
			SecretName:            op.Spec.HelmSecretName,
			InsecureSkipTLSVerify: op.Spec.InsecureSkipTLSVerify,
		},
	}
	helm := spec.Helm
	if helm == nil {
		helm = &v1alpha1.HelmOptions{}
		spec.Helm = helm
	}
	var res *chartsource.Resolution
	if kind != chartsource.KindTarball {
		var err error
		res, err = r.Resolver.Resolve(ctx, chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version}, auth)
		if err != nil {
			return spec, nil, err
		}
		if res.Version == "" {
			return spec, nil, fmt.Errorf("resolving %s gave no version", helm.Chart)
		}
		helm.Version = res.Version
	}
	for i, t := range op.Spec.Targets {
		t = *t.DeepCopy()
		if t.Name == "" {
			t.Name = fmt.Sprintf("target%03d", i)
		}
		if t.Helm != nil && t.Helm.Version != "" {
			tref := chartsource.Ref{Repo: firstOf(t.Helm.Repo, helm.Repo), Chart: firstOf(t.Helm.Chart, helm.Chart), Version: t.Helm.Version}
			tres, err := r.Resolver.Resolve(ctx, tref, auth)
			if err != nil {
				return spec, nil, fmt.Errorf("targets[%d] (%s): %w", i, t.Name, err)
			}
			t.Helm.Version = tres.Version
		}
		spec.Targets = append(spec.Targets, t)
	}
	if len(spec.Targets) == 0 {
		spec.Targets = []v1alpha1.BundleTarget{{Name: "default", ClusterGroup: v1alpha1.DefaultClusterGroup}}
	}
	return spec, res, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *Reconciler) auth(ctx context.Context, op *v1alpha1.HelmOp) (chartsource.Auth, string, error) {
	name := op.Spec.HelmSecretName
	if name == "" {
		return chartsource.Auth{InsecureSkipTLSVerify: op.Spec.InsecureSkipTLSVerify}, "", nil
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return chartsource.Auth{}, "", fmt.Errorf("secret %s/%s named by spec.helmSecretName does not exist: create it with the repository credentials", op.Namespace, name)
		}
		return chartsource.Auth{}, "", fmt.Errorf("reading secret %s/%s named by spec.helmSecretName: %w", op.Namespace, name, err)
	}
	auth, err := chartsource.AuthFromSecret(secret)
	if err != nil {
		return chartsource.Auth{}, "", fmt.Errorf("spec.helmSecretName: %w", err)
	}
	auth.InsecureSkipTLSVerify = auth.InsecureSkipTLSVerify || op.Spec.InsecureSkipTLSVerify
	return auth, secret.ResourceVersion, nil
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

// inputsHash covers everything a resolution depends on.
func inputsHash(op *v1alpha1.HelmOp, secretRV string) string {
	b, _ := json.Marshal(struct {
		Spec     v1alpha1.HelmOpSpec
		SecretRV string
		Labels   map[string]string
	}{op.Spec, secretRV, bundleLabels(op)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
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
