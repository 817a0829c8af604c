package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
)

const defaultValuesKey = "values.yaml"

// releaseValues merges the valuesFrom sources in order (read in the downstream cluster), then
// the inline values on top.
func releaseValues(ctx context.Context, downstream client.Reader, helm v1alpha1.HelmOptions, releaseNamespace string) (map[string]any, error) {
	out := map[string]any{}
	for i, vf := range helm.ValuesFrom {
		field := fmt.Sprintf("spec.options.helm.valuesFrom[%d]", i)
		src, data, err := readValuesFrom(ctx, downstream, field, vf, releaseNamespace)
		switch {
		case err != nil:
			return nil, err
		case src.kind == "":
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(data), &m); err != nil {
			// The parser's message may quote the content; a Secret's content must not leak.
			return nil, fmt.Errorf("%s: key %q of %s %s/%s is not a YAML map of values", field, src.key, src.kind, src.namespace, src.name)
		}
		out = mergeValues(out, m)
	}
	if helm.Values != nil {
		out = mergeValues(out, deepCopyMap(helm.Values.Data))
	}
	return out, nil
}

// valuesSource is the downstream ConfigMap or Secret key a valuesFrom entry reads; field is the
// entry's field that names it.
type valuesSource struct{ kind, field, namespace, name, key string }

// readValuesFrom reads the content of one valuesFrom entry (field names it in errors). An entry
// that names neither a ConfigMap nor a Secret has no source (an empty kind).
func readValuesFrom(ctx context.Context, downstream client.Reader, field string, vf v1alpha1.ValuesFrom, releaseNamespace string) (valuesSource, string, error) {
	var src valuesSource
	var obj client.Object
	switch {
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		src = valuesSource{"ConfigMap", "configMapKeyRef", orDefault(ref.Namespace, releaseNamespace), ref.Name, orDefault(ref.Key, defaultValuesKey)}
		obj = &corev1.ConfigMap{}
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		src = valuesSource{"Secret", "secretKeyRef", orDefault(ref.Namespace, releaseNamespace), ref.Name, orDefault(ref.Key, defaultValuesKey)}
		obj = &corev1.Secret{}
	default:
		return valuesSource{}, "", nil
	}
	if err := downstream.Get(ctx, client.ObjectKey{Namespace: src.namespace, Name: src.name}, obj); err != nil {
		return src, "", fmt.Errorf("%s: reading %s %s/%s in the downstream cluster: %w", field, src.kind, src.namespace, src.name, err)
	}
	var data string
	var ok bool
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		data, ok = o.Data[src.key]
	case *corev1.Secret:
		var b []byte
		b, ok = o.Data[src.key]
		data = string(b)
	}
	if !ok {
		return src, "", fmt.Errorf("%s: %s %s/%s has no key %q; add it or set %s.key", field, src.kind, src.namespace, src.name, src.key, src.field)
	}
	return src, data, nil
}

// mergeValues deep-merges src into dst (maps merge key by key, anything else replaces).
func mergeValues(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopyMap(t)
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = deepCopyValue(t[i])
		}
		return out
	}
	return v
}
