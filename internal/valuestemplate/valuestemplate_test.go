package valuestemplate

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func cluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "dev-1", Namespace: "fleet-default",
			Labels:      map[string]string{"env": "dev", "region": "eu-west"},
			Annotations: map[string]string{"owner": "team-a", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
		Spec: v1alpha1.ClusterSpec{TemplateValues: &v1alpha1.GenericMap{Data: map[string]any{
			"replicas": int64(3), "hosts": []any{"a.example", "b.example"}}}},
	}
}

func helm(values map[string]any, tv map[string]string) *v1alpha1.HelmOptions {
	h := &v1alpha1.HelmOptions{Chart: "c", TemplateValues: tv}
	if values != nil {
		h.Values = &v1alpha1.GenericMap{Data: values}
	}
	return h
}

func TestProcess(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   *v1alpha1.HelmOptions
		want map[string]any
	}{
		{"no values", helm(nil, nil), nil},
		{"cluster labels by prefix, missing ones empty, nested and in lists",
			helm(map[string]any{"env": "global.fleet.clusterLabels.env", "none": "global.fleet.clusterLabels.nope",
				"nested": map[string]any{"region": "global.fleet.clusterLabels.region"},
				"list":   []any{map[string]any{"e": "global.fleet.clusterLabels.env"}, "global.fleet.clusterLabels.env"}}, nil),
			map[string]any{"env": "dev", "none": "", "nested": map[string]any{"region": "eu-west"},
				"list": []any{map[string]any{"e": "dev"}, "global.fleet.clusterLabels.env"}}},
		{"templates over every field, typed by YAML",
			helm(map[string]any{"name": "${ .ClusterName }", "ns": "${ .ClusterNamespace }", "env": "${ .ClusterLabels.env }",
				"owner": "${ .ClusterAnnotations.owner }", "replicas": "${ .ClusterValues.replicas }",
				"upper": "${ .ClusterLabels.region | upper }", "dflt": "${ get .ClusterLabels \"tier\" | default \"basic\" }"}, nil),
			map[string]any{"name": "dev-1", "ns": "fleet-default", "env": "dev", "owner": "team-a", "replicas": float64(3),
				"upper": "EU-WEST", "dflt": "basic"}},
		{"templateValues render lists and replace values keys",
			helm(map[string]any{"hosts": "old", "keep": "x"}, map[string]string{
				"hosts": "${ toJson .ClusterValues.hosts }", "name": "${ .ClusterName }-app"}),
			map[string]any{"hosts": []any{"a.example", "b.example"}, "keep": "x", "name": "dev-1-app"}},
		{"disablePreProcess keeps templates, still replaces labels",
			&v1alpha1.HelmOptions{DisablePreProcess: true, Values: &v1alpha1.GenericMap{Data: map[string]any{
				"name": "${ .ClusterName }", "env": "global.fleet.clusterLabels.env"}}, TemplateValues: map[string]string{"x": "${ .ClusterName }"}},
			map[string]any{"name": "${ .ClusterName }", "env": "dev"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := tt.in.DeepCopy()
			out, err := Process(tt.in, cluster())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(tt.in).To(Equal(before), "the input is not modified")
			if tt.want == nil {
				g.Expect(out.Values).To(BeNil())
				return
			}
			g.Expect(out.Values.Data).To(Equal(tt.want))
		})
	}
}

func TestProcessErrorsNameTheClusterAndTheValue(t *testing.T) {
	for _, tt := range []struct {
		name, path, msg string
		in              *v1alpha1.HelmOptions
	}{
		{"a missing label", "helm.values.image.tag", "map has no entry for key",
			helm(map[string]any{"image": map[string]any{"tag": "${ .ClusterLabels.version }", "repo": "r"}, "a": "ok"}, nil)},
		{"a missing cluster value in a list", "helm.values.list[1]", "map has no entry for key",
			helm(map[string]any{"list": []any{"fine", "${ .ClusterValues.nope }"}}, nil)},
		{"a syntax error", "helm.values.x", "invalid template",
			helm(map[string]any{"x": "${ .ClusterName "}, nil)},
		{"a forbidden function", "helm.values.home", "function \"env\" not defined",
			helm(map[string]any{"home": "${ env \"HOME\" }"}, nil)},
		{"a templateValues entry", "helm.templateValues.hosts", "map has no entry for key",
			helm(nil, map[string]string{"hosts": "${ .ClusterValues.missing }"})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Process(tt.in, cluster())
			var te *Error
			g.Expect(errors.As(err, &te)).To(BeTrue(), "%v", err)
			g.Expect(te.Cluster).To(Equal("dev-1"))
			g.Expect(te.Path).To(Equal(tt.path))
			g.Expect(err.Error()).To(ContainSubstring(tt.msg))
			g.Expect(err.Error()).To(HavePrefix("cluster dev-1: " + tt.path + ": "))
		})
	}
}
