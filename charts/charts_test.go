// Package charts holds the Helm charts that install helmops on a real cluster; this test
// installs them with the Helm SDK (server-side apply) into a real API server, so every object
// they render is valid against Kubernetes.
package charts

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

func install(t *testing.T, cp *testenv.ControlPlane, dir, release, namespace string, values map[string]any) error {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return err
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(cp.KubeconfigPath)
	flags.Namespace = ptr.To(namespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		return err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = release
	in.Namespace = namespace
	in.CreateNamespace = true
	in.WaitStrategy = kube.HookOnlyStrategy
	_, err = in.RunWithContext(context.Background(), ch, values)
	return err
}

func TestChartsInstallOnARealAPIServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp, err := testenv.Start(ctx, testenv.Options{Name: "charts", NoControllerManager: true})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })
	c := cp.Client

	g.Expect(install(t, cp, "helmops", "helmops", "helmops-system", map[string]any{
		"controller": map[string]any{"shardID": "shard-a", "kubeAPI": map[string]any{"qps": 300}},
	})).To(Succeed())

	// CRDs come from crds/ and match config/crd/bases (make verify keeps them in sync).
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: "helmops.fleet.cattle.io"}, crd)).To(Succeed())

	dep := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "helmops-system", Name: "helmops-controller"}, dep)).To(Succeed())
	ctr := dep.Spec.Template.Spec.Containers[0]
	g.Expect(ctr.Args).To(ContainElements("controller", "--leader-elect=true", "--shard-id=shard-a",
		"--kube-api-qps=300", "--kube-api-burst=400"))
	g.Expect(ctr.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(ctr.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(ctr.Resources.Requests).To(HaveKey(corev1.ResourceCPU))
	g.Expect(*ctr.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(*ctr.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())

	svc := &corev1.Service{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "helmops-system", Name: "helmops-metrics"}, svc)).To(Succeed())

	// Least privilege: no wildcard verbs or resources in the controller's role.
	role := &rbacv1.ClusterRole{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: "helmops-controller"}, role)).To(Succeed())
	for _, r := range role.Rules {
		g.Expect(r.Verbs).NotTo(ContainElement("*"))
		g.Expect(r.Resources).NotTo(ContainElement("*"))
	}

	// The local agent is on by default.
	local := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "helmops-system", Name: "helmops-agent-local"}, local)).To(Succeed())
	// It uses the credential the controller writes, never the rights it installs charts with.
	g.Expect(ctr.Args).To(ContainElement("--local-agent-credential-secret=helmops-system/helmops-agent-local-credential"))
	g.Expect(local.Spec.Template.Spec.Containers[0].Args).To(ContainElements("agent", "--credential-secret=helmops-system/helmops-agent-local-credential",
		"--upstream-kube-api-qps=50", "--upstream-kube-api-burst=100", "--downstream-kube-api-qps=100", "--downstream-kube-api-burst=200"))

	// The downstream agent chart needs a cluster name or a registration token; it renders the
	// registration labels, and never asks to create a Cluster by default.
	err = install(t, cp, "helmops-agent", "agent-missing", "agent-a", nil)
	g.Expect(err).To(MatchError(ContainSubstring("clusterName is required")))
	g.Expect(install(t, cp, "helmops-agent", "agent", "cattle-helmops", map[string]any{
		"registration": map[string]any{"kubeconfigSecret": "token", "clientID": "prod-1"},
		"labels":       map[string]any{"env": "prod", "region": "eu"},
		"kubeAPI":      map[string]any{"downstream": map[string]any{"qps": 30, "burst": 60}},
	})).To(Succeed())
	agent := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "cattle-helmops", Name: "agent-helmops-agent"}, agent)).To(Succeed())
	args := strings.Join(agent.Spec.Template.Spec.Containers[0].Args, " ")
	g.Expect(args).To(ContainSubstring("--registration-kubeconfig=/etc/helmops/registration/kubeconfig --credential-secret=cattle-helmops/agent-helmops-agent-credential --client-id=prod-1"))
	g.Expect(args).To(ContainSubstring("--labels=env=prod,region=eu"))
	g.Expect(install(t, cp, "helmops-agent", "agent-named", "agent-b", map[string]any{"clusterName": "prod-2"})).To(Succeed())
	named := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "agent-b", Name: "agent-named-helmops-agent"}, named)).To(Succeed())
	namedArgs := strings.Join(named.Spec.Template.Spec.Containers[0].Args, " ")
	g.Expect(namedArgs).To(ContainSubstring("--cluster-name=prod-2"))
	g.Expect(namedArgs).NotTo(ContainSubstring("--register"))
	g.Expect(args).To(ContainSubstring("--upstream-kube-api-qps=50 --upstream-kube-api-burst=100 --downstream-kube-api-qps=30 --downstream-kube-api-burst=60"))
	g.Expect(agent.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
}

