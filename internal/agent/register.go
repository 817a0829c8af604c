package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/scheme"
)

// Registration is how an agent without a credential of its own gets one: with the kubeconfig of a
// ClusterRegistrationToken it asks the management cluster to register its cluster, and keeps the
// credential it is granted in a downstream Secret, so it never needs the token again. Without a
// token it waits for the management cluster's controller to write that Secret (the agent of the
// local cluster, and agents the controller installed through spec.kubeConfigSecret).
type Registration struct {
	// Token reaches the management cluster with the token's credential; nil waits for the
	// credential to appear in CredentialSecret.
	Token *rest.Config
	// ClientID identifies this cluster across registrations; default the UID of the
	// downstream kube-system namespace.
	ClientID string
	// Labels are set on a Cluster the registration creates.
	Labels map[string]string
	// CredentialSecret is the downstream Secret the granted credential is kept in.
	CredentialSecret types.NamespacedName
	// QPS and Burst limit the agent's client of the management cluster once it has its
	// credential; 0 leaves client-go's defaults.
	QPS   float32
	Burst int
}

// Credential is what a granted registration hands the agent.
type Credential struct {
	Upstream                                 *rest.Config
	ClusterName, Workspace, ClusterNamespace string
}

// Register returns the agent's credential: the one kept downstream when there is one, else one
// granted for a new ClusterRegistration made with the token. It waits until the registration is
// granted.
func Register(ctx context.Context, downstream client.Client, reg Registration) (*Credential, error) {
	log := ctrl.LoggerFrom(ctx)
	kept := &corev1.Secret{}
	err := downstream.Get(ctx, reg.CredentialSecret, kept)
	switch {
	case err == nil:
		log.Info("Using the kept agent credential", "secret", reg.CredentialSecret)
		return credentialFrom(kept.Data)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the agent credential %s downstream: %w", reg.CredentialSecret, err)
	case reg.Token == nil:
		return waitForKept(ctx, downstream, reg.CredentialSecret)
	}
	workspace, token, err := tokenIdentity(ctx, reg.Token)
	if err != nil {
		return nil, err
	}
	id, err := clientID(ctx, downstream, reg)
	if err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, downstream, reg.CredentialSecret); err != nil {
		return nil, err
	}
	up, cr, err := requestRegistration(ctx, reg, workspace, token, id)
	if err != nil {
		return nil, err
	}
	granted, err := waitForCredential(ctx, up, cr)
	if err != nil {
		return nil, err
	}
	keep := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: reg.CredentialSecret.Namespace, Name: reg.CredentialSecret.Name, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		Data:       granted.Data,
	}
	if err := downstream.Create(ctx, keep); err != nil {
		return nil, fmt.Errorf("keeping the agent credential in %s downstream: %w", reg.CredentialSecret, err)
	}
	log.Info("Registered", "Cluster", klog.KRef(workspace, string(granted.Data[v1alpha1.CredentialClusterNameKey])))
	return credentialFrom(granted.Data)
}

// ensureNamespace creates the namespace the granted credential is kept in when it is missing,
// before registering: a credential granted and then not kept would need a registration again.
func ensureNamespace(ctx context.Context, downstream client.Client, key types.NamespacedName) error {
	err := downstream.Get(ctx, client.ObjectKey{Name: key.Namespace}, &corev1.Namespace{})
	if apierrors.IsNotFound(err) {
		err = downstream.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key.Namespace}})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("the namespace of the agent credential %s downstream: %w", key, err)
	}
	return nil
}

// clientID is the registration's client ID: the one given, else the UID of the downstream
// kube-system namespace.
func clientID(ctx context.Context, downstream client.Client, reg Registration) (string, error) {
	if reg.ClientID != "" {
		return reg.ClientID, nil
	}
	ks := &corev1.Namespace{}
	if err := downstream.Get(ctx, client.ObjectKey{Name: "kube-system"}, ks); err != nil {
		return "", fmt.Errorf("reading the UID of namespace kube-system for the client ID (or set --client-id): %w", err)
	}
	return string(ks.UID), nil
}

