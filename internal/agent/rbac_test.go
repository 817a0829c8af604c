package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
	"github.com/helmops/helmops/internal/testenv"
)

// applyRBAC creates the objects of config/agent-rbac/upstream.yaml for one agent, keeping only
// those in namespace ns (the workspace part can be applied before the cluster namespace exists).
func applyRBAC(t *testing.T, g Gomega, name, clusterNS, onlyNS string) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(root, "config", "agent-rbac", "upstream.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	text := strings.NewReplacer("CLUSTER_NAMESPACE", clusterNS, "CLUSTER_NAME", name, "WORKSPACE", workspace).Replace(string(raw))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(text)), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		g.Expect(err).NotTo(HaveOccurred())
		if len(u.Object) == 0 || u.GetNamespace() != onlyNS {
			continue
		}
		g.Expect(upstream.Client.Create(context.Background(), u)).To(Succeed(), "%s %s", u.GetKind(), u.GetName())
	}
}

// TestAgentWorksWithTheShippedUpstreamRBAC runs an agent as the ServiceAccount of
// config/agent-rbac/upstream.yaml: registration, heartbeat, install (with a downstream resource
// copied), status and uninstall all work with exactly those rights.
func TestAgentWorksWithTheShippedUpstreamRBAC(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const name = "scoped"
	clusterNS := "cluster-" + workspace + "-" + name
	applyRBAC(t, g, name, clusterNS, workspace)

	cfg := rest.CopyConfig(upstream.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + workspace + ":helmops-agent-" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + workspace, "system:authenticated"},
	}
	// Sanity check: the identity cannot read BundleDeployments elsewhere.
	scoped, err := client.New(cfg, client.Options{Scheme: upstream.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(scoped.List(ctx, &v1alpha1.BundleDeploymentList{}, client.InNamespace(mainNS))).NotTo(Succeed())

	o := agentOptions(name, true)
	o.Upstream = cfg
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, o) }()
	t.Cleanup(func() { cancel(); <-done })

	cl := &v1alpha1.Cluster{}
	g.Eventually(func() error {
		return upstream.Client.Get(ctx, client.ObjectKey{Namespace: workspace, Name: name}, cl)
	}, timeout, interval).Should(Succeed())
	ns, err := standInClusterController(ctx, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ns).To(Equal(clusterNS))
	applyRBAC(t, g, name, clusterNS, clusterNS)

	g.Eventually(func(g Gomega) {
		lease := &coordinationv1.Lease{}
		g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: clusterNS, Name: clusterns.AgentLease}, lease)).To(Succeed())
		g.Expect(lease.Spec.RenewTime).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())

	// As a hostile agent: no write on any Cluster (its own included: spec, labels, status), and
	// no write on another cluster's heartbeat Lease.
	own := &v1alpha1.Cluster{}
	g.Expect(scoped.Get(ctx, client.ObjectKeyFromObject(cl), own)).To(Succeed())
	for _, patch := range []string{
		`{"metadata":{"labels":{"env":"prod"}}}`,
		`{"spec":{"paused":true}}`,
	} {
		err := scoped.Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "patch %s: %v", patch, err)
	}
	err = scoped.Status().Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"namespace":"`+mainNS+`"}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "status.namespace: %v", err)
	err = scoped.Status().Patch(ctx, own.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"agent":{"version":"x"}}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "status.agent: %v", err)
	other := &coordinationv1.Lease{}
	g.Expect(upstream.Client.Get(ctx, client.ObjectKey{Namespace: mainNS, Name: clusterns.AgentLease}, other)).To(Succeed())
	err = scoped.Update(ctx, other.DeepCopy())
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "another cluster's Lease: %v", err)
	err = scoped.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "fake", Namespace: clusterNS}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a new Lease: %v", err)

	g.Expect(repo.Publish("scoped", "0.1.0")).To(Succeed())
	bd := bundleDeployment(ns, "scoped", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "scoped", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "ConfigMap", Name: "settings"}}
	})
	g.Expect(upstream.Client.Create(ctx, bd)).To(Succeed())
	copyUpstream(g, bd, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "downstream-settings"}, Data: map[string]string{"a": "b"}}, "ConfigMap/settings")
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, bd))
		g.Expect(downstream.Client.Get(ctx, client.ObjectKey{Namespace: "scoped", Name: "settings"}, &corev1.ConfigMap{})).To(Succeed())
	}, timeout, interval).Should(Succeed())
	g.Expect(upstream.Client.Delete(ctx, bd)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(bd), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue(), "the agent removed its finalizer after uninstalling")
	hist, err := helm.History(ctx, "scoped", "scoped")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(BeEmpty())
}
