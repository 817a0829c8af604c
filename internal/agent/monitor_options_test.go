package agent

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/helmops/helmops/api/v1alpha1"
)

// diff.comparePatches and ignore.conditions change what the monitor reports about a live
// resource on a real API server: here a Cluster object downstream whose Ready condition is False
// and whose label differs from the manifest.
func TestObserveHonoursDiffAndIgnoreOptions(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "observe-"}}
	g.Expect(downstream.Client.Create(ctx, ns)).To(Succeed())
	live := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns.Name, Labels: map[string]string{"tier": "changed"}}}
	g.Expect(downstream.Client.Create(ctx, live)).To(Succeed())
	live.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Waiting", Message: "not yet", LastTransitionTime: metav1.Now()}}
	g.Expect(downstream.Client.Status().Update(ctx, live)).To(Succeed())

	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&v1alpha1.Cluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Cluster"},
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns.Name, Labels: map[string]string{"tier": "gold"}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	want := &unstructured.Unstructured{Object: m}
	delete(want.Object, "status")

	for _, tt := range []struct {
		name               string
		opts               v1alpha1.BundleDeploymentOptions
		modified, notReady bool
	}{
		{"no options: drifted and not ready", v1alpha1.BundleDeploymentOptions{}, true, true},
		{"a compare patch removes the label from the comparison", v1alpha1.BundleDeploymentOptions{Diff: &v1alpha1.DiffOptions{
			ComparePatches: []v1alpha1.ComparePatch{{Kind: "Cluster", Name: "probe", Operations: []v1alpha1.Operation{{Op: "remove", Path: "/metadata/labels/tier"}}}}}}, false, true},
		{"an ignore compare patch leaves the resource out of drift only", v1alpha1.BundleDeploymentOptions{Diff: &v1alpha1.DiffOptions{
			ComparePatches: []v1alpha1.ComparePatch{{APIVersion: v1alpha1.GroupVersion.String(), Operations: []v1alpha1.Operation{{Op: "ignore"}}}}}}, false, true},
		{"a compare patch for another kind changes nothing", v1alpha1.BundleDeploymentOptions{Diff: &v1alpha1.DiffOptions{
			ComparePatches: []v1alpha1.ComparePatch{{Kind: "ConfigMap", Operations: []v1alpha1.Operation{{Op: "ignore"}}}}}}, true, true},
		{"ignore.conditions leaves the Ready condition out of readiness", v1alpha1.BundleDeploymentOptions{Ignore: &v1alpha1.IgnoreOptions{
			Conditions: []map[string]string{{"type": "Ready", "status": "False"}}}}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o, err := observe(ctx, downstream.Client, []*unstructured.Unstructured{want.DeepCopy()}, tt.opts)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(o.resources).To(HaveLen(1))
			g.Expect(len(o.modified) > 0).To(Equal(tt.modified), "modified: %v", o.modified)
			g.Expect(len(o.nonReady) > 0).To(Equal(tt.notReady), "not ready: %v", o.nonReady)
		})
	}
}
