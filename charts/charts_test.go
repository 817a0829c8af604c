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
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	g.Expect(local.Spec.Template.Spec.Containers[0].Args).To(ContainElements("agent", "--upstream-in-cluster", "--cluster-name=local", "--workspace=fleet-local",
		"--upstream-kube-api-qps=50", "--upstream-kube-api-burst=100", "--downstream-kube-api-qps=100", "--downstream-kube-api-burst=200"))

	// The downstream agent chart needs a cluster name and renders the registration labels.
	err = install(t, cp, "helmops-agent", "agent-missing", "agent-a", nil)
	g.Expect(err).To(MatchError(ContainSubstring("clusterName is required")))
	g.Expect(install(t, cp, "helmops-agent", "agent", "cattle-helmops", map[string]any{
		"clusterName": "prod-1", "labels": map[string]any{"env": "prod", "region": "eu"},
		"kubeAPI": map[string]any{"downstream": map[string]any{"qps": 30, "burst": 60}},
	})).To(Succeed())
	agent := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "cattle-helmops", Name: "agent-helmops-agent"}, agent)).To(Succeed())
	args := strings.Join(agent.Spec.Template.Spec.Containers[0].Args, " ")
	g.Expect(args).To(ContainSubstring("--cluster-name=prod-1"))
	g.Expect(args).To(ContainSubstring("--labels=env=prod,region=eu"))
	g.Expect(args).To(ContainSubstring("--upstream-kube-api-qps=50 --upstream-kube-api-burst=100 --downstream-kube-api-qps=30 --downstream-kube-api-burst=60"))
	g.Expect(agent.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
}
