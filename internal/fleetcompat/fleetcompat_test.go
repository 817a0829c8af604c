package fleetcompat

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestNotApplicable(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec v1alpha1.HelmOpSpec
		want []string
	}{
		{"a plain HelmOp", v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{Chart: "c", Values: &v1alpha1.GenericMap{Data: map[string]any{"a": 1}}}}}, nil},
		{"every git-only field", v1alpha1.HelmOpSpec{
			BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
				Helm:                           &v1alpha1.HelmOptions{ValuesFiles: []string{"v.yaml"}},
				YAML:                           &v1alpha1.YAMLOptions{},
				Kustomize:                      &v1alpha1.KustomizeOptions{Dir: "k"},
				Overwrites:                     []v1alpha1.OverwrittenResource{{Name: "x"}},
				AllowedTargetNamespaceSelector: &metav1.LabelSelector{},
			},
			Resources:     []v1alpha1.BundleResource{{Name: "f"}},
			ContentsID:    "s-1",
			ValuesHash:    "h",
			HelmOpOptions: &v1alpha1.BundleHelmOptions{},
			Targets: []v1alpha1.BundleTarget{{ClusterName: "a"}, {
				YAML: &v1alpha1.YAMLOptions{}, Kustomize: &v1alpha1.KustomizeOptions{}, Overwrites: []v1alpha1.OverwrittenResource{{}},
				AllowedTargetNamespaceSelector: &metav1.LabelSelector{}, Helm: &v1alpha1.HelmOptions{ValuesFiles: []string{"x"}},
			}},
		}, []string{
			"spec.allowedTargetNamespaceSelector", "spec.contentsId", "spec.helm.valuesFiles", "spec.helmOpOptions",
			"spec.kustomize", "spec.overwrites", "spec.resources",
			"spec.targets[1].allowedTargetNamespaceSelector", "spec.targets[1].helm.valuesFiles", "spec.targets[1].kustomize",
			"spec.targets[1].overwrites", "spec.targets[1].yaml", "spec.valuesHash", "spec.yaml",
		}},
		{"an empty valuesFiles list is not reported", v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{ValuesFiles: []string{}}}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NotApplicable(&tt.spec)).To(Equal(tt.want))
		})
	}
	g := NewWithT(t)
	g.Expect(Message(nil)).To(BeEmpty())
	g.Expect(Message([]string{"spec.yaml", "spec.kustomize"})).To(ContainSubstring("spec.yaml, spec.kustomize"))
}
