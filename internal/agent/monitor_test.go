package agent

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestDrift(t *testing.T) {
	const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
          resources: {requests: {cpu: "0.5"}}
`
	cases := []struct {
		name string
		live string
		want []string
	}{
		{"server-populated fields are ignored", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  uid: 123
  resourceVersion: "9"
  labels: {app: web, extra: added}
  annotations: {meta.helm.sh/release-name: web}
spec:
  replicas: 2
  strategy: {type: RollingUpdate}
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 500m}}
status: {replicas: 2}
`, nil},
		{"changed scalar", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 5
  template: {spec: {containers: [{name: web, image: nginx:1.27, resources: {requests: {cpu: 500m}}}]}}
`, []string{"spec.replicas"}},
		{"changed list element and label", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: other}}
spec:
  replicas: 2
  template: {spec: {containers: [{name: web, image: nginx:latest, resources: {requests: {cpu: 500m}}}]}}
`, []string{"metadata.labels.app", "spec.template.spec.containers[0].image"}},
		{"extra list element", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  template: {spec: {containers: [{name: web, image: nginx:1.27, resources: {requests: {cpu: 500m}}}, {name: sidecar}]}}
`, []string{"spec.template.spec.containers"}},
		{"removed field", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  template: {spec: {containers: [{name: web, image: nginx:1.27, resources: {requests: {cpu: 500m}}}]}}
`, []string{"spec.replicas"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(drift(obj(t, manifest), obj(t, tc.live))).To(Equal(tc.want))
		})
	}
}

func TestDriftComparesSecretStringDataWithData(t *testing.T) {
	g := NewWithT(t)
	want := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n")
	g.Expect(drift(want, obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n"))).To(BeEmpty())
	g.Expect(drift(want, obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: b3RoZXI=}\n"))).To(Equal([]string{"stringData.password"}))
}

func TestMergeValues(t *testing.T) {
	g := NewWithT(t)
	dst := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "list": []any{1, 2}, "keep": true}
	src := map[string]any{"a": map[string]any{"y": 3, "z": 4}, "list": []any{9}, "new": "v"}
	g.Expect(mergeValues(dst, src)).To(Equal(map[string]any{
		"a": map[string]any{"x": 1, "y": 3, "z": 4}, "list": []any{9}, "keep": true, "new": "v",
	}))
}
