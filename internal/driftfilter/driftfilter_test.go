package driftfilter

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/helmops/helmops/api/v1alpha1"
)

func deployment(replicas int64, annotation string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "app", "annotations": map[string]any{"a/b": annotation}},
		"spec":     map[string]any{"replicas": replicas, "list": []any{"x", "y"}},
	}}
}

func TestForDrift(t *testing.T) {
	for _, tt := range []struct {
		name        string
		patches     []v1alpha1.ComparePatch
		wantIgnored bool
		check       func(g Gomega, w, l *unstructured.Unstructured)
	}{
		{"no patches keeps everything", nil, false, func(g Gomega, w, l *unstructured.Unstructured) {
			g.Expect(w.Object["spec"]).To(HaveKeyWithValue("replicas", int64(1)))
		}},
		{"remove a field by operation", []v1alpha1.ComparePatch{{Kind: "Deployment", Name: "web",
			Operations: []v1alpha1.Operation{{Op: "remove", Path: "/spec/replicas"}}}}, false, func(g Gomega, w, l *unstructured.Unstructured) {
			g.Expect(w.Object["spec"]).NotTo(HaveKey("replicas"))
			g.Expect(l.Object["spec"]).NotTo(HaveKey("replicas"))
		}},
		{"remove by jsonPointers, escaped", []v1alpha1.ComparePatch{{APIVersion: "apps/v1", Namespace: "app",
			JSONPointers: []string{"/metadata/annotations/a~1b", "/spec/list/1", "/spec/nope/x"}}}, false, func(g Gomega, w, l *unstructured.Unstructured) {
			g.Expect(w.GetAnnotations()).NotTo(HaveKey("a/b"))
			g.Expect(l.GetAnnotations()).NotTo(HaveKey("a/b"))
			g.Expect(w.Object["spec"].(map[string]any)["list"]).To(Equal([]any{"x", nil}))
		}},
		{"ignore the whole resource", []v1alpha1.ComparePatch{{Kind: "Deployment", Operations: []v1alpha1.Operation{{Op: "ignore"}}}}, true, nil},
		{"a patch for another resource does nothing", []v1alpha1.ComparePatch{{Kind: "Deployment", Name: "other",
			Operations: []v1alpha1.Operation{{Op: "ignore"}}}}, false, func(g Gomega, w, l *unstructured.Unstructured) {
			g.Expect(l.Object["spec"]).To(HaveKeyWithValue("replicas", int64(3)))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			want, live := deployment(1, "x"), deployment(3, "y")
			wBefore, lBefore := want.DeepCopy(), live.DeepCopy()
			w, l, ignored := ForDrift(tt.patches, want, live)
			g.Expect(ignored).To(Equal(tt.wantIgnored))
			g.Expect(want).To(Equal(wBefore), "inputs are not modified")
			g.Expect(live).To(Equal(lBefore), "inputs are not modified")
			if tt.check != nil {
				tt.check(g, w, l)
			}
		})
	}
}

func TestForReadiness(t *testing.T) {
	live := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
		map[string]any{"type": "Ready", "status": "False", "reason": "Waiting"},
		map[string]any{"type": "Synced", "status": "True"},
	}}}}
	for _, tt := range []struct {
		name   string
		ignore []map[string]string
		types  []string
	}{
		{"nothing ignored", nil, []string{"Ready", "Synced"}},
		{"every listed field must match", []map[string]string{{"type": "Ready", "status": "True"}}, []string{"Ready", "Synced"}},
		{"a matching entry drops the condition", []map[string]string{{"type": "Ready", "status": "False"}}, []string{"Synced"}},
		{"an empty entry matches nothing", []map[string]string{{}}, []string{"Ready", "Synced"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := live.DeepCopy()
			out := ForReadiness(tt.ignore, live)
			g.Expect(live).To(Equal(before))
			conds, _, _ := unstructured.NestedSlice(out.Object, "status", "conditions")
			var types []string
			for _, c := range conds {
				types = append(types, c.(map[string]any)["type"].(string))
			}
			g.Expect(types).To(Equal(tt.types))
		})
	}
}
