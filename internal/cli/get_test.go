package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

func runCLI(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := NewRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestGetShowsHelmOpsAndTheirDeployments(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp, err := testenv.Start(ctx, testenv.Options{Name: "cli-get", NoControllerManager: true})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })
	c := cp.Client

	for _, ns := range []string{"fleet-default", "cluster-fleet-default-dev-1a2b3c", "cluster-fleet-default-prod-4d5e6f"} {
		g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	op := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "fleet-default"},
		Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{Repo: "https://charts.example/", Chart: "nginx", Version: "1.x"},
		}},
	}
	g.Expect(c.Create(ctx, op)).To(Succeed())
	op.Status.Version = "1.4.2"
	op.Status.LatestAvailableVersion = "2.0.1"
	op.Status.ReadyClusters, op.Status.DesiredReadyClusters = 1, 2
	op.Status.LastPollingTime = &metav1.Time{Time: time.Now().Add(-90 * time.Second)}
	op.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.AcceptedCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSucceeded, LastTransitionTime: metav1.Now()},
		{Type: v1alpha1.NewerVersionAvailableCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonOutsideConstraint, Message: "2.0.1 is available; the constraint 1.x keeps 1.4.2", LastTransitionTime: metav1.Now()},
		{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonClustersNotReady, Message: "not ready on 1 of 2 clusters: prod", LastTransitionTime: metav1.Now()},
	}
	g.Expect(c.Status().Update(ctx, op)).To(Succeed())

	bundle := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "fleet-default"},
		Spec: v1alpha1.BundleSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{Helm: &v1alpha1.HelmOptions{Repo: "https://charts.example/", Chart: "nginx", Version: "1.4.2"}}}}
	g.Expect(c.Create(ctx, bundle)).To(Succeed())
	for _, cl := range []struct {
		name, ns string
		ready    bool
	}{{"dev", "cluster-fleet-default-dev-1a2b3c", true}, {"prod", "cluster-fleet-default-prod-4d5e6f", false}} {
		bd := &v1alpha1.BundleDeployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: cl.ns, Labels: map[string]string{
			v1alpha1.BundleNameLabel: "web", v1alpha1.BundleNamespaceLabel: "fleet-default", v1alpha1.ClusterLabel: cl.name,
		}}, Spec: v1alpha1.BundleDeploymentSpec{DeploymentID: "id-1"}}
		g.Expect(c.Create(ctx, bd)).To(Succeed())
		bd.Status.AppliedDeploymentID = "id-1"
		bd.Status.Ready = cl.ready
		bd.Status.Release = &v1alpha1.ReleaseInfo{Name: "web", Namespace: "default", Revision: 3, ChartVersion: "1.4.2", Status: "deployed"}
		// As the agent reports a deployed release.
		bd.Status.Conditions = []metav1.Condition{{Type: v1alpha1.DeployedCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSucceeded, LastTransitionTime: metav1.Now()}}
		if !cl.ready {
			bd.Status.Conditions = append(bd.Status.Conditions, metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ResourcesNotReady", Message: "Deployment default/web: 0/1 replicas", LastTransitionTime: metav1.Now()})
		}
		g.Expect(c.Status().Update(ctx, bd)).To(Succeed())
	}

	out, err := runCLI("get", "helmops", "--kubeconfig", cp.KubeconfigPath, "-n", "fleet-default")
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(lines).To(HaveLen(2))
	g.Expect(lines[0]).To(MatchRegexp(`^NAME\s+CHART\s+VERSION\s+NEWER\s+CLUSTERS READY\s+LAST POLL\s+STATUS$`))
	g.Expect(lines[1]).To(MatchRegexp(`^web\s+https://charts.example/nginx\s+1\.x → 1\.4\.2\s+2\.0\.1\s+1/2\s+1m ago\s+ClustersNotReady: not ready on 1 of 2 clusters: prod$`))

	out, err = runCLI("get", "helmops", "--kubeconfig", cp.KubeconfigPath, "-A")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(MatchRegexp(`(?m)^NAMESPACE\s+NAME`))
	g.Expect(out).To(MatchRegexp(`(?m)^fleet-default\s+web\s+`))

	out, err = runCLI("get", "helmop", "web", "--kubeconfig", cp.KubeconfigPath, "-n", "fleet-default")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring("HelmOp fleet-default/web"))
	g.Expect(out).To(ContainSubstring("Bundle fleet-default/web  version 1.4.2"))
	g.Expect(out).To(MatchRegexp(`├── cluster dev  release default/web rev 3 chart 1\.4\.2 deployed  Ready`))
	g.Expect(out).To(MatchRegexp(`└── cluster prod  release default/web rev 3 chart 1\.4\.2 deployed  NotReady \(Ready: Deployment default/web: 0/1 replicas\)`))

	out, err = runCLI("get", "helmop", "web", "--kubeconfig", cp.KubeconfigPath, "-n", "fleet-default", "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var list struct {
		Items []map[string]any `json:"items"`
	}
	g.Expect(json.Unmarshal([]byte(out), &list)).To(Succeed())
	g.Expect(list.Items).To(HaveLen(4))
	g.Expect(list.Items[0]).To(HaveKeyWithValue("kind", "HelmOp"))

	out, err = runCLI("get", "helmops", "--kubeconfig", cp.KubeconfigPath, "-n", "fleet-default", "-o", "yaml")
	g.Expect(err).NotTo(HaveOccurred())
	parsed := map[string]any{}
	g.Expect(yaml.Unmarshal([]byte(out), &parsed)).To(Succeed())
	g.Expect(parsed["items"]).To(HaveLen(1))

	_, err = runCLI("get", "helmop", "missing", "--kubeconfig", cp.KubeconfigPath, "-n", "fleet-default")
	g.Expect(err).To(MatchError(ContainSubstring("getting HelmOp fleet-default/missing")))
}
