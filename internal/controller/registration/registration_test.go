package registration_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/charts"
	"github.com/helmops/helmops/internal/agent"
	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/controller/registration"
	"github.com/helmops/helmops/internal/testenv"
)

var (
	upstream   *testenv.ControlPlane
	downstream [2]*testenv.ControlPlane
)

// localCredential is where the controller under test writes the local agent's credential.
var localCredential = client.ObjectKey{Namespace: "helmops-system", Name: "helmops-agent-local-credential"}

const (
	timeout  = 60 * time.Second
	interval = 100 * time.Millisecond
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if os.Getenv("HELMOPS_TEST_LOG") != "" {
		ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1}))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	var err error
	if upstream, err = testenv.Start(ctx, testenv.Options{Name: "management"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer upstream.Stop()
	// Two downstream clusters, so each registration has a kube-system UID of its own.
	for i := range downstream {
		if downstream[i], err = testenv.Start(ctx, testenv.Options{Name: fmt.Sprintf("downstream-%d", i), NoControllerManager: true}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// No namespace helmops-system: the registering agent creates the one it keeps its
		// credential in.
		defer downstream[i].Stop()
	}
	if err := registration.EnsureAdmissionPolicy(ctx, upstream.Client); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tokens := kubernetes.NewForConfigOrDie(upstream.Config)
	server := registration.Server{URL: upstream.Config.Host, CAData: upstream.Config.CAData}
	direct, err := client.New(upstream.Config, client.Options{Scheme: upstream.Client.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := upstream.StartManager(ctx, ctrl.Options{}, func(mgr ctrl.Manager) error {
		if err := (&cluster.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&registration.TokenReconciler{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&registration.Reconciler{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&registration.LocalAgent{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server,
			Secret: localCredential}).SetupWithManager(mgr); err != nil {
			return err
		}
		ch, err := charts.AgentChart()
		if err != nil {
			return err
		}
		return (&registration.AgentDeployer{Client: mgr.GetClient(), Direct: direct, Tokens: tokens, Server: server, Chart: ch,
			Image: registration.AgentImage{Repository: "example.com/helmops", Tag: "test"}}).SetupWithManager(mgr)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

func workspace(t *testing.T) string {
	t.Helper()
	name := "ws-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-")
	NewWithT(t).Expect(upstream.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// tokenConfig creates a token and returns the registration kubeconfig it hands out.
func tokenConfig(t *testing.T, ws, name string, ttl time.Duration) *rest.Config {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	tok := &v1alpha1.ClusterRegistrationToken{ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: name}}
	if ttl > 0 {
		tok.Spec.TTL = &metav1.Duration{Duration: ttl}
	}
	g.Expect(upstream.Client.Create(ctx, tok)).To(Succeed())
	s := &corev1.Secret{}
	g.Eventually(func() error {
		if err := upstream.Client.Get(ctx, client.ObjectKeyFromObject(tok), tok); err != nil {
			return err
		}
		if tok.Status.SecretName == "" {
			return fmt.Errorf("no status.secretName yet: %+v", tok.Status.Conditions)
		}
		return upstream.Client.Get(ctx, client.ObjectKey{Namespace: ws, Name: tok.Status.SecretName}, s)
	}, timeout, interval).Should(Succeed())
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[v1alpha1.RegistrationKubeconfigKey])
	g.Expect(err).NotTo(HaveOccurred())
	return cfg
}

func register(ctx context.Context, t *testing.T, cfg *rest.Config, i int, clientID string, labels map[string]string) *agent.Credential {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cred, err := agent.Register(ctx, downstream[i].Client, agent.Registration{
		Token: cfg, ClientID: clientID, Labels: labels,
		CredentialSecret: types.NamespacedName{Namespace: "helmops-system", Name: "cred-" + strings.ToLower(t.Name())},
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return cred
}

// can asks the API server whether the agent's credential may do verb on resource in namespace.
func can(t *testing.T, cred *agent.Credential, verb, group, resource, namespace, name string) bool {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(cred.Upstream)
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: name,
		}},
	}, metav1.CreateOptions{})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return r.Status.Allowed
}

func TestOneTokenRegistersTwoClustersWithScopedCredentials(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	cfg := tokenConfig(t, ws, "onboarding", 0)

	var creds [2]*agent.Credential
	for i := range downstream {
		creds[i] = register(ctx, t, cfg, i, "", map[string]string{"env": fmt.Sprintf("env-%d", i)})
		ks := &corev1.Namespace{}
		g.Expect(downstream[i].Client.Get(ctx, client.ObjectKey{Name: "kube-system"}, ks)).To(Succeed())
		c := &v1alpha1.Cluster{}
		g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: ws, Name: creds[i].ClusterName}, c)).To(Succeed())
		g.Expect(c.Spec.ClientID).To(Equal(string(ks.UID)), "the client ID defaults to the kube-system UID")
		g.Expect(c.Labels).To(HaveKeyWithValue("env", fmt.Sprintf("env-%d", i)))
		g.Expect(creds[i].ClusterNamespace).To(Equal(cluster.NamespaceName(ws, c.Name)))
	}
	g.Expect(creds[0].ClusterName).NotTo(Equal(creds[1].ClusterName))

	bd := "bundledeployments"
	group := v1alpha1.GroupVersion.Group
	for i, cred := range creds {
		own, other := cred.ClusterNamespace, creds[1-i].ClusterNamespace
		// The cluster controller grants the cluster-namespace rights once the namespace exists.
		g.Eventually(func() bool { return can(t, cred, "list", group, bd, own, "") }, timeout, interval).Should(BeTrue())
		g.Expect(can(t, cred, "patch", group, "bundledeployments/status", own, "")).To(BeTrue())
		g.Expect(can(t, cred, "list", group, bd, other, "")).To(BeFalse())
		g.Expect(can(t, cred, "get", "", "secrets", other, "")).To(BeFalse())
		g.Expect(can(t, cred, "get", group, "clusters", ws, creds[1-i].ClusterName)).To(BeFalse())
		g.Expect(can(t, cred, "patch", group, "clusters/status", ws, creds[1-i].ClusterName)).To(BeFalse())
		g.Expect(can(t, cred, "patch", group, "clusters/status", ws, creds[i].ClusterName)).To(BeFalse(), "no write on its own Cluster either")
		g.Expect(can(t, cred, "patch", group, "clusters", ws, creds[i].ClusterName)).To(BeFalse())
		g.Expect(can(t, cred, "update", "coordination.k8s.io", "leases", own, "helmops-agent")).To(BeTrue(), "its heartbeat")
		g.Expect(can(t, cred, "update", "coordination.k8s.io", "leases", other, "helmops-agent")).To(BeFalse(), "another cluster's heartbeat")
		g.Expect(can(t, cred, "create", "coordination.k8s.io", "leases", own, "")).To(BeFalse())
		g.Expect(can(t, cred, "create", group, "clusters", ws, "")).To(BeFalse())
		g.Expect(can(t, cred, "create", group, "clusterregistrations", ws, "")).To(BeFalse(), "the agent never needs the token's right again")

		// And for real: reading the other cluster's BundleDeployments is forbidden.
		c, err := client.New(cred.Upstream, client.Options{Scheme: upstream.Client.Scheme()})
		g.Expect(err).NotTo(HaveOccurred())
		err = c.List(ctx, &v1alpha1.BundleDeploymentList{}, client.InNamespace(other))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing another cluster's BundleDeployments: %v", err)
		g.Expect(c.List(ctx, &v1alpha1.BundleDeploymentList{}, client.InNamespace(own))).To(Succeed())
	}

	// The token's own credential can register, nothing else.
	tokCred := &agent.Credential{Upstream: cfg}
	g.Expect(can(t, tokCred, "create", group, "clusterregistrations", ws, "")).To(BeTrue())
	g.Expect(can(t, tokCred, "get", group, "clusterregistrations", ws, "")).To(BeFalse())
	g.Expect(can(t, tokCred, "list", "", "secrets", ws, "")).To(BeFalse())
	g.Expect(can(t, tokCred, "get", group, "clusters", ws, creds[0].ClusterName)).To(BeFalse())
	g.Expect(can(t, tokCred, "list", group, bd, creds[0].ClusterNamespace, "")).To(BeFalse())

	// Restarting the agent reuses the kept credential: no new registration.
	before := &v1alpha1.ClusterRegistrationList{}
	g.Expect(upstream.Client.List(ctx, before, client.InNamespace(ws))).To(Succeed())
	again := register(ctx, t, cfg, 0, "", nil)
	g.Expect(again.ClusterName).To(Equal(creds[0].ClusterName))
	after := &v1alpha1.ClusterRegistrationList{}
	g.Expect(upstream.Client.List(ctx, after, client.InNamespace(ws))).To(Succeed())
	g.Expect(after.Items).To(HaveLen(len(before.Items)))
}

func TestReRegisteringAClientIDReusesItsCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	cfg := tokenConfig(t, ws, "reuse", 0)
	first := register(ctx, t, cfg, 0, "client-a", nil)
	// The downstream credential is lost (a reinstalled agent): the same client ID registers again.
	g.Expect(downstream[0].Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "helmops-system", Name: "cred-" + strings.ToLower(t.Name())}})).To(Succeed())
	second := register(ctx, t, cfg, 0, "client-a", nil)
	g.Expect(second.ClusterName).To(Equal(first.ClusterName))
	list := &v1alpha1.ClusterList{}
	g.Expect(upstream.Client.List(ctx, list, client.InNamespace(ws))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
}

