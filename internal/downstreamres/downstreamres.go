// Package downstreamres knows which downstreamResources entries helmops copies and under which
// names. An entry names a Secret or ConfigMap of the HelmOp's (the Bundle's) namespace, by kind
// and name only, so it can never reach another namespace. The bundle controller copies each
// entry into the cluster namespace of every targeted cluster under CopyName, and the agent copies
// that into the release namespace downstream under the entry's own name. The package is pure.
package downstreamres

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/helmops/helmops/api/v1alpha1"
)

// The kinds an entry may name.
const (
	KindSecret    = "Secret"
	KindConfigMap = "ConfigMap"
)

// Ref is one entry with its kind spelt canonically.
type Ref struct{ Kind, Name string }

// String is "Secret/<name>" or "ConfigMap/<name>", the value of
// v1alpha1.DownstreamResourceAnnotation on the entry's copies.
func (r Ref) String() string { return r.Kind + "/" + r.Name }

// CopyName is the entry's copy in a cluster namespace.
func (r Ref) CopyName() string { return CopyName(r.Name) }

// canonicalKind matches the kind case-insensitively, as Fleet does; "" when it is neither.
func canonicalKind(kind string) string {
	switch strings.ToLower(kind) {
	case "secret":
		return KindSecret
	case "configmap":
		return KindConfigMap
	}
	return ""
}

// FieldError is an entry that cannot be copied as written, with its field path such as
// "spec.targets[1].downstreamResources[0].kind".
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// check returns the entry's Ref, or what is wrong with it.
func check(dr v1alpha1.DownstreamResource, path string) (Ref, error) {
	kind := canonicalKind(dr.Kind)
	if kind == "" {
		return Ref{}, &FieldError{Field: path + ".kind", Message: fmt.Sprintf("unsupported kind %q: use Secret or ConfigMap", dr.Kind)}
	}
	if dr.Name == "" {
		return Ref{}, &FieldError{Field: path + ".name", Message: "the name of the " + kind + " to copy is required"}
	}
	if errs := validation.IsDNS1123Subdomain(dr.Name); len(errs) > 0 {
		return Ref{}, &FieldError{Field: path + ".name", Message: fmt.Sprintf("%q is not a valid %s name: %s", dr.Name, kind, strings.Join(errs, "; "))}
	}
	return Ref{Kind: kind, Name: dr.Name}, nil
}

// Validate checks every entry of a HelmOp's or Bundle's spec.downstreamResources and
// spec.targets[i].downstreamResources, returning the first bad one as a *FieldError.
func Validate(opts v1alpha1.BundleDeploymentOptions, targets []v1alpha1.BundleTarget) error {
	for i, dr := range opts.DownstreamResources {
		if _, err := check(dr, fmt.Sprintf("spec.downstreamResources[%d]", i)); err != nil {
			return err
		}
	}
	for j, t := range targets {
		for i, dr := range t.DownstreamResources {
			if _, err := check(dr, fmt.Sprintf("spec.targets[%d].downstreamResources[%d]", j, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Refs returns the entries of a BundleDeployment's merged options, without duplicates, in
// order; an entry that cannot be copied is reported naming spec.options.downstreamResources[i].
func Refs(list []v1alpha1.DownstreamResource) ([]Ref, error) {
	out := make([]Ref, 0, len(list))
	seen := map[Ref]bool{}
	for i, dr := range list {
		ref, err := check(dr, fmt.Sprintf("spec.options.downstreamResources[%d]", i))
		if err != nil {
			return nil, err
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out, nil
}

// Path is the field of a Bundle's (or HelmOp's) spec that names ref first:
// "spec.downstreamResources[i]" or "spec.targets[j].downstreamResources[k]".
func Path(opts v1alpha1.BundleDeploymentOptions, targets []v1alpha1.BundleTarget, ref Ref) string {
	for i, dr := range opts.DownstreamResources {
		if canonicalKind(dr.Kind) == ref.Kind && dr.Name == ref.Name {
			return fmt.Sprintf("spec.downstreamResources[%d]", i)
		}
	}
	for j, t := range targets {
		for i, dr := range t.DownstreamResources {
			if canonicalKind(dr.Kind) == ref.Kind && dr.Name == ref.Name {
				return fmt.Sprintf("spec.targets[%d].downstreamResources[%d]", j, i)
			}
		}
	}
	return "spec.downstreamResources"
}

// copyPrefix starts the name of every copy of an entry in a cluster namespace, so the copy of a
// Secret named by downstreamResources never collides with the repository secret copied under its
// own name for helmSecretName (the same Secret may be both, e.g. registry credentials).
const copyPrefix = "downstream-"

// CopyName is the name of the copy of the Secret or ConfigMap name in a cluster namespace:
// "downstream-<name>", or, when that would be longer than a name may be, the prefix, a hash of
// the name and as much of the name as fits.
func CopyName(name string) string {
	if len(copyPrefix)+len(name) <= validation.DNS1123SubdomainMaxLength {
		return copyPrefix + name
	}
	sum := sha256.Sum256([]byte(name))
	head := copyPrefix + hex.EncodeToString(sum[:8]) + "-"
	rest := strings.TrimRight(name[:validation.DNS1123SubdomainMaxLength-len(head)], ".-")
	return head + rest
}
