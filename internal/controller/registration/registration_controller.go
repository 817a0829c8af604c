package registration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/lifecycle"
)

// clientIDIndex indexes Clusters by spec.clientID.
const clientIDIndex = "cluster.spec.clientID"

// Reasons a ClusterRegistration is refused with.
const (
	ReasonTokenNotFound   = "TokenNotFound"
	ReasonTokenExpired    = "TokenExpired"
	ReasonClientIDInUse   = "ClientIDInUse"
	ReasonInvalidRequest  = "InvalidRegistration"
	ReasonGrantInProgress = "Granting"
)

// Reconciler grants ClusterRegistrations: it finds or creates the Cluster with the client ID,
// gives the cluster's agent a ServiceAccount with exactly its rights, and writes a kubeconfig for
// it into a secret that only the registering credential may read.
type Reconciler struct {
	Client client.Client
	// Direct reads and writes ServiceAccounts, Roles and Secrets without a cache.
	Direct client.Client
	Tokens kubernetes.Interface
	Server Server
	Clock  clock.PassiveClock
}

// SetupWithManager indexes Clusters by client ID and watches ClusterRegistrations.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Cluster{}, clientIDIndex, func(o client.Object) []string {
		if id := o.(*v1alpha1.Cluster).Spec.ClientID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterregistration").
		For(&v1alpha1.ClusterRegistration{}).
		Complete(r)
}

// refusal is a registration that can never be granted as written.
type refusal struct{ reason, msg string }

func (e *refusal) Error() string { return e.msg }

func refuse(reason, format string, args ...any) error {
	return reconcile.TerminalError(&refusal{reason: reason, msg: fmt.Sprintf(format, args...)})
}

// Reconcile grants one registration once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	reg := &v1alpha1.ClusterRegistration{}
	if err := r.Client.Get(ctx, req.NamespacedName, reg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if reg.Status.Granted || !reg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	patch := lifecycle.Snapshot(r.Client, reg)
	now := r.Clock.Now()
	defer func() {
		retErr = patch.Status(ctx, reg, retErr, func(err error) { setGranted(reg, err, now) })
	}()
	if err := r.checkToken(ctx, reg); err != nil {
		return ctrl.Result{}, err
	}
	c, err := r.cluster(ctx, reg)
	if err != nil {
		return ctrl.Result{}, err
	}
	reg.Status.ClusterName = c.Name
	if err := r.grant(ctx, reg, c, now); err != nil {
		return ctrl.Result{}, err
	}
	reg.Status.Granted = true
	ctrl.LoggerFrom(ctx).Info("Granted cluster registration", "Cluster", klog.KObj(c), "clientID", reg.Spec.ClientID)
	return ctrl.Result{}, nil
}

func setGranted(reg *v1alpha1.ClusterRegistration, err error, now time.Time) {
	var ref *refusal
	switch {
	case err == nil && reg.Status.Granted:
		lifecycle.SetCondition(&reg.Status.Conditions, reg.Generation, v1alpha1.ClusterRegistrationGrantedCondition, metav1.ConditionTrue,
			v1alpha1.ReasonSucceeded, fmt.Sprintf("registered as Cluster %s; the agent's credential is in secret %s", reg.Status.ClusterName, v1alpha1.CredentialSecretName(reg)), now)
	case errors.As(err, &ref):
		lifecycle.SetCondition(&reg.Status.Conditions, reg.Generation, v1alpha1.ClusterRegistrationGrantedCondition, metav1.ConditionFalse, ref.reason, ref.msg, now)
	case err != nil:
		lifecycle.SetCondition(&reg.Status.Conditions, reg.Generation, v1alpha1.ClusterRegistrationGrantedCondition, metav1.ConditionUnknown, ReasonGrantInProgress, err.Error(), now)
	}
}

