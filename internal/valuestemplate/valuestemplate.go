// Package valuestemplate computes the Helm values one cluster gets, the way Fleet does:
//
//   - a string value "global.fleet.clusterLabels.<key>" becomes the value of the cluster's label
//     <key> (empty when the cluster has no such label);
//   - unless helm.disablePreProcess is set, the values are rendered as one Go template with the
//     delimiters ${ and }, over .ClusterName, .ClusterNamespace, .ClusterLabels,
//     .ClusterAnnotations and .ClusterValues (the Cluster's spec.templateValues), with sprig's
//     functions except env, expandenv and getHostByName; a key a template reads that does not
//     exist is an error; the output is read back as YAML, so "${ .ClusterValues.replicas }" can
//     become a number;
//   - each helm.templateValues entry is rendered the same way and its output, read as YAML,
//     replaces the top-level values key of the same name.
//
// The package is pure: it reads a Cluster object and never talks to an API server.
package valuestemplate

import (
	"bytes"
	"fmt"
	"maps"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
)

// ClusterLabelPrefix marks a string value to be replaced by a cluster label.
const ClusterLabelPrefix = "global.fleet.clusterLabels."

// maxDepth bounds the recursion into nested values.
const maxDepth = 50

// Error is a template that could not be rendered for a cluster.
type Error struct {
	// Cluster is the cluster's name.
	Cluster string
	// Path is the value that failed, such as "helm.values.image.tag" or
	// "helm.templateValues.hosts"; "helm.values" when no single value could be blamed.
	Path string
	// Err says what is wrong.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("cluster %s: %s: %v", e.Cluster, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Process returns the Helm options with the values computed for cluster c. The input is not
// modified; nil stays nil.
func Process(h *v1alpha1.HelmOptions, c *v1alpha1.Cluster) (*v1alpha1.HelmOptions, error) {
	if h == nil {
		return nil, nil
	}
	out := h.DeepCopy()
	var values map[string]any
	if out.Values != nil {
		values = out.Values.Data
	}
	if len(values) == 0 && len(out.TemplateValues) == 0 {
		return out, nil
	}
	if values == nil {
		values = map[string]any{}
	}
	if err := replaceLabels(values, c.Labels, 0); err != nil {
		return nil, &Error{Cluster: c.Name, Path: "helm.values", Err: err}
	}
	if !out.DisablePreProcess {
		data := templateData(c)
		rendered, err := renderValues(values, data)
		if err != nil {
			return nil, &Error{Cluster: c.Name, Path: blame(values, data, "helm.values"), Err: err}
		}
		values = rendered
		keys := make([]string, 0, len(out.TemplateValues))
		for k := range out.TemplateValues {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := renderValue(out.TemplateValues[k], data)
			if err != nil {
				return nil, &Error{Cluster: c.Name, Path: "helm.templateValues." + k, Err: err}
			}
			values[k] = v
		}
	}
	out.Values = &v1alpha1.GenericMap{Data: values}
	return out, nil
}

func templateData(c *v1alpha1.Cluster) map[string]any {
	labels := map[string]any{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	annotations := map[string]any{}
	for k, v := range c.Annotations {
		// Annotations the tooling writes for itself are not the cluster's.
		if strings.HasPrefix(k, "kubectl.kubernetes.io/") {
			continue
		}
		annotations[k] = v
	}
	clusterValues := map[string]any{}
	if c.Spec.TemplateValues != nil && c.Spec.TemplateValues.Data != nil {
		clusterValues = maps.Clone(c.Spec.TemplateValues.Data)
	}
	return map[string]any{
		"ClusterName":        c.Name,
		"ClusterNamespace":   c.Namespace,
		"ClusterLabels":      labels,
		"ClusterAnnotations": annotations,
		"ClusterValues":      clusterValues,
	}
}

// replaceLabels replaces "global.fleet.clusterLabels.<key>" strings, in maps and in maps inside
// lists, in place.
func replaceLabels(values map[string]any, labels map[string]string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("values nested deeper than %d levels", maxDepth)
	}
	for k, v := range values {
		switch v := v.(type) {
		case string:
			if key, ok := strings.CutPrefix(v, ClusterLabelPrefix); ok {
				values[k] = labels[key]
			}
		case map[string]any:
			if err := replaceLabels(v, labels, depth+1); err != nil {
				return err
			}
		case []any:
			for _, item := range v {
				if m, ok := item.(map[string]any); ok {
					if err := replaceLabels(m, labels, depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// funcs are sprig's functions without those that read the environment or the network.
func funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(f, name)
	}
	return f
}

func render(text string, data map[string]any) (string, error) {
	t, err := template.New("values").Funcs(funcs()).Option("missingkey=error").Delims("${", "}").Parse(text)
	if err != nil {
		return "", fmt.Errorf("invalid template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering the template: %w", err)
	}
	return b.String(), nil
}

func renderValues(values map[string]any, data map[string]any) (map[string]any, error) {
	doc, err := yaml.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("writing values as YAML: %w", err)
	}
	out, err := render(string(doc), data)
	if err != nil {
		return nil, err
	}
	var rendered map[string]any
	if err := yaml.Unmarshal([]byte(out), &rendered); err != nil {
		return nil, fmt.Errorf("the rendered values are not YAML: %w", err)
	}
	if rendered == nil {
		rendered = map[string]any{}
	}
	return rendered, nil
}

func renderValue(text string, data map[string]any) (any, error) {
	out, err := render(text, data)
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("the rendered value is not YAML: %w", err)
	}
	return v, nil
}

// blame finds the first value (in key order) whose own template fails, to name it in the error.
func blame(v any, data map[string]any, path string) string {
	switch v := v.(type) {
	case string:
		if strings.Contains(v, "${") {
			if _, err := render(v, data); err != nil {
				return path
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.Contains(k, "${") {
				if _, err := render(k, data); err != nil {
					return path + "." + k
				}
			}
			if p := blame(v[k], data, path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, item := range v {
			if p := blame(item, data, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	if path == "helm.values" {
		return path
	}
	return ""
}