// TestTenantsCannotWritePolicies: under the chart's roles, a tenant of a workspace (bound to
// workspace-tenant) and a namespace administrator (Kubernetes' admin role) may write HelmOps or
// not, but never the Policy that restricts them; only workspace-admin may. The controller itself
// only reads Policies.
func TestTenantsCannotWritePolicies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp, err := testenv.Start(ctx, testenv.Options{Name: "charts-policy", NoControllerManager: true})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })
	c := cp.Client
	g.Expect(install(t, cp, "helmops", "helmops", "helmops-system", nil)).To(Succeed())

	ws := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fleet-team-a"}}
	g.Expect(c.Create(ctx, ws)).To(Succeed())
	for user, role := range map[string]string{"tenant": "helmops-workspace-tenant", "ns-admin": "admin", "ws-admin": "helmops-workspace-admin"} {
		g.Expect(c.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ws.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		})).To(Succeed())
	}
	as := func(user string) client.Client {
		cfg := rest.CopyConfig(cp.TestConfig)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		cl, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		g.Expect(err).NotTo(HaveOccurred())
		return cl
	}
	newPolicy := func(name string) *v1alpha1.Policy {
		return &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ws.Name},
			HelmOp: &v1alpha1.HelmOpPolicySpec{AllowedHelmRepoPatterns: []string{`https://charts\.example\.com/.*`}}}
	}

	admin := as("ws-admin")
	g.Expect(admin.Create(ctx, newPolicy("team-a"))).To(Succeed(), "workspace-admin writes Policies")

	for _, user := range []string{"tenant", "ns-admin"} {
		cl := as(user)
		err := cl.Create(ctx, newPolicy("mine"))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s creates a Policy: %v", user, err)
		pol := &v1alpha1.Policy{}
		if user == "tenant" {
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ws.Name, Name: "team-a"}, pol)).To(Succeed(), "tenants may read their Policy")
		} else {
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ws.Name, Name: "team-a"}, pol)).To(Succeed())
		}
		pol.HelmOp.AllowedHelmRepoPatterns = []string{".*"}
		err = cl.Update(ctx, pol)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s updates a Policy: %v", user, err)
		err = cl.Patch(ctx, pol, client.RawPatch(types.MergePatchType, []byte(`{"helmOp":{"allowedHelmRepoPatterns":[".*"]}}`)))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s patches a Policy: %v", user, err)
		err = cl.Delete(ctx, pol)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s deletes a Policy: %v", user, err)
		err = cl.DeleteAllOf(ctx, &v1alpha1.Policy{}, client.InNamespace(ws.Name))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s deletes every Policy: %v", user, err)
	}
	// The tenant deploys, within the Policy.
	op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ws.Name}}
	op.Spec.Helm = &v1alpha1.HelmOptions{Repo: "https://charts.example.com/team-a", Chart: "web"}
	g.Expect(as("tenant").Create(ctx, op)).To(Succeed())

	// The controller's own account reads Policies and writes none.
	sa := "system:serviceaccount:helmops-system:helmops-controller"
	for verb, want := range map[string]bool{"get": true, "list": true, "watch": true, "create": false, "update": false, "patch": false, "delete": false} {
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: sa,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: v1alpha1.GroupVersion.Group, Resource: "policies", Namespace: ws.Name}}}
		g.Expect(c.Create(ctx, r)).To(Succeed())
		g.Expect(r.Status.Allowed).To(Equal(want), "the controller may %s policies: %v", verb, r.Status.Allowed)
	}
}
