package charts

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent"
	"github.com/helmops/helmops/internal/testenv"
)

// saKubeconfig mints a token for a ServiceAccount and writes a kubeconfig that uses it, as the
// Pod of a Deployment with that serviceAccountName would authenticate.
func saKubeconfig(t *testing.T, cp *testenv.ControlPlane, ns, name, dir string) string {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(cp.TestConfig)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.Config.CAData}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptrTo[T any](v T) *T { return &v }

// deploymentArgs are the arguments the chart gives a Deployment's container, rewritten for a
// process on this machine: listen addresses the test picks, no in-cluster configuration.
func deploymentArgs(t *testing.T, c client.Client, name string, rewrite func(arg string) []string) []string {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "helmops-system", Name: name}, dep); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		out = append(out, rewrite(a)...)
	}
	return out
}

// syncBuffer is a log both the process and the test touch.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcess(t *testing.T, bin string, args []string, env ...string) *syncBuffer {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s log:\n%s", filepath.Base(bin), args[0], tailOf(log.String(), 6000))
		}
	})
	return log
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTheChainWorksUnderTheChartsRBAC installs the helmops chart with the Helm SDK, then runs the
// helmops binary as its controller and its local agent with tokens of the ServiceAccounts the
// chart made (so with exactly the rights the chart grants) and the arguments its Deployments
// carry. A HelmOp with a private repository, a Policy and a credentials secret goes HelmOp →
// Bundle → BundleDeployment → release Ready, and deleting it uninstalls the release; a
// registration token onboards another agent; neither process is ever refused a request.
func TestTheChainWorksUnderTheChartsRBAC(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	cp, err := testenv.Start(ctx, testenv.Options{Name: "charts-rbac"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })
	c := cp.Client
	bin, err := testenv.BuildHelmops(dir)
	g.Expect(err).NotTo(HaveOccurred())
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{Username: "user", Password: "s3cret-pass"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(repo.Stop)
	g.Expect(repo.Publish("hello", "0.1.0")).To(Succeed())

	// The repository listens on loopback: the chart's own network value allows it.
	g.Expect(install(t, cp, "helmops", "helmops", "helmops-system", map[string]any{
		"network": map[string]any{"allowLoopback": true},
	})).To(Succeed())
	// The webhook token the chart expects and does not create.
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helmops-webhook", Namespace: "helmops-system"},
		StringData: map[string]string{"token": "0123456789abcdef0123"}})).To(Succeed())

	controllerKC := saKubeconfig(t, cp, "helmops-system", "helmops-controller", dir)
	agentKC := saKubeconfig(t, cp, "helmops-system", "helmops-agent-local", dir)
	webhook := freeAddr(t)
	controllerArgs := deploymentArgs(t, c, "helmops-controller", func(a string) []string {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="), strings.HasPrefix(a, "--health-probe-bind-address="):
			return []string{a[:strings.Index(a, "=")+1] + "0"}
		case strings.HasPrefix(a, "--webhook-bind-address="):
			return []string{"--webhook-bind-address=" + webhook}
		}
		return []string{a}
	})
	g.Expect(controllerArgs).To(ContainElements("controller", "--leader-elect=true", "--allow-loopback=true"))
	controllerLog := startProcess(t, bin, append(controllerArgs, "--kubeconfig="+controllerKC), "POD_NAMESPACE=helmops-system")

	agentArgs := deploymentArgs(t, c, "helmops-agent-local", func(a string) []string {
		switch {
		case a == "agent":
			// In a Pod the downstream is the in-cluster configuration of this ServiceAccount.
			return []string{a, "--kubeconfig=" + agentKC}
		case strings.HasPrefix(a, "--chart-cache-dir="):
			return []string{"--chart-cache-dir=" + filepath.Join(dir, "charts")}
		}
		return []string{a}
	})
	g.Expect(agentArgs).To(ContainElements("agent", "--credential-secret=helmops-system/helmops-agent-local-credential"))
	agentLog := startProcess(t, bin, append(agentArgs, "--metrics-bind-address=0"))

	// The controller's bootstrap makes the workspace; a workspace administrator adds a Policy
	// and the credentials.
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Name: "default", Namespace: "fleet-local"}, &v1alpha1.ClusterGroup{})
	}, time.Minute, 200*time.Millisecond).Should(Succeed())
	g.Expect(c.Create(ctx, &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "fleet-local"},
		HelmOp: &v1alpha1.HelmOpPolicySpec{AllowedHelmRepoPatterns: []string{`http://127\.0\.0\.1:[0-9]+`}, AllowedHelmSecretNames: []string{"creds"}}})).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "fleet-local"},
		StringData: map[string]string{"username": "user", "password": "s3cret-pass"}})).To(Succeed())

	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "fleet-local"}}
	op.Spec.Helm = &v1alpha1.HelmOptions{Repo: repo.URL, Chart: "hello", Version: "0.1.x"}
	op.Spec.Namespace = "hello"
	op.Spec.HelmSecretName = "creds"
	g.Expect(c.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(op), op)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(op.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "%v", op.Status.Conditions)
		g.Expect(op.Status.ReadyClusters).To(Equal(1))
		cm := &corev1.ConfigMap{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "hello", Name: "hello-config"}, cm)).To(Succeed())
		g.Expect(cm.Data).To(HaveKeyWithValue("chartVersion", "0.1.0"))
		cl := &v1alpha1.Cluster{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "fleet-local", Name: "local"}, cl)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "the agent's heartbeat reaches the Cluster: %v", cl.Status.Conditions)
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Expect(repo.AuthorizedRequests("/index.yaml")).To(BeNumerically(">=", 1))

	g.Expect(c.Delete(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := c.Get(ctx, client.ObjectKey{Namespace: "hello", Name: "hello-config"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the release is uninstalled: %v", err)
		err = c.Get(ctx, client.ObjectKeyFromObject(op), &v1alpha1.HelmOp{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the HelmOp is gone: %v", err)
		list := &v1alpha1.BundleList{}
		g.Expect(c.List(ctx, list, client.InNamespace("fleet-local"))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}, time.Minute, 250*time.Millisecond).Should(Succeed())

	// Onboarding through a registration token works too: the controller makes the token's
	// account, Role and kubeconfig, and grants a registering agent its own scoped credential.
	tok := &v1alpha1.ClusterRegistrationToken{ObjectMeta: metav1.ObjectMeta{Name: "onboarding", Namespace: "fleet-local"}}
	g.Expect(c.Create(ctx, tok)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(tok.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "%v", tok.Status.Conditions)
		g.Expect(tok.Status.SecretName).NotTo(BeEmpty())
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	secret := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "fleet-local", Name: tok.Status.SecretName}, secret)).To(Succeed())
	tokenCfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data["kubeconfig"])
	g.Expect(err).NotTo(HaveOccurred())
	regCtx, cancelReg := context.WithTimeout(ctx, time.Minute)
	defer cancelReg()
	cred, err := agent.Register(regCtx, c, agent.Registration{Token: tokenCfg, ClientID: "rbac-test-downstream",
		CredentialSecret: types.NamespacedName{Namespace: "helmops-system", Name: "registered-credential"}})
	g.Expect(err).NotTo(HaveOccurred())
	registered, err := client.New(cred.Upstream, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(registered.Get(ctx, client.ObjectKey{Namespace: cred.Workspace, Name: cred.ClusterName}, &v1alpha1.Cluster{})).To(Succeed())

	for name, log := range map[string]*syncBuffer{"controller": controllerLog, "agent": agentLog} {
		g.Expect(strings.ToLower(log.String())).NotTo(ContainSubstring("forbidden"), "%s was refused a request:\n%s", name, tailOf(log.String(), 6000))
	}
}
