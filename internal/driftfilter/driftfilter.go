// Package driftfilter applies a BundleDeployment's diff and ignore options to what the agent
// checks: diff.comparePatches say which resources or fields drift detection leaves out, and
// ignore.conditions say which conditions of a resource readiness leaves out. The package is pure:
// it changes copies of objects and never talks to an API server.
package driftfilter

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/helmops/helmops/api/v1alpha1"
)

// matches reports whether the patch selects the object; empty selector fields match anything.
func matches(p v1alpha1.ComparePatch, obj *unstructured.Unstructured) bool {
	return (p.APIVersion == "" || p.APIVersion == obj.GetAPIVersion()) &&
		(p.Kind == "" || p.Kind == obj.GetKind()) &&
		(p.Name == "" || p.Name == obj.GetName()) &&
		(p.Namespace == "" || p.Namespace == obj.GetNamespace())
}

// ForDrift returns copies of want and live with the fields the compare patches leave out removed,
// and ignored=true when a patch with the operation "ignore" leaves the whole resource out. The
// inputs are not modified.
func ForDrift(patches []v1alpha1.ComparePatch, want, live *unstructured.Unstructured) (w, l *unstructured.Unstructured, ignored bool) {
	w, l = want, live
	copied := false
	for _, p := range patches {
		if !matches(p, want) {
			continue
		}
		var pointers []string
		for _, op := range p.Operations {
			switch strings.ToLower(op.Op) {
			case "ignore":
				return want, live, true
			case "remove":
				pointers = append(pointers, op.Path)
			}
		}
		pointers = append(pointers, p.JSONPointers...)
		for _, ptr := range pointers {
			if !copied {
				w, l, copied = want.DeepCopy(), live.DeepCopy(), true
			}
			remove(w.Object, ptr)
			remove(l.Object, ptr)
		}
	}
	return w, l, false
}

// remove deletes the field at an RFC 6901 JSON pointer, if it exists.
func remove(obj map[string]any, pointer string) {
	if pointer == "" || pointer == "/" {
		return
	}
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	var cur any = obj
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				delete(c, p)
				return
			}
			cur = c[p]
		case []any:
			var idx int
			if _, err := fmt.Sscanf(p, "%d", &idx); err != nil || idx < 0 || idx >= len(c) || fmt.Sprint(idx) != p {
				return
			}
			if last {
				// Lists are compared whole; blank the entry rather than shifting the others.
				c[idx] = nil
				return
			}
			cur = c[idx]
		default:
			return
		}
	}
}

// ForReadiness returns a copy of live without the status conditions that one of the ignore
// entries matches: an entry matches a condition when every key it lists has the given value in
// the condition (such as {type: Ready, status: "False"}). An empty entry matches nothing. The
// input is not modified.
func ForReadiness(ignore []map[string]string, live *unstructured.Unstructured) *unstructured.Unstructured {
	if len(ignore) == 0 {
		return live
	}
	conds, found, err := unstructured.NestedSlice(live.Object, "status", "conditions")
	if !found || err != nil {
		return live
	}
	kept := make([]any, 0, len(conds))
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && ignored(ignore, m) {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == len(conds) {
		return live
	}
	out := live.DeepCopy()
	_ = unstructured.SetNestedSlice(out.Object, kept, "status", "conditions")
	return out
}

func ignored(ignore []map[string]string, cond map[string]any) bool {
	for _, entry := range ignore {
		if len(entry) == 0 {
			continue
		}
		all := true
		for k, v := range entry {
			if fmt.Sprint(cond[k]) != v {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
