package v1alpha1

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
)

func TestGenericMapDeepCopyIsIndependent(t *testing.T) {
	g := NewWithT(t)
	in := &GenericMap{Data: map[string]any{"a": map[string]any{"b": []any{"c"}}, "n": 3, "s": []string{"x"}}}
	out := in.DeepCopy()
	out.Data["a"].(map[string]any)["b"].([]any)[0] = "changed"
	g.Expect(in.Data["a"].(map[string]any)["b"].([]any)[0]).To(Equal("c"))

	b, err := json.Marshal(out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b).To(MatchJSON(`{"a":{"b":["changed"]},"n":3,"s":["x"]}`))

	var back GenericMap
	g.Expect(json.Unmarshal([]byte(`{"x":{"y":1}}`), &back)).To(Succeed())
	g.Expect(back.Data).To(HaveKey("x"))
	g.Expect((*GenericMap)(nil).DeepCopy()).To(BeNil())
}
