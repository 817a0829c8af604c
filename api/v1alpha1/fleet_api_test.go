package v1alpha1_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/config/crd"
)

// fleetField is one row of testdata/fleet-api/*.tsv: a field path of Fleet's CRD schema.
type fleetField struct {
	path, typ string
	flags     map[string]string // nullable, preserve-unknown, enum, default
}

func (f fleetField) nullable() bool { _, ok := f.flags["nullable"]; return ok }

func readFleetFields(t *testing.T, kind string) []fleetField {
	t.Helper()
	f, err := os.Open("testdata/fleet-api/" + kind + ".tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fleetField
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		ff := fleetField{path: cols[0], typ: cols[1], flags: map[string]string{}}
		if len(cols) > 2 && cols[2] != "" {
			for _, fl := range strings.Split(cols[2], ",") {
				k, v, _ := strings.Cut(fl, "=")
				ff.flags[k] = v
			}
		}
		out = append(out, ff)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flatten writes the schema's paths in the notation of the TSV files.
func flatten(path string, s *apiextensionsv1.JSONSchemaProps, out map[string]fleetField) {
	typ := s.Type
	if s.XIntOrString {
		typ = "int-or-string"
	}
	f := fleetField{path: path, typ: typ, flags: map[string]string{}}
	if s.Nullable {
		f.flags["nullable"] = ""
	}
	if s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields {
		f.flags["preserve-unknown"] = ""
	}
	if len(s.Enum) > 0 {
		var vals []string
		for _, e := range s.Enum {
			var v any
			_ = json.Unmarshal(e.Raw, &v)
			vals = append(vals, fmt.Sprint(v))
		}
		f.flags["enum"] = strings.Join(vals, "|")
	}
	if s.Default != nil {
		var v any
		_ = json.Unmarshal(s.Default.Raw, &v)
		f.flags["default"] = fmt.Sprint(v)
	}
	out[path] = f
	for name, p := range s.Properties {
		flatten(path+"."+name, &p, out)
	}
	if s.Items != nil && s.Items.Schema != nil {
		flatten(path+"[]", s.Items.Schema, out)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		flatten(path+"{}", s.AdditionalProperties.Schema, out)
	}
}

func ourFields(t *testing.T, plural string) map[string]fleetField {
	t.Helper()
	crds, err := crd.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range crds {
		if c.Spec.Names.Plural != plural {
			continue
		}
		out := map[string]fleetField{}
		root := c.Spec.Versions[0].Schema.OpenAPIV3Schema
		for _, top := range []string{"spec", "status"} {
			p := root.Properties[top]
			flatten("."+top, &p, out)
		}
		return out
	}
	t.Fatalf("no CRD %s", plural)
	return nil
}

// Where helmops differs from Fleet's schema on purpose. Each is written up in
// docs/fleet-compatibility.md.
var schemaDifferences = map[string]string{
	// Conditions are metav1.Condition: no lastUpdateTime, and type, status, reason, message and
	// lastTransitionTime are required, with status one of True, False, Unknown.
	".status.conditions[].lastUpdateTime": "metav1.Condition has no lastUpdateTime",
	".status.conditions[].status":         "metav1.Condition status is an enum",
}

// Every field path of Fleet's HelmOp, Cluster and ClusterGroup schemas exists in ours with the
// same type, nullability, default, enum and unknown-field preservation.
func TestFleetSchemaPathsExistWithTheSameTypeAndFlags(t *testing.T) {
	for _, kind := range []struct{ tsv, plural string }{
		{"HelmOp", "helmops"}, {"Cluster", "clusters"}, {"ClusterGroup", "clustergroups"},
	} {
		t.Run(kind.tsv, func(t *testing.T) {
			ours := ourFields(t, kind.plural)
			var problems []string
			for _, f := range readFleetFields(t, kind.tsv) {
				if _, ok := schemaDifferences[f.path]; ok {
					continue
				}
				o, ok := ours[f.path]
				switch {
				case !ok:
					problems = append(problems, f.path+": missing")
				case o.typ != f.typ:
					problems = append(problems, fmt.Sprintf("%s: type %s, Fleet has %s", f.path, o.typ, f.typ))
				default:
					for _, flag := range []string{"nullable", "preserve-unknown", "enum", "default"} {
						fv, fok := f.flags[flag]
						ov, ook := o.flags[flag]
						if fok != ook || !strings.EqualFold(fv, ov) {
							problems = append(problems, fmt.Sprintf("%s: %s is %q (set %v), Fleet has %q (set %v)", f.path, flag, ov, ook, fv, fok))
						}
					}
				}
			}
			sort.Strings(problems)
			if len(problems) > 0 {
				t.Errorf("%d differences from Fleet's %s schema:\n%s", len(problems), kind.tsv, strings.Join(problems, "\n"))
			}
		})
	}
}

// valueOverrides are values for paths whose schema limits what a string may hold.
var valueOverrides = map[string]any{
	".spec.helm.releaseName":                                            "my.release-1",
	".spec.targets[].helm.releaseName":                                  "my.release-2",
	".spec.pollingInterval":                                             "1m30s",
	".spec.targetCustomizationMode":                                     "AllMatches",
	".status.conditions[].type":                                         "Ready",
	".status.conditions[].status":                                       "True",
	".status.conditions[].reason":                                       "Succeeded",
	".status.conditions[].message":                                      "all fine",
	".status.conditions[].lastTransitionTime":                           "2026-01-02T03:04:05Z",
	".status.lastPollingTriggered":                                      "2026-01-02T03:04:05Z",
	".status.agent.lastSeen":                                            "2026-01-02T03:04:05Z",
	".status.garbageCollectionInterval":                                 "15m0s",
	".spec.helmOpOptions.helmOpCABundle":                                "Y2EK",
	".spec.agentResources.limits{}":                                     "100m",
	".spec.agentResources.requests{}":                                   "64Mi",
	".spec.agentEnvVars[].valueFrom.resourceFieldRef.divisor":           "1m",
	".spec.agentSchedulingCustomization.priorityClass.preemptionPolicy": "Never",
}

// buildObject makes a value for path and every path below it in fields. nullAt says which
// nullable paths are written as null instead (their children are then skipped).
func buildObject(path string, byPath map[string]fleetField, children map[string][]string, nullAt func(string) bool) any {
	f := byPath[path]
	if f.nullable() && nullAt(path) {
		return nil
	}
	if v, ok := valueOverrides[path]; ok {
		return v
	}
	if enum, ok := f.flags["enum"]; ok {
		return strings.Split(enum, "|")[0]
	}
	switch f.typ {
	case "object":
		kids := children[path]
		if len(kids) == 0 {
			// A free-form object (Helm values, template values).
			return map[string]any{"replicas": int64(2), "nested": map[string]any{"list": []any{"a", "b"}}}
		}
		obj := map[string]any{}
		for _, k := range kids {
			name := strings.TrimPrefix(k, path+".")
			switch {
			case k == path+"[]":
				return []any{buildObject(k, byPath, children, nullAt)}
			case k == path+"{}":
				obj["key"] = buildObject(k, byPath, children, nullAt)
			case k == ".status.conditions[].lastUpdateTime":
				// Not in metav1.Condition: see schemaDifferences.
			default:
				obj[name] = buildObject(k, byPath, children, nullAt)
			}
		}
		return obj
	case "array":
		return []any{buildObject(path+"[]", byPath, children, nullAt)}
	case "string":
		return "v-" + path[strings.LastIndexAny(path, ".]}")+1:]
	case "integer":
		return int64(3)
	case "boolean":
		return true
	case "int-or-string":
		return "25%"
	}
	panic("unknown type " + f.typ + " at " + path)
}

// nullableDepth counts the nullable paths at and above path.
func nullableDepth(path string, byPath map[string]fleetField) int {
	n := 0
	for p := path; p != ""; {
		if byPath[p].nullable() {
			n++
		}
		i := strings.LastIndexAny(p, ".[{")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return n
}

func fleetObject(t *testing.T, kind, top string, nullDepth int) (map[string]any, bool) {
	fields := readFleetFields(t, kind)
	byPath := map[string]fleetField{}
	children := map[string][]string{}
	for _, f := range fields {
		byPath[f.path] = f
		i := strings.LastIndexAny(f.path, ".[{")
		if i > 0 {
			parent := f.path[:i]
			children[parent] = append(children[parent], f.path)
		}
	}
	anyNull := false
	nullAt := func(p string) bool {
		if nullDepth > 0 && nullableDepth(p, byPath) == nullDepth {
			anyNull = true
			return true
		}
		return false
	}
	obj := buildObject("."+top, byPath, children, nullAt).(map[string]any)
	return obj, anyNull
}

// A Fleet manifest that sets every path of Fleet's schema applies with strict field validation
// and reads back unchanged, both as stored and through the Go types the controllers use. So
// do manifests that set each level of nullable fields to null.
func TestFleetManifestsSettingEveryPathApplyStrictlyAndReadBack(t *testing.T) {
	for _, kind := range []struct {
		tsv   string
		typed func() client.Object
	}{
		{"HelmOp", func() client.Object { return &v1alpha1.HelmOp{} }},
		{"Cluster", func() client.Object { return &v1alpha1.Cluster{} }},
		{"ClusterGroup", func() client.Object { return &v1alpha1.ClusterGroup{} }},
	} {
		for depth := 0; ; depth++ {
			spec, anyNullSpec := fleetObject(t, kind.tsv, "spec", depth)
			status, anyNullStatus := fleetObject(t, kind.tsv, "status", depth)
			if depth > 0 && !anyNullSpec && !anyNullStatus {
				break
			}
			t.Run(fmt.Sprintf("%s/nulls-at-depth-%d", kind.tsv, depth), func(t *testing.T) {
				checkRoundTrip(t, kind.tsv, kind.typed, spec, status, depth)
			})
		}
	}
}

func checkRoundTrip(t *testing.T, kind string, typed func() client.Object, spec, status map[string]any, depth int) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	name := strings.ToLower(kind) + "-all-paths"

	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	u.SetNamespace(ns)
	u.SetName(name)
	// Strict: an unknown or duplicated field is an error, not a warning.
	strict := client.WithFieldValidation(cp.Client, metav1.FieldValidationStrict)
	g.Expect(strict.Create(ctx, u)).To(Succeed())

	u.Object["status"] = status
	g.Expect(strict.Status().Update(ctx, u)).To(Succeed())

	back := &unstructured.Unstructured{}
	back.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, back)).To(Succeed())

	wantSpec := normalise(spec).(map[string]any)
	if kind == "HelmOp" && depth > 0 && spec["targetCustomizationMode"] == nil {
		wantSpec["targetCustomizationMode"] = "FirstMatch"
	}
	g.Expect(normalise(back.Object["spec"])).To(Equal(wantSpec), "spec as stored")
	g.Expect(normalise(back.Object["status"])).To(Equal(normalise(status)), "status as stored")

	if depth > 0 {
		// Nulls decode to zero values; the typed round trip is checked with every value set.
		return
	}
	obj := typed()
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(back.Object, obj)).To(Succeed())
	raw, err := json.Marshal(obj)
	g.Expect(err).NotTo(HaveOccurred())
	var again map[string]any
	g.Expect(json.Unmarshal(raw, &again)).To(Succeed())
	g.Expect(normalise(again["spec"])).To(Equal(wantSpec), "spec through the Go types")
	g.Expect(normalise(again["status"])).To(Equal(normalise(status)), "status through the Go types")
}

// normalise makes JSON numbers comparable whatever decoded them.
func normalise(v any) any {
	raw, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}
