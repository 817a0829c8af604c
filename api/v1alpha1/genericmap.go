package v1alpha1

import (
	"bytes"
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
)

// GenericMap is a free-form JSON object, such as Helm values. Unknown fields are preserved.
//
// +kubebuilder:validation:Type=object
// +kubebuilder:pruning:PreserveUnknownFields
// +kubebuilder:object:generate=false
type GenericMap struct {
	Data map[string]any `json:"-"`
}

// MarshalJSON writes the map as a plain JSON object.
func (in GenericMap) MarshalJSON() ([]byte, error) {
	if in.Data == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(in.Data)
}

// UnmarshalJSON reads a plain JSON object.
func (in *GenericMap) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	in.Data = m
	return nil
}

// DeepCopyInto copies the map and every nested value.
func (in *GenericMap) DeepCopyInto(out *GenericMap) {
	if in.Data == nil {
		out.Data = nil
		return
	}
	out.Data = runtime.DeepCopyJSON(normalizeJSON(in.Data))
}

// DeepCopy returns a deep copy.
func (in *GenericMap) DeepCopy() *GenericMap {
	if in == nil {
		return nil
	}
	out := new(GenericMap)
	in.DeepCopyInto(out)
	return out
}

// normalizeJSON turns values built in Go (ints, []string, typed maps) into the shapes
// runtime.DeepCopyJSON accepts, by a JSON round trip when needed.
func normalizeJSON(m map[string]any) map[string]any {
	if isJSONValue(m) {
		return m
	}
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{}
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return map[string]any{}
	}
	return out
}

func isJSONValue(v any) bool {
	switch t := v.(type) {
	case nil, string, bool, int64, float64, json.Number:
		return true
	case map[string]any:
		for _, e := range t {
			if !isJSONValue(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range t {
			if !isJSONValue(e) {
				return false
			}
		}
		return true
	default:
		return false
	}
}
