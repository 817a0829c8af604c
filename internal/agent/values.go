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
		var (
			data      string
			kind, ns  string
			name, key string
		)
		switch {
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			kind, name, ns, key = "ConfigMap", ref.Name, orDefault(ref.Namespace, releaseNamespace), orDefault(ref.Key, defaultValuesKey)
			cm := &corev1.ConfigMap{}
			if err := downstream.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
				return nil, fmt.Errorf("spec.options.helm.valuesFrom[%d]: reading ConfigMap %s/%s in the downstream cluster: %w", i, ns, name, err)
			}
			v, ok := cm.Data[key]
			if !ok {
				return nil, fmt.Errorf("spec.options.helm.valuesFrom[%d]: ConfigMap %s/%s has no key %q; add it or set configMapKeyRef.key", i, ns, name, key)
			}
			data = v
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			kind, name, ns, key = "Secret", ref.Name, orDefault(ref.Namespace, releaseNamespace), orDefault(ref.Key, defaultValuesKey)
			s := &corev1.Secret{}
			if err := downstream.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
				return nil, fmt.Errorf("spec.options.helm.valuesFrom[%d]: reading Secret %s/%s in the downstream cluster: %w", i, ns, name, err)
			}
			v, ok := s.Data[key]
			if !ok {
				return nil, fmt.Errorf("spec.options.helm.valuesFrom[%d]: Secret %s/%s has no key %q; add it or set secretKeyRef.key", i, ns, name, key)
			}
			data = string(v)
		default:
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(data), &m); err != nil {
			// The parser's message may quote the content; a Secret's content must not leak.
			return nil, fmt.Errorf("spec.options.helm.valuesFrom[%d]: key %q of %s %s/%s is not a YAML map of values", i, key, kind, ns, name)
		}
		out = mergeValues(out, m)
	}
	if helm.Values != nil {
		out = mergeValues(out, deepCopyMap(helm.Values.Data))
	}
	return out, nil
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
