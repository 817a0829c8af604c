package registration_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/controller/cluster"
)

// TestTheLocalAgentGetsItsOwnScopedCredential runs the local cluster's agent as the helmops
// chart does: started before anything exists, with --credential-secret and the management
// cluster as its downstream. The controller grants Cluster local its account and writes the
// credential; the agent picks it up, the Cluster gets Ready, and the credential has only the
// agent's rights.
func TestTheLocalAgentGetsItsOwnScopedCredential(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{
			Downstream:        upstream.Config,
			Registration:      &agent.Registration{CredentialSecret: types.NamespacedName(localCredential)},
			HeartbeatInterval: time.Second, MetricsBindAddress: "0", Controller: config.Controller{SkipNameValidation: ptr.To(true)},
			Fetcher: agent.ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{})},
		})
	}()
	g.Expect(cluster.Bootstrap(ctx, upstream.Client)).To(Succeed())

	local := &v1alpha1.Cluster{}
	key := client.ObjectKey{Namespace: cluster.LocalWorkspace, Name: cluster.LocalCluster}
	g.Eventually(func() metav1.ConditionStatus {
		select {
		case err := <-done:
			t.Fatalf("the local agent stopped: %v", err)
		default:
		}
		_ = upstream.Client.Get(ctx, key, local)
		if c := meta.FindStatusCondition(local.Status.Conditions, v1alpha1.ReadyCondition); c != nil {
			return c.Status
		}
		return ""
	}, timeout, interval).Should(Equal(metav1.ConditionTrue))

	s := &corev1.Secret{}
	g.Expect(upstream.Client.Get(ctx, localCredential, s)).To(Succeed())
	g.Expect(s.Data).To(HaveKeyWithValue(v1alpha1.CredentialClusterNameKey, []byte(cluster.LocalCluster)))
	cred, err := agent.Register(ctx, upstream.Client, agent.Registration{CredentialSecret: types.NamespacedName(localCredential)})
	g.Expect(err).NotTo(HaveOccurred())
	review, err := kubernetes.NewForConfigOrDie(cred.Upstream).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(review.Status.UserInfo.Username).To(Equal("system:serviceaccount:fleet-local:" + cluster.AgentServiceAccount(cluster.LocalCluster)))

	own := local.Status.Namespace
	group := v1alpha1.GroupVersion.Group
	g.Expect(can(t, cred, "list", group, "bundledeployments", own, "")).To(BeTrue())
	g.Expect(can(t, cred, "update", "coordination.k8s.io", "leases", own, "helmops-agent")).To(BeTrue())
	g.Expect(can(t, cred, "list", group, "bundledeployments", "default", "")).To(BeFalse())
	g.Expect(can(t, cred, "get", "", "secrets", cluster.LocalWorkspace, "")).To(BeFalse())
	g.Expect(can(t, cred, "get", "", "secrets", localCredential.Namespace, localCredential.Name)).To(BeFalse(), "not even its own credential: the agent reads it with its downstream rights")
	g.Expect(can(t, cred, "create", group, "clusters", cluster.LocalWorkspace, "")).To(BeFalse())
	g.Expect(can(t, cred, "patch", group, "clusters/status", cluster.LocalWorkspace, cluster.LocalCluster)).To(BeFalse())

}
