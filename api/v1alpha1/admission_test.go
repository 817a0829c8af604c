package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

var cp *testenv.ControlPlane

func TestMain(m *testing.M) {
	var err error
	cp, err = testenv.Start(context.Background(), testenv.Options{Name: "api", NoControllerManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = cp.Stop()
	os.Exit(code)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-"}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// The spec's HelmOp, byte for byte, applies unchanged and reads back with every field intact.
func TestSpecExampleIsAcceptedAndReadsBack(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/spec-helmop.yaml")
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fleet-local"}})).To(Succeed())
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal(raw, &u.Object)).To(Succeed())
	g.Expect(cp.Client.Create(ctx, u)).To(Succeed())

	got := &v1alpha1.HelmOp{}
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: "fleet-local", Name: "my-awesome-helmop"}, got)).To(Succeed())
	g.Expect(got.Spec.Helm).To(Equal(&v1alpha1.HelmOptions{
		ReleaseName: "my-fantastic-chart",
		Repo:        "https://foo.bar/baz",
		Chart:       "fantastic-chart",
	}))
	g.Expect(got.Spec.Namespace).To(Equal("that-amazing-namespace"))
	g.Expect(got.Spec.HelmSecretName).To(Equal("my-top-secret-helm-access"))
	g.Expect(got.Spec.InsecureSkipTLSVerify).To(BeFalse())

	// Every field the user wrote is still there when read back unstructured.
	back := &unstructured.Unstructured{}
	back.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("HelmOp"))
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: "fleet-local", Name: "my-awesome-helmop"}, back)).To(Succeed())
	for _, path := range [][]string{
		{"spec", "helm", "releaseName"}, {"spec", "helm", "repo"}, {"spec", "helm", "chart"}, {"spec", "helm", "version"},
		{"spec", "namespace"}, {"spec", "helmSecretName"}, {"spec", "insecureSkipTLSVerify"},
	} {
		want, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
		have, found, _ := unstructured.NestedFieldNoCopy(back.Object, path...)
		g.Expect(found).To(BeTrue(), strings.Join(path, "."))
		g.Expect(have).To(Equal(want), strings.Join(path, "."))
	}
}

func TestPollingIntervalValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	cases := []struct {
		value string
		ok    bool
	}{
		{"0", true}, {"10s", true}, {"1m", true}, {"1h30m", true}, {"1.5h", true}, {"250ms", true},
		{"2562047h", true},
		{"1d", false}, {"abc", false}, {"-1s", false}, {"10", false}, {"", false}, {"2562048h", false},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			g := NewWithT(t)
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "fleet.cattle.io/v1alpha1",
				"kind":       "HelmOp",
				"metadata":   map[string]any{"name": fmt.Sprintf("poll-%d", i), "namespace": ns},
				"spec": map[string]any{
					"helm":            map[string]any{"repo": "https://charts.example", "chart": "alpine", "version": "0.x"},
					"pollingInterval": tc.value,
				},
			}}
			err := cp.Client.Create(ctx, u)
			if tc.ok {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			g.Expect(err.Error()).To(ContainSubstring("spec.pollingInterval"))
			if tc.value != "2562048h" { // past the range, CEL's duration() itself reports the overflow
				g.Expect(err.Error()).To(ContainSubstring("such as 30s, 5m, 1h30m or 1.5h"))
			}
		})
	}
}

func TestReleaseNameValidation(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	op := func(name, release string) *v1alpha1.HelmOp {
		return &v1alpha1.HelmOp{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
				Helm: &v1alpha1.HelmOptions{Repo: "https://charts.example", Chart: "alpine", ReleaseName: release},
			}},
		}
	}
	g.Expect(cp.Client.Create(ctx, op("ok", strings.Repeat("a", 53)))).To(Succeed())
	err := cp.Client.Create(ctx, op("too-long", strings.Repeat("a", 54)))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("spec.helm.releaseName"))
	err = cp.Client.Create(ctx, op("bad-chars", "Not_A_Label"))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("spec.helm.releaseName"))
}

func TestKubectlGetHelmOpsShowsPrinterColumns(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	op := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: "columns", Namespace: ns},
		Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{Repo: "https://charts.example/stable", Chart: "alpine", Version: "0.x"},
		}},
	}
	g.Expect(cp.Client.Create(ctx, op)).To(Succeed())
	op.Status.Version = "0.2.0"
	op.Status.Display.ReadyBundleDeployments = "2/3"
	op.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ClustersNotReady",
		Message: "not ready on cluster prod-1", LastTransitionTime: metav1.Now()}}
	g.Expect(cp.Client.Status().Update(ctx, op)).To(Succeed())

	out, err := cp.Kubectl(ctx, "get", "helmops", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(lines).To(HaveLen(2))
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "REPO", "CHART", "VERSION", "BUNDLEDEPLOYMENTS-READY", "STATUS", "AGE"}))
	g.Expect(lines[1]).To(MatchRegexp(`^columns\s+https://charts.example/stable\s+alpine\s+0\.2\.0\s+2/3\s+not ready on cluster prod-1\s+\S+$`))

	// The fleet category lists helmops with the other kinds.
	out, err = cp.Kubectl(ctx, "get", "fleet", "-n", ns, "-o", "name")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring("helmop.fleet.cattle.io/columns"))
}

