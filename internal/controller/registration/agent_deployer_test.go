package registration_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/registration"
	"github.com/helmops/helmops/internal/testutil"
)

func TestAClusterWithAKubeconfigGetsItsAgentAndLosesItOnDeletion(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := workspace(t)
	down := downstream[1]
	kubeconfig, err := os.ReadFile(down.KubeconfigPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(upstream.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: "prod-kubeconfig"},
		Data:       map[string][]byte{"value": kubeconfig},
	})).To(Succeed())
	c := &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: "prod"},
		Spec:       v1alpha1.ClusterSpec{KubeConfigSecret: "prod-kubeconfig"},
	}
	g.Expect(upstream.Client.Create(ctx, c)).To(Succeed())

	// The agent chart's objects appear downstream, with the agent's own credential.
	dep := &appsv1.Deployment{}
	g.Eventually(func() error {
		return down.Client.Get(ctx, client.ObjectKey{Namespace: registration.DefaultAgentNamespace, Name: registration.AgentReleaseName}, dep)
	}, timeout, interval).Should(Succeed())
	g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/helmops:test"))
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElements("--cluster-name=prod", "--workspace="+ws))
	cred := &corev1.Secret{}
	g.Expect(down.Client.Get(ctx, client.ObjectKey{Namespace: registration.DefaultAgentNamespace, Name: "helmops-upstream"}, cred)).To(Succeed())
	g.Eventually(func() *int64 {
		_ = upstream.Client.Get(ctx, client.ObjectKeyFromObject(c), c)
		return c.Status.AgentDeployedGeneration
	}, timeout, interval).ShouldNot(BeNil())

	g.Expect(cred.Data).To(And(HaveKeyWithValue(v1alpha1.CredentialClusterNameKey, []byte("prod")),
		HaveKeyWithValue(v1alpha1.CredentialWorkspaceKey, []byte(ws))))

	// No kubelet runs the Pod here: run the agent the chart would run, with that credential
	// (read as helmops agent --credential-secret does), and the Cluster becomes Ready from its
	// heartbeat.
	agentCtx, stopAgent := context.WithCancel(ctx)
	done := runAgent(agentCtx, down.Config, types.NamespacedName{Namespace: registration.DefaultAgentNamespace, Name: "helmops-upstream"})
	expectClusterReady(ctx, t, g, client.ObjectKeyFromObject(c), c, done)
	stopAgent()
	g.Eventually(done, timeout).Should(Receive())

	// Raising redeployAgentGeneration reinstalls it.
	g.Expect(testutil.Update(ctx, upstream.Client, c, func(c *v1alpha1.Cluster) { c.Spec.RedeployAgentGeneration = 1 })).To(Succeed())
	g.Eventually(func() int64 {
		_ = upstream.Client.Get(ctx, client.ObjectKeyFromObject(c), c)
		if c.Status.AgentDeployedGeneration == nil {
			return -1
		}
		return *c.Status.AgentDeployedGeneration
	}, timeout, interval).Should(Equal(int64(1)))

	// Deleting the Cluster removes the agent downstream.
	g.Expect(upstream.Client.Delete(ctx, c)).To(Succeed())
	g.Eventually(func() bool {
		err := down.Client.Get(ctx, client.ObjectKeyFromObject(dep), &appsv1.Deployment{})
		return apierrors.IsNotFound(err)
	}, timeout, interval).Should(BeTrue())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(c), c))
	}, 2*timeout, interval).Should(BeTrue())
}

func TestAKubeconfigOfAnotherNamespaceIsNotRead(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	victim := workspace(t)
	kubeconfig, err := os.ReadFile(downstream[0].KubeconfigPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(upstream.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "their-kubeconfig"},
		Data:       map[string][]byte{"value": kubeconfig},
	})).To(Succeed())
	ws := victim + "-x"
	g.Expect(upstream.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ws}})).To(Succeed())
	c := &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ws, Name: "stolen"},
		Spec:       v1alpha1.ClusterSpec{KubeConfigSecret: "their-kubeconfig", KubeConfigSecretNamespace: victim},
	}
	g.Expect(upstream.Client.Create(ctx, c)).To(Succeed())
	g.Eventually(func() []string {
		evs := &corev1.EventList{}
		_ = upstream.Client.List(ctx, evs, client.InNamespace(ws))
		var msgs []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "stolen" {
				msgs = append(msgs, e.Message)
			}
		}
		return msgs
	}, timeout, interval).Should(ContainElement(ContainSubstring("spec.kubeConfigSecretNamespace")))
	g.Consistently(func() bool {
		err := downstream[0].Client.Get(ctx, client.ObjectKey{Namespace: registration.DefaultAgentNamespace, Name: registration.AgentReleaseName}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err)
	}, 3*time.Second, interval).Should(BeTrue())
}
