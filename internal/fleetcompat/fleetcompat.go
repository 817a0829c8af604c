// Package fleetcompat knows which of Fleet's HelmOp fields have no meaning for a HelmOp. Fleet's
// HelmOp shares its spec with Bundles built from git, so a Fleet manifest may set fields that
// only apply there (raw YAML overlays, kustomize, values files, stored contents, …). helmops
// accepts them, so such manifests apply unchanged, and reports them instead of dropping them
// silently. The package is pure.
package fleetcompat

import (
	"fmt"
	"sort"
	"strings"

	"github.com/helmops/helmops/api/v1alpha1"
)

// NotApplicable returns the paths (such as "spec.helm.valuesFiles" or "spec.targets[1].yaml")
// of fields set on the HelmOp that only apply to bundles built from git, sorted.
func NotApplicable(spec *v1alpha1.HelmOpSpec) []string {
	var out []string
	add := func(set bool, path string) {
		if set {
			out = append(out, path)
		}
	}
	add(len(spec.Resources) > 0, "spec.resources")
	add(spec.ContentsID != "", "spec.contentsId")
	add(spec.ValuesHash != "", "spec.valuesHash")
	add(spec.HelmOpOptions != nil, "spec.helmOpOptions")
	add(spec.YAML != nil, "spec.yaml")
	add(spec.Kustomize != nil, "spec.kustomize")
	add(len(spec.Overwrites) > 0, "spec.overwrites")
	add(spec.AllowedTargetNamespaceSelector != nil, "spec.allowedTargetNamespaceSelector")
	add(spec.Helm != nil && len(spec.Helm.ValuesFiles) > 0, "spec.helm.valuesFiles")
	for i, t := range spec.Targets {
		p := fmt.Sprintf("spec.targets[%d].", i)
		add(t.YAML != nil, p+"yaml")
		add(t.Kustomize != nil, p+"kustomize")
		add(len(t.Overwrites) > 0, p+"overwrites")
		add(t.AllowedTargetNamespaceSelector != nil, p+"allowedTargetNamespaceSelector")
		add(t.Helm != nil && len(t.Helm.ValuesFiles) > 0, p+"helm.valuesFiles")
	}
	sort.Strings(out)
	return out
}

// Message says which fields are ignored because they only apply to bundles built from git, or ""
// when none is.
func Message(notApplicable []string) string {
	if len(notApplicable) == 0 {
		return ""
	}
	return "not applicable to a HelmOp and ignored (they only apply to bundles built from git): " + strings.Join(notApplicable, ", ")
}