// Every kind round-trips through the API server without losing fields, including free-form values.
func TestKindsRoundTrip(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	values := &v1alpha1.GenericMap{Data: map[string]any{"replicas": int64(2), "image": map[string]any{"tag": "1.0", "pullPolicy": "Always"}, "list": []any{"a", true}}}
	options := v1alpha1.BundleDeploymentOptions{
		DefaultNamespace: "apps",
		Namespace:        "team-a",
		ServiceAccount:   "deployer",
		CreateNamespace:  ptr.To(false),
		KeepResources:    true,
		DeleteNamespace:  true,
		CorrectDrift:     &v1alpha1.CorrectDrift{Enabled: true, Force: true, KeepFailHistory: true},
		Helm: &v1alpha1.HelmOptions{
			Repo: "https://charts.example", Chart: "alpine", Version: "0.2.0", ReleaseName: "alpine",
			Values:         values,
			ValuesFrom:     []v1alpha1.ValuesFrom{{ConfigMapKeyRef: &v1alpha1.ConfigMapKeySelector{Name: "cm", Namespace: "n", Key: "k"}}, {SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "s", Key: "values.yaml"}}},
			TimeoutSeconds: 60, Force: true, TakeOwnership: true, MaxHistory: 3, WaitForJobs: true, Atomic: true,
			SkipSchemaValidation: true, DisableDependencyUpdate: true,
		},
	}
	targets := []v1alpha1.BundleTarget{
		{Name: "prod", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Namespace: "prod-ns",
			Helm: &v1alpha1.HelmOptions{Values: &v1alpha1.GenericMap{Data: map[string]any{"replicas": int64(5)}}}},
		{ClusterGroup: "default", ClusterGroupSelector: &metav1.LabelSelector{}, ClusterName: "local", DoNotDeploy: true, DefaultNamespace: "d"},
	}
	objects := []struct {
		obj   client.Object
		empty func() client.Object
	}{
		{&v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: ns}, Spec: v1alpha1.HelmOpSpec{
			BundleDeploymentOptions: options, Paused: true, Targets: targets, Labels: map[string]string{"team": "a"},
			TargetCustomizationMode: v1alpha1.FirstMatch, // the default the API server writes
			PollingInterval:         &metav1.Duration{Duration: 90 * time.Second}, HelmSecretName: "creds", InsecureSkipTLSVerify: true,
		}}, func() client.Object { return &v1alpha1.HelmOp{} }},
		{&v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: ns}, Spec: v1alpha1.BundleSpec{
			BundleDeploymentOptions: options, Targets: targets, TargetCustomizationMode: v1alpha1.FirstMatch,
			HelmOpOptions: &v1alpha1.BundleHelmOptions{SecretName: "creds", InsecureSkipTLSVerify: true, CABundle: []byte("pem")},
		}}, func() client.Object { return &v1alpha1.Bundle{} }},
		{&v1alpha1.BundleDeployment{ObjectMeta: metav1.ObjectMeta{Name: "bd", Namespace: ns}, Spec: v1alpha1.BundleDeploymentSpec{
			DeploymentID: "s-abc:123", Options: options, HelmChartOptions: &v1alpha1.BundleHelmOptions{SecretName: "creds"},
		}}, func() client.Object { return &v1alpha1.BundleDeployment{} }},
		{&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: ns, Labels: map[string]string{"env": "dev"}},
			Spec: v1alpha1.ClusterSpec{Paused: true}}, func() client.Object { return &v1alpha1.Cluster{} }},
		{&v1alpha1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: ns}, Spec: v1alpha1.ClusterGroupSpec{
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"dev", "prod"}}}},
		}}, func() client.Object { return &v1alpha1.ClusterGroup{} }},
	}
	for _, o := range objects {
		t.Run(fmt.Sprintf("%T", o.obj), func(t *testing.T) {
			g := NewWithT(t)
			want := o.obj.DeepCopyObject().(client.Object)
			g.Expect(cp.Client.Create(ctx, o.obj)).To(Succeed())
			got := o.empty()
			g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(o.obj), got)).To(Succeed())
			g.Expect(specOf(t, got)).To(MatchJSON(specOf(t, want)))
		})
	}
}

func specOf(t *testing.T, obj client.Object) string {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(mustYAML(t, m["spec"]))
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An unknown targetCustomizationMode is refused by the API server, naming the field and the
// modes it accepts, on HelmOps and on Bundles alike.
func TestTargetCustomizationModeValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for _, kind := range []string{"HelmOp", "Bundle"} {
		t.Run(kind, func(t *testing.T) {
			g := NewWithT(t)
			spec := map[string]any{
				"helm":                    map[string]any{"repo": "https://charts.example", "chart": "alpine"},
				"targetCustomizationMode": "Sometimes",
			}
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "fleet.cattle.io/v1alpha1", "kind": kind,
				"metadata": map[string]any{"name": "mode", "namespace": ns},
				"spec":     spec,
			}}
			err := cp.Client.Create(ctx, u)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			g.Expect(err.Error()).To(And(ContainSubstring("spec.targetCustomizationMode"), ContainSubstring(`"Sometimes"`),
				ContainSubstring(`"FirstMatch"`), ContainSubstring(`"AllMatches"`)))

			spec["targetCustomizationMode"] = "AllMatches"
			g.Expect(cp.Client.Create(ctx, u)).To(Succeed())
		})
	}
}
