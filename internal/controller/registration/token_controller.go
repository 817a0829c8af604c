// Package registration onboards clusters. A ClusterRegistrationToken gets a credential that can
// only create ClusterRegistrations in its workspace; a ClusterRegistration made with it is matched
// to (or creates) the Cluster with the same client ID, and the registering agent is handed a
// kubeconfig of its own, for a ServiceAccount whose rights are its cluster namespace and its own
// Cluster. Clusters with spec.kubeConfigSecret get their agent installed by the controller.
package registration

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/lifecycle"
)

const (
	// tokenExpiresAnnotation on a credential secret records when the token inside expires, so
	// it is renewed before.
	tokenExpiresAnnotation = "fleet.cattle.io/token-expires"
	// credentialLifetime is how long a minted ServiceAccount token lives when nothing shorter
	// is asked for; it is renewed when a fifth of it is left.
	credentialLifetime = 365 * 24 * time.Hour
	// minTokenLifetime is the shortest token the API server issues.
	minTokenLifetime = 10 * time.Minute
)

// Server is how minted kubeconfigs reach the management cluster's API server.
type Server struct {
	// URL of the API server as agents reach it.
	URL string
	// CAData is the PEM bundle agents verify the server with; empty uses the system roots.
	CAData []byte
}

// TokenReconciler gives each ClusterRegistrationToken its ServiceAccount, its one right and a
// registration kubeconfig in status.secretName.
type TokenReconciler struct {
	Client client.Client
	// Direct reads and writes ServiceAccounts, Roles and Secrets without a cache, so the
	// controller never caches them cluster-wide.
	Direct client.Client
	// Tokens mints ServiceAccount tokens (the TokenRequest API).
	Tokens kubernetes.Interface
	Server Server
	Clock  clock.PassiveClock
}

// SetupWithManager watches tokens and the objects they own.
func (r *TokenReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterregistrationtoken").
		For(&v1alpha1.ClusterRegistrationToken{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Complete(r)
}

// TokenServiceAccount is the ServiceAccount whose credential a token hands out.
func TokenServiceAccount(token string) string {
	return v1alpha1.RegistrationTokenServiceAccountPrefix + token
}

// TokenSecretName is the secret holding a token's registration kubeconfig.
func TokenSecretName(token string) string { return token + "-registration" }

// Expires is when a token stops registering clusters, nil when it does not expire.
func Expires(t *v1alpha1.ClusterRegistrationToken) *metav1.Time {
	if t.Spec.TTL == nil || t.Spec.TTL.Duration <= 0 {
		return nil
	}
	return &metav1.Time{Time: t.CreationTimestamp.Add(t.Spec.TTL.Duration)}
}

// Reconcile writes the token's ServiceAccount, Role, RoleBinding and kubeconfig secret.
func (r *TokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	t := &v1alpha1.ClusterRegistrationToken{}
	if err := r.Client.Get(ctx, req.NamespacedName, t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !t.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owner references remove the rest
	}
	patch := lifecycle.Snapshot(r.Client, t)
	now := r.Clock.Now()
	expires := Expires(t)
	t.Status.Expires = expires
	var res ctrl.Result
	var err error
	if expires != nil && !now.Before(expires.Time) {
		// An expired token keeps its ServiceAccount, so registrations made with it are
		// refused with a reason instead of an opaque 401, but its kubeconfig is withdrawn.
		err = r.withdraw(ctx, t)
		setTokenReady(t, now, false, "Expired", fmt.Sprintf("the token expired at %s and registers no new clusters; clusters registered before keep working", expires.UTC().Format(time.RFC3339)))
	} else {
		res, err = r.grant(ctx, t, now, expires)
		if err != nil {
			setTokenReady(t, now, false, "Failed", err.Error())
		} else {
			t.Status.SecretName = TokenSecretName(t.Name)
			setTokenReady(t, now, true, v1alpha1.ReasonSucceeded, fmt.Sprintf("agents register with the kubeconfig in secret %s", t.Status.SecretName))
			if expires != nil {
				res.RequeueAfter = minPositive(res.RequeueAfter, expires.Sub(now)+time.Second)
			}
		}
	}
	return res, patch.Status(ctx, t, err, func(error) {})
}

func setTokenReady(t *v1alpha1.ClusterRegistrationToken, now time.Time, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	} else {
		t.Status.SecretName = ""
	}
	lifecycle.SetCondition(&t.Status.Conditions, t.Generation, v1alpha1.ReadyCondition, status, reason, msg, now)
}

func (r *TokenReconciler) grant(ctx context.Context, t *v1alpha1.ClusterRegistrationToken, now time.Time, expires *metav1.Time) (ctrl.Result, error) {
	sa := TokenServiceAccount(t.Name)
	rules := []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"clusterregistrations"}, Verbs: []string{"create"},
	}}
	if err := ensureAccount(ctx, r.Direct, t, t.Namespace, sa, rules); err != nil {
		return ctrl.Result{}, fmt.Errorf("ClusterRegistrationToken %s/%s: %w", t.Namespace, t.Name, err)
	}
	lifetime := credentialLifetime
	if expires != nil {
		// The credential outlives the token by at most the API server's minimum; the
		// controller refuses registrations after expiry anyway.
		lifetime = max(expires.Sub(now), minTokenLifetime)
	}
	renewAt, err := ensureKubeconfigSecret(ctx, r.Direct, r.Tokens, r.Server, t, kubeconfigSecret{
		namespace: t.Namespace, name: TokenSecretName(t.Name), account: sa, lifetime: lifetime, now: now,
	})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("ClusterRegistrationToken %s/%s: %w", t.Namespace, t.Name, err)
	}
	return ctrl.Result{RequeueAfter: renewAt.Sub(now)}, nil
}