// registrationOf creates a ClusterRegistration with a token's credential, as an agent does,
// and waits for its Granted condition.
func registrationOf(t *testing.T, cfg *rest.Config, ws, token, clientID string) *v1alpha1.ClusterRegistration {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: upstream.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	cr := &v1alpha1.ClusterRegistration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "reg-", Namespace: ws, Labels: map[string]string{v1alpha1.RegistrationTokenLabel: token}},
		Spec:       v1alpha1.ClusterRegistrationSpec{ClientID: clientID, ClientRandom: "r"},
	}
	g.Expect(c.Create(ctx, cr)).To(Succeed())
	g.Eventually(func() *metav1.Condition {
		_ = upstream.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr)
		return meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ClusterRegistrationGrantedCondition)
	}, timeout, interval).ShouldNot(BeNil())
	return cr
}

func TestAnExpiredTokenRegistersNothingAndSaysWhy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	cfg := tokenConfig(t, ws, "short", 2*time.Second)
	time.Sleep(3 * time.Second)

	cr := registrationOf(t, cfg, ws, "short", "late-client")
	cond := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ClusterRegistrationGrantedCondition)
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(registration.ReasonTokenExpired))
	g.Expect(cond.Message).To(ContainSubstring("expired at"))
	g.Expect(cr.Status.Granted).To(BeFalse())
	list := &v1alpha1.ClusterList{}
	g.Expect(upstream.Client.List(ctx, list, client.InNamespace(ws))).To(Succeed())
	g.Expect(list.Items).To(BeEmpty())

	// The token says so too, and its kubeconfig is withdrawn.
	tok := &v1alpha1.ClusterRegistrationToken{}
	g.Eventually(func() string {
		_ = upstream.Client.Get(ctx, client.ObjectKey{Namespace: ws, Name: "short"}, tok)
		if c := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); c != nil {
			return c.Reason
		}
		return ""
	}, timeout, interval).Should(Equal("Expired"))
	err := upstream.Client.Get(ctx, client.ObjectKey{Namespace: ws, Name: registration.TokenSecretName("short")}, &corev1.Secret{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

func TestADeletedTokenRegistersNothingAndRegisteredClustersKeepWorking(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	cfg := tokenConfig(t, ws, "gone", 0)
	cred := register(ctx, t, cfg, 1, "kept-client", nil)
	g.Eventually(func() bool {
		return can(t, cred, "list", v1alpha1.GroupVersion.Group, "bundledeployments", cred.ClusterNamespace, "")
	}, timeout, interval).Should(BeTrue())

	g.Expect(upstream.Client.Delete(ctx, &v1alpha1.ClusterRegistrationToken{ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: "gone"}})).To(Succeed())
	// An admin-made registration naming the deleted token is refused with the reason.
	cr := &v1alpha1.ClusterRegistration{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: ws, Labels: map[string]string{v1alpha1.RegistrationTokenLabel: "gone"}},
		Spec:       v1alpha1.ClusterRegistrationSpec{ClientID: "new-client", ClientRandom: "r"},
	}
	g.Expect(upstream.Client.Create(ctx, cr)).To(Succeed())
	g.Eventually(func() string {
		_ = upstream.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr)
		if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ClusterRegistrationGrantedCondition); c != nil {
			return c.Reason
		}
		return ""
	}, timeout, interval).Should(Equal(registration.ReasonTokenNotFound))
	// The registered cluster's own credential still works.
	c, err := client.New(cred.Upstream, client.Options{Scheme: upstream.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.List(ctx, &v1alpha1.BundleDeploymentList{}, client.InNamespace(cred.ClusterNamespace))).To(Succeed())
}

