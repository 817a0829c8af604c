package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/devenv"
	"github.com/helmops/helmops/internal/scheme"
)

// descendants lists the control-plane and helmops processes below pid, by pid, with their names.
// Other test packages start the same programs at the same time, so only the process tree of the
// `helmops dev` under test counts.
func descendants(pid int) map[string]string {
	parent := map[string]string{}
	name := map[string]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 {
			continue
		}
		parent[e.Name()], name[e.Name()] = fields[1], s[open+1:closing]
	}
	out := map[string]string{}
	root := strconv.Itoa(pid)
	for p := range parent {
		for q := p; q != "" && q != "1" && q != "0"; q = parent[q] {
			if parent[q] == root {
				switch name[p] {
				case "kube-apiserver", "etcd", "kube-controller", "kube-scheduler", "kwok", "helmops":
					out[p] = name[p]
				}
				break
			}
		}
	}
	return out
}

// running keeps the processes of procs that still run under the same name.
func running(procs map[string]string) []string {
	var left []string
	for pid, name := range procs {
		comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			left = append(left, pid+" "+name)
		}
	}
	return left
}

// kubeClient is a client of the cluster a kubeconfig file (or kubeconfig bytes) reaches.
func kubeClient(g Gomega, kubeconfig []byte) client.Client {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// whoIs is the user an agent credential (a kubeconfig) authenticates as.
func whoIs(g Gomega, kubeconfig []byte) string {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return r.Status.UserInfo.Username
}

// expectOnboardedBothWays checks how `helmops dev` onboarded its clusters: dev's agent registered
// with the registration token, prod's was installed by the controller through the Cluster's
// spec.kubeConfigSecret, both Clusters are Ready, and each agent (the local one too) reaches the
// management cluster with its own scoped ServiceAccount, not an administrator's credential.
func expectOnboardedBothWays(t *testing.T, dir string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "kubeconfigs", name+".yaml"))
		g.Expect(err).NotTo(HaveOccurred())
		return b
	}
	mgmt, dev, prod := kubeClient(g, read("management")), kubeClient(g, read("dev")), kubeClient(g, read("prod"))

	regs := &v1alpha1.ClusterRegistrationList{}
	g.Expect(mgmt.List(ctx, regs, client.InNamespace("fleet-default"))).To(Succeed())
	var granted []string
	for _, r := range regs.Items {
		g.Expect(r.Labels).To(HaveKeyWithValue(v1alpha1.RegistrationTokenLabel, devenv.TokenName))
		if r.Status.Granted {
			granted = append(granted, r.Status.ClusterName)
		}
	}
	g.Expect(granted).To(ContainElement("dev"), "dev registers through token %s", devenv.TokenName)
	g.Expect(granted).To(HaveEach("dev"), "only dev registers")

	for name, check := range map[string]func(*v1alpha1.Cluster){
		"dev": func(c *v1alpha1.Cluster) {
			g.Expect(c.Spec.ClientID).To(Equal("dev"))
			g.Expect(c.Spec.KubeConfigSecret).To(BeEmpty())
		},
		"prod": func(c *v1alpha1.Cluster) {
			g.Expect(c.Spec.KubeConfigSecret).To(Equal(devenv.KubeconfigSecretName("prod")))
			g.Expect(c.Status.AgentDeployedGeneration).NotTo(BeNil(), "the controller recorded the agent it installed")
		},
	} {
		c := &v1alpha1.Cluster{}
		g.Expect(mgmt.Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: name}, c)).To(Succeed())
		check(c)
		g.Expect(meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ReadyCondition)).To(BeTrue(), "Cluster %s Ready: %v", name, c.Status.Conditions)
	}
	// The chart the controller installed in prod.
	g.Expect(prod.Get(ctx, client.ObjectKey{Namespace: devenv.AgentNamespace, Name: "helmops-agent"}, &appsv1.Deployment{})).To(Succeed())

	for _, cred := range []struct {
		c       client.Client
		key     client.ObjectKey
		account string
	}{
		{dev, client.ObjectKey{Namespace: devenv.AgentNamespace, Name: "helmops-agent-credential"}, "fleet-default:helmops-agent-dev"},
		{prod, client.ObjectKey{Namespace: devenv.AgentNamespace, Name: "helmops-upstream"}, "fleet-default:helmops-agent-prod"},
		{mgmt, client.ObjectKey{Namespace: devenv.AgentNamespace, Name: "helmops-agent-local-credential"}, "fleet-local:helmops-agent-local"},
	} {
		s := &corev1.Secret{}
		g.Expect(cred.c.Get(ctx, cred.key, s)).To(Succeed())
		g.Expect(whoIs(g, s.Data[v1alpha1.RegistrationKubeconfigKey])).To(Equal("system:serviceaccount:"+cred.account), "credential %s", cred.key)
	}
}