func (r *TokenReconciler) withdraw(ctx context.Context, t *v1alpha1.ClusterRegistrationToken) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: TokenSecretName(t.Name)}}
	if err := r.Direct.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("withdrawing the kubeconfig of expired ClusterRegistrationToken %s/%s: %w", t.Namespace, t.Name, err)
	}
	return nil
}

// ensureAccount creates a ServiceAccount with a Role of the given rules in namespace, all owned
// by owner; an existing Role is brought back to the rules.
func ensureAccount(ctx context.Context, c client.Client, owner client.Object, namespace, name string, rules []rbacv1.PolicyRule) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, sa, func() error {
		sa.Labels = map[string]string{v1alpha1.ManagedLabel: "true"}
		return controllerutil.SetOwnerReference(owner, sa, c.Scheme())
	}); err != nil {
		return fmt.Errorf("writing ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return ensureRole(ctx, c, owner, namespace, name, rules, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace})
}

// ensureRole writes a Role of the given rules and a RoleBinding of it to subject, both named
// name and owned by owner.
func ensureRole(ctx context.Context, c client.Client, owner client.Object, namespace, name string, rules []rbacv1.PolicyRule, subject rbacv1.Subject) error {
	labels := map[string]string{v1alpha1.ManagedLabel: "true"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	for _, o := range []client.Object{role, binding} {
		if _, err := controllerutil.CreateOrUpdate(ctx, c, o, func() error {
			o.SetLabels(labels)
			switch o := o.(type) {
			case *rbacv1.Role:
				o.Rules = rules
			case *rbacv1.RoleBinding:
				o.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
				o.Subjects = []rbacv1.Subject{subject}
			}
			return controllerutil.SetOwnerReference(owner, o, c.Scheme())
		}); err != nil {
			return fmt.Errorf("writing %T %s/%s: %w", o, namespace, name, err)
		}
	}
	return nil
}

type kubeconfigSecret struct {
	namespace, name, account string
	lifetime                 time.Duration
	now                      time.Time
	extra                    map[string]string
	secretType               corev1.SecretType
}

// ensureKubeconfigSecret keeps a secret holding a kubeconfig with a token of account, minting a
// new token when none is there or a fifth of its lifetime is left. It returns when to renew.
func ensureKubeconfigSecret(ctx context.Context, c client.Client, tokens kubernetes.Interface, server Server, owner client.Object, k kubeconfigSecret) (time.Time, error) {
	renew, current, err := k.current(ctx, c)
	if err != nil || current {
		return renew, err
	}
	token, exp, err := k.mintToken(ctx, tokens)
	if err != nil {
		return time.Time{}, err
	}
	kubeconfig, err := Kubeconfig(server, k.namespace, k.account, token)
	if err != nil {
		return time.Time{}, err
	}
	if err := k.write(ctx, c, owner, kubeconfig, exp); err != nil {
		return time.Time{}, err
	}
	return exp.Add(-k.lifetime / 5), nil
}

// current reads the secret and tells whether it holds a kubeconfig and the extra data, with a
// token more than a fifth of its lifetime from expiry; renew is then when to renew it.
func (k kubeconfigSecret) current(ctx context.Context, c client.Client) (renew time.Time, current bool, err error) {
	s := &corev1.Secret{}
	err = c.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: k.name}, s)
	if apierrors.IsNotFound(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading secret %s/%s: %w", k.namespace, k.name, err)
	}
	exp, err := time.Parse(time.RFC3339, s.Annotations[tokenExpiresAnnotation])
	if err != nil {
		return time.Time{}, false, nil
	}
	renew = exp.Add(-k.lifetime / 5)
	return renew, k.now.Before(renew) && len(s.Data[v1alpha1.RegistrationKubeconfigKey]) > 0 && hasData(s, k.extra), nil
}

// mintToken asks for a token of the account that lives the secret's lifetime.
func (k kubeconfigSecret) mintToken(ctx context.Context, tokens kubernetes.Interface) (string, time.Time, error) {
	seconds := int64(k.lifetime / time.Second)
	tr, err := tokens.CoreV1().ServiceAccounts(k.namespace).CreateToken(ctx, k.account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting a token for ServiceAccount %s/%s: %w", k.namespace, k.account, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// write creates or updates the secret: managed label, the token's expiry in an annotation, the
// kubeconfig and the extra data, owned by owner. Its type is set only on creation.
func (k kubeconfigSecret) write(ctx context.Context, c client.Client, owner client.Object, kubeconfig []byte, exp time.Time) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, Name: k.name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, s, func() error {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[v1alpha1.ManagedLabel] = "true"
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[tokenExpiresAnnotation] = exp.UTC().Format(time.RFC3339)
		if s.CreationTimestamp.IsZero() && k.secretType != "" {
			s.Type = k.secretType
		}
		s.Data = map[string][]byte{v1alpha1.RegistrationKubeconfigKey: kubeconfig}
		for key, v := range k.extra {
			s.Data[key] = []byte(v)
		}
		return controllerutil.SetOwnerReference(owner, s, c.Scheme())
	}); err != nil {
		return fmt.Errorf("writing secret %s/%s: %w", k.namespace, k.name, err)
	}
	return nil
}

func hasData(s *corev1.Secret, want map[string]string) bool {
	for k, v := range want {
		if string(s.Data[k]) != v {
			return false
		}
	}
	return true
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	if b <= 0 {
		return a
	}
	return min(a, b)
}