// requestRegistration creates a ClusterRegistration in the token's workspace with the token's
// credential, which it returns a client of.
func requestRegistration(ctx context.Context, reg Registration, workspace, token, clientID string) (client.Client, *v1alpha1.ClusterRegistration, error) {
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return nil, nil, err
	}
	up, err := client.New(reg.Token, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, nil, err
	}
	cr := &v1alpha1.ClusterRegistration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "reg-", Namespace: workspace, Labels: map[string]string{v1alpha1.RegistrationTokenLabel: token}},
		Spec:       v1alpha1.ClusterRegistrationSpec{ClientID: clientID, ClientRandom: hex.EncodeToString(random), ClusterLabels: reg.Labels},
	}
	ctrl.LoggerFrom(ctx).Info("Registering cluster", "workspace", workspace, "token", token, "clientID", clientID)
	if err := up.Create(ctx, cr); err != nil {
		return nil, nil, fmt.Errorf("creating a ClusterRegistration in %s with token %s: %w", workspace, token, err)
	}
	return up, cr, nil
}

// tokenIdentity asks the API server who the token is: system:serviceaccount:<workspace>:<prefix><token>.
func tokenIdentity(ctx context.Context, cfg *rest.Config) (workspace, token string, err error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", "", fmt.Errorf("--registration-kubeconfig: the management cluster does not accept the token (expired or deleted?): %w", err)
	}
	user := review.Status.UserInfo.Username
	parts := strings.Split(user, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || !strings.HasPrefix(parts[3], v1alpha1.RegistrationTokenServiceAccountPrefix) {
		return "", "", fmt.Errorf("--registration-kubeconfig authenticates as %q, not as a ClusterRegistrationToken's account: use the kubeconfig of the token's status.secretName", user)
	}
	return parts[2], strings.TrimPrefix(parts[3], v1alpha1.RegistrationTokenServiceAccountPrefix), nil
}

// waitForCredential polls for the credential secret; the token's credential may read it once
// the controller granted the registration.
func waitForCredential(ctx context.Context, up client.Client, cr *v1alpha1.ClusterRegistration) (*corev1.Secret, error) {
	log := ctrl.LoggerFrom(ctx)
	key := client.ObjectKey{Namespace: cr.Namespace, Name: v1alpha1.CredentialSecretName(cr)}
	delay := 200 * time.Millisecond
	for logged := false; ; {
		s := &corev1.Secret{}
		err := up.Get(ctx, key, s)
		switch {
		case err == nil && len(s.Data[v1alpha1.RegistrationKubeconfigKey]) > 0:
			return s, nil
		case err == nil, apierrors.IsNotFound(err), apierrors.IsForbidden(err):
			if !logged {
				log.Info("Waiting for the registration to be granted (its status says why it is not)", "ClusterRegistration", klog.KObj(cr))
				logged = true
			}
		default:
			log.Error(err, "Reading the granted credential")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// waitForKept polls for the credential the management cluster's controller writes into key.
func waitForKept(ctx context.Context, downstream client.Client, key types.NamespacedName) (*Credential, error) {
	log := ctrl.LoggerFrom(ctx)
	log.Info("Waiting for the management cluster to write this agent's credential", "secret", key)
	delay := 200 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
		s := &corev1.Secret{}
		err := downstream.Get(ctx, key, s)
		switch {
		case err == nil && len(s.Data[v1alpha1.RegistrationKubeconfigKey]) > 0:
			log.Info("Using the agent credential written by the management cluster", "secret", key)
			return credentialFrom(s.Data)
		case err != nil && !apierrors.IsNotFound(err):
			log.Error(err, "Reading the agent credential", "secret", key)
		}
	}
}

func credentialFrom(data map[string][]byte) (*Credential, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data[v1alpha1.RegistrationKubeconfigKey])
	if err != nil {
		return nil, fmt.Errorf("the agent credential holds no valid kubeconfig: %w", err)
	}
	c := &Credential{
		Upstream:         cfg,
		ClusterName:      string(data[v1alpha1.CredentialClusterNameKey]),
		Workspace:        string(data[v1alpha1.CredentialWorkspaceKey]),
		ClusterNamespace: string(data[v1alpha1.CredentialClusterNamespaceKey]),
	}
	if c.ClusterName == "" || c.Workspace == "" {
		return nil, fmt.Errorf("the agent credential names no cluster or workspace")
	}
	return c, nil
}