// TestDevRunsTheExamplesAndCtrlCStopsEverything runs `helmops dev` as a user does (its default
// addresses, which the examples use), waits until every example HelmOp is deployed (Deployments,
// CRDs and a hook Job among them), checks each downstream cluster was onboarded its way (a
// registration token, a kubeconfig secret), publishes a version, then a failing one, presses
// Ctrl-C and checks that nothing it started is left running.
func TestDevRunsTheExamplesAndCtrlCStopsEverything(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	cmd := exec.Command(helmopsBinary, "dev", "--dir", dir)
	stdout, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var transcript strings.Builder
	// waitLines waits until, for each entry of want, a line holding all its parts was printed, in
	// any order.
	waitLines := func(want ...[]string) {
		t.Helper()
		deadline := time.After(4 * time.Minute)
		for len(want) > 0 {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helmops dev ended before %q:\n%s", want, transcript.String())
				}
				transcript.WriteString(l + "\n")
				want = slices.DeleteFunc(want, func(parts []string) bool {
					return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) })
				})
			case <-deadline:
				t.Fatalf("no %q within 4 minutes:\n%s", want, transcript.String())
			}
		}
	}
	wait := func(what string) { t.Helper(); waitLines([]string{what}) }
	wait("All example HelmOps deployed")
	t.Logf("helmops dev: start to all examples deployed in %.1fs", time.Since(start).Seconds())
	for _, name := range []string{"management", "dev", "prod"} {
		g.Expect(filepath.Join(dir, "kubeconfigs", name+".yaml")).To(BeAnExistingFile())
	}
	expectOnboardedBothWays(t, dir)

	// A published version reaches the running environment and polling rolls it out.
	out, err := exec.Command(helmopsBinary, "dev", "publish", "hello", "0.4.0", "--dir", dir).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("Published hello 0.4.0"))
	wait("0.x → 0.4.0")

	// A version of the Deployment chart whose Pods crash-loop: both clusters say NotReady and why.
	out, err = exec.Command(helmopsBinary, "dev", "publish", "web", "1.2.0", "--failing", "--dir", dir).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	waitLines([]string{"fleet-default/web on dev: NotReady", "Deployment web/web", "CrashLoopBackOff"},
		[]string{"fleet-default/web on prod: NotReady", "Deployment web/web", "CrashLoopBackOff"})

	started := descendants(cmd.Process.Pid)
	g.Expect(started).NotTo(BeEmpty(), "helmops dev runs its control planes as child processes")
	g.Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
	exited := make(chan error, 1)
	go func() {
		for l := range lines {
			transcript.WriteString(l + "\n")
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		g.Expect(err).NotTo(HaveOccurred(), transcript.String())
	case <-time.After(time.Minute):
		t.Fatal("helmops dev did not stop within a minute of Ctrl-C")
	}
	g.Expect(transcript.String()).To(ContainSubstring("nothing is left running"))
	g.Eventually(func() []string { return running(started) }, 20*time.Second, 200*time.Millisecond).
		Should(BeEmpty(), "processes left running after Ctrl-C")
	g.Expect(filepath.Join(dir, "state.json")).NotTo(BeAnExistingFile())
}