// checkToken refuses registrations whose token is gone, or that were made after it expired. The
// token label is checked by the admission policy against the credential that created the object.
func (r *Reconciler) checkToken(ctx context.Context, reg *v1alpha1.ClusterRegistration) error {
	name := reg.Labels[v1alpha1.RegistrationTokenLabel]
	if name == "" {
		return refuse(ReasonInvalidRequest, "label %s is missing: register with a ClusterRegistrationToken's kubeconfig (helmops agent --registration-kubeconfig)", v1alpha1.RegistrationTokenLabel)
	}
	if reg.Spec.ClientID == "" {
		return refuse(ReasonInvalidRequest, "spec.clientID is empty: the agent must identify its cluster")
	}
	if err := validLabels(reg.Spec.ClusterLabels); err != nil {
		return refuse(ReasonInvalidRequest, "spec.clusterLabels: %v", err)
	}
	t := &v1alpha1.ClusterRegistrationToken{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: reg.Namespace, Name: name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return refuse(ReasonTokenNotFound, "ClusterRegistrationToken %s/%s does not exist (deleted or never created): create a token and register again", reg.Namespace, name)
		}
		return fmt.Errorf("reading ClusterRegistrationToken %s/%s: %w", reg.Namespace, name, err)
	}
	if exp := Expires(t); exp != nil && !reg.CreationTimestamp.Before(exp) {
		return refuse(ReasonTokenExpired, "ClusterRegistrationToken %s/%s expired at %s, before this registration was made: create a new token", reg.Namespace, name, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

func validLabels(l map[string]string) error {
	for k, v := range l {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("value %q of %q: %s", v, k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// ClusterNameFor is the name of a Cluster created by registration.
func ClusterNameFor(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return "c-" + hex.EncodeToString(sum[:6])
}

// cluster finds the workspace's Cluster with the registration's client ID, or creates it. A
// client ID held by a Cluster of another workspace is refused: a token of one workspace must not
// take over another workspace's cluster.
func (r *Reconciler) cluster(ctx context.Context, reg *v1alpha1.ClusterRegistration) (*v1alpha1.Cluster, error) {
	list := &v1alpha1.ClusterList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{clientIDIndex: reg.Spec.ClientID}); err != nil {
		return nil, fmt.Errorf("listing Clusters by client ID: %w", err)
	}
	for i := range list.Items {
		if c := &list.Items[i]; c.Namespace != reg.Namespace {
			return nil, refuse(ReasonClientIDInUse, "client ID %q belongs to a Cluster of another workspace; it is not registered in %s", reg.Spec.ClientID, reg.Namespace)
		}
	}
	if len(list.Items) > 0 {
		return &list.Items[0], nil
	}
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{
		Namespace: reg.Namespace, Name: ClusterNameFor(reg.Spec.ClientID), Labels: maps.Clone(reg.Spec.ClusterLabels),
	}, Spec: v1alpha1.ClusterSpec{ClientID: reg.Spec.ClientID}}
	if err := r.Client.Create(ctx, c); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Created by an earlier attempt the cache has not seen, or a Cluster of that name
			// without the client ID: read it back.
			existing := &v1alpha1.Cluster{}
			if gerr := r.Client.Get(ctx, client.ObjectKeyFromObject(c), existing); gerr != nil {
				return nil, fmt.Errorf("reading Cluster %s: %w", klog.KObj(c), gerr)
			}
			if existing.Spec.ClientID != reg.Spec.ClientID {
				return nil, refuse(ReasonClientIDInUse, "Cluster %s exists with another client ID", klog.KObj(c))
			}
			return existing, nil
		}
		return nil, fmt.Errorf("creating Cluster %s: %w", klog.KObj(c), err)
	}
	ctrl.LoggerFrom(ctx).Info("Created Cluster for registration", "Cluster", klog.KObj(c))
	return c, nil
}

// AgentWorkspaceRules are the rights of a cluster's agent in its workspace: read its own Cluster,
// nothing more (its heartbeat is a Lease in its cluster namespace). Its cluster namespace rights
// come from the cluster controller.
func AgentWorkspaceRules(clusterName string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"clusters"}, ResourceNames: []string{clusterName}, Verbs: []string{"get"}},
	}
}

// grant creates the agent's ServiceAccount (owned by its Cluster, so deleting the Cluster revokes
// it), its kubeconfig secret, and the right of the registering credential to read that one secret.
func (r *Reconciler) grant(ctx context.Context, reg *v1alpha1.ClusterRegistration, c *v1alpha1.Cluster, now time.Time) error {
	sa := cluster.AgentServiceAccount(c.Name)
	if err := ensureAccount(ctx, r.Direct, c, c.Namespace, sa, AgentWorkspaceRules(c.Name)); err != nil {
		return fmt.Errorf("granting Cluster %s its agent: %w", klog.KObj(c), err)
	}
	secret := v1alpha1.CredentialSecretName(reg)
	if _, err := ensureKubeconfigSecret(ctx, r.Direct, r.Tokens, r.Server, c, kubeconfigSecret{
		namespace: c.Namespace, name: secret, account: sa, lifetime: credentialLifetime, now: now,
		secretType: v1alpha1.RegistrationSecretType,
		extra: map[string]string{
			v1alpha1.CredentialClusterNameKey:      c.Name,
			v1alpha1.CredentialWorkspaceKey:        c.Namespace,
			v1alpha1.CredentialClusterNamespaceKey: cluster.NamespaceName(c.Namespace, c.Name),
		},
	}); err != nil {
		return fmt.Errorf("writing the agent credential of Cluster %s: %w", klog.KObj(c), err)
	}
	readSecret := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"get"}}}
	registrant := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: reg.Namespace, Name: TokenServiceAccount(reg.Labels[v1alpha1.RegistrationTokenLabel])}
	if err := ensureRole(ctx, r.Direct, reg, reg.Namespace, secret, readSecret, registrant); err != nil {
		return fmt.Errorf("letting registration %s read its credential: %w", klog.KObj(reg), err)
	}
	return nil
}
