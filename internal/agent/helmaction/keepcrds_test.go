package helmaction

import (
	"bytes"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"
)

func TestKeepCRDs(t *testing.T) {
	g := NewWithT(t)
	in := `---
# Source: c/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data: {a: "1"}
---
# Source: c/templates/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec: {group: example.com}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: others.example.com
  annotations: {helm.sh/resource-policy: delete-me-not, x: y}
`
	out, err := KeepCRDs{}.Run(bytes.NewBufferString(in))
	g.Expect(err).NotTo(HaveOccurred())
	docs := releaseutil.SplitManifests(out.String())
	g.Expect(docs).To(HaveLen(3))
	var kinds, policies []string
	keys := []string{"manifest-0", "manifest-1", "manifest-2"}
	for _, k := range keys {
		m := map[string]any{}
		g.Expect(yaml.Unmarshal([]byte(docs[k]), &m)).To(Succeed())
		kinds = append(kinds, m["kind"].(string))
		ann, _ := m["metadata"].(map[string]any)["annotations"].(map[string]any)
		policies = append(policies, strings.TrimSpace(func() string { s, _ := ann[ResourcePolicyAnnotation].(string); return s }()))
	}
	g.Expect(kinds).To(Equal([]string{"ConfigMap", "CustomResourceDefinition", "CustomResourceDefinition"}), "order kept")
	g.Expect(policies).To(Equal([]string{"", "keep", "delete-me-not"}), "only CRDs, and a policy already set is kept")
	g.Expect(docs["manifest-0"]).To(ContainSubstring("# Source: c/templates/cm.yaml"), "other documents untouched")
}
