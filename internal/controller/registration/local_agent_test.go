package registration_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent"
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
	done := runAgent(ctx, upstream.Config, types.NamespacedName(localCredential))
	g.Expect(cluster.Bootstrap(ctx, upstream.Client)).To(Succeed())

	local := &v1alpha1.Cluster{}
	expectClusterReady(ctx, t, g, client.ObjectKey{Namespace: cluster.LocalWorkspace, Name: cluster.LocalCluster}, local, done)

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