func TestAClientIDOfAnotherWorkspaceIsRefused(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	other := workspace(t)
	g.Expect(upstream.Client.Create(ctx, &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "theirs"},
		Spec:       v1alpha1.ClusterSpec{ClientID: "their-client"},
	})).To(Succeed())
	ws := other + "-b"
	g.Expect(upstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ws}})).To(Succeed())
	cfg := tokenConfig(t, ws, "attacker", 0)

	cr := registrationOf(t, cfg, ws, "attacker", "their-client")
	cond := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ClusterRegistrationGrantedCondition)
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(registration.ReasonClientIDInUse))
	list := &v1alpha1.ClusterList{}
	g.Expect(upstream.Client.List(ctx, list, client.InNamespace(ws))).To(Succeed())
	g.Expect(list.Items).To(BeEmpty())
	// No credential was written for it.
	err := upstream.Client.Get(ctx, client.ObjectKey{Namespace: ws, Name: v1alpha1.CredentialSecretName(cr)}, &corev1.Secret{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

func TestATokenCannotRegisterInTheNameOfAnother(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ws := workspace(t)
	expired := tokenConfig(t, ws, "old", 2*time.Second)
	_ = tokenConfig(t, ws, "fresh", 0)
	time.Sleep(3 * time.Second)
	// The holder of an expired token claims the valid one: the admission policy refuses it.
	c, err := client.New(expired, client.Options{Scheme: upstream.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	for _, labels := range []map[string]string{{v1alpha1.RegistrationTokenLabel: "fresh"}, nil} {
		cr := &v1alpha1.ClusterRegistration{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "reg-", Namespace: ws, Labels: labels},
			Spec:       v1alpha1.ClusterRegistrationSpec{ClientID: "sneaky", ClientRandom: "r"},
		}
		err = c.Create(ctx, cr)
		g.Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "labels %v: %v", labels, err)
		g.Expect(err.Error()).To(ContainSubstring(v1alpha1.RegistrationTokenLabel))
	}
}
