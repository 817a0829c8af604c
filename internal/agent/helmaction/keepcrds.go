package helmaction

import (
	"bytes"
	"fmt"
	"sort"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"
)

// ResourcePolicyAnnotation with the value "keep" makes Helm leave a resource in place when the
// release is uninstalled.
const ResourcePolicyAnnotation = "helm.sh/resource-policy"

// KeepCRDs is a Helm post-renderer that marks every CustomResourceDefinition of the rendered
// templates with helm.sh/resource-policy: keep, so uninstalling the release keeps the CRDs (and
// the custom resources of those kinds). It is what Fleet does unless deleteCRDResources is set.
// CRDs of a chart's crds/ directory are never rendered and never deleted by Helm anyway.
type KeepCRDs struct{}

// Run rewrites the CRD documents of the rendered manifests and leaves the others byte for byte.
func (KeepCRDs) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	docs := releaseutil.SplitManifests(rendered.String())
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	out := &bytes.Buffer{}
	for _, k := range keys {
		doc, err := keepCRD(docs[k])
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.WriteString(doc)
		out.WriteString("\n")
	}
	return out, nil
}

// keepCRD adds helm.sh/resource-policy: keep to a CustomResourceDefinition document that has no
// resource policy; other documents are returned as they are.
func keepCRD(doc string) (string, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return "", fmt.Errorf("reading a rendered manifest: %w", err)
	}
	if head.Kind != "CustomResourceDefinition" {
		return doc, nil
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		return "", fmt.Errorf("reading a rendered CustomResourceDefinition: %w", err)
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		md["annotations"] = ann
	}
	if _, set := ann[ResourcePolicyAnnotation]; !set {
		ann[ResourcePolicyAnnotation] = "keep"
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
