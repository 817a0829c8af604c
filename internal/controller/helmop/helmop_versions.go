package helmop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
)

// inputsAnnotation on a Bundle records what its versions were resolved from (see resolved), so
// a reconcile that changes no version input does not contact the repository.
const inputsAnnotation = "fleet.cattle.io/helmop-inputs"

// resolved is the outcome of one resolution: the exact version chosen for each chart reference
// of the spec, and the credentials used.
type resolved struct {
	// Credentials is a hash of the Secret's name and resourceVersion and insecureSkipTLSVerify.
	Credentials string `json:"credentials"`
	// Versions maps refKey(ref) to the exact version chosen.
	Versions map[string]string `json:"versions,omitempty"`
	// Digest pins the content of spec.helm's chart at its chosen version (see chartDigest);
	// empty when the source gives none.
	Digest string `json:"digest,omitempty"`
	// Requested is the reconcile-requested-at value the last requested resolution handled, so
	// that a reconcile reading the HelmOp from a cache older than that reconcile's status
	// patch does not handle (and revalidate) it twice.
	Requested string `json:"requested,omitempty"`
}

// lastResolved reads the resolution a Bundle was written from; a Bundle without one (or with
// one from an older format) has none, so every reference is resolved again.
func lastResolved(b *v1alpha1.Bundle) resolved {
	var r resolved
	if b == nil || json.Unmarshal([]byte(b.Annotations[inputsAnnotation]), &r) != nil {
		return resolved{}
	}
	return r
}

func (r resolved) encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// covers reports whether every reference has a version in r.
func (r resolved) covers(refs []versionRef) bool {
	for _, ref := range refs {
		if _, ok := r.Versions[refKey(ref.ref)]; !ok {
			return false
		}
	}
	return true
}

// versionRef is a chart reference whose version must be resolved, with the field it comes from
// ("" for spec.helm, "targets[1] (prod)" for an override).
type versionRef struct {
	ref   chartsource.Ref
	field string
}

// versionRefs are the references of a HelmOp that need a version: spec.helm (unless it is a
// tarball URL) and every per-target version override. They are the only version inputs besides
// the credentials.
func versionRefs(op *v1alpha1.HelmOp, kind chartsource.Kind) []versionRef {
	helm := op.Spec.HelmOrEmpty()
	var out []versionRef
	if kind != chartsource.KindTarball {
		out = append(out, versionRef{ref: chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version}})
	}
	for i, t := range op.Spec.Targets {
		if t.Helm != nil && t.Helm.Version != "" {
			out = append(out, versionRef{ref: targetRef(helm, t), field: fmt.Sprintf("targets[%d] (%s)", i, targetName(t, i))})
		}
	}
	return out
}

func targetRef(helm v1alpha1.HelmOptions, t v1alpha1.BundleTarget) chartsource.Ref {
	return chartsource.Ref{Repo: firstOf(t.Helm.Repo, helm.Repo), Chart: firstOf(t.Helm.Chart, helm.Chart), Version: t.Helm.Version}
}

func targetName(t v1alpha1.BundleTarget, i int) string {
	if t.Name != "" {
		return t.Name
	}
	return fmt.Sprintf("target%03d", i)
}

func refKey(ref chartsource.Ref) string {
	b, _ := json.Marshal([]string{ref.Repo, ref.Chart, ref.Version})
	return string(b)
}

// credentialsHash covers what the credentials of a resolution depend on.
func credentialsHash(op *v1alpha1.HelmOp, secretRV string) string {
	b, _ := json.Marshal([]any{op.Spec.HelmSecretName, secretRV, op.Spec.InsecureSkipTLSVerify})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// resolveRefs resolves each distinct reference once. The resolution of spec.helm is returned
// for the events.
func (r *Reconciler) resolveRefs(ctx context.Context, refs []versionRef, auth chartsource.Auth) (resolved, *chartsource.Resolution, error) {
	out := resolved{Versions: map[string]string{}}
	var main *chartsource.Resolution
	for _, vr := range refs {
		key := refKey(vr.ref)
		if _, ok := out.Versions[key]; ok {
			continue
		}
		res, err := r.Resolver.Resolve(ctx, vr.ref, auth)
		switch {
		case err != nil && vr.field != "":
			return resolved{}, nil, fmt.Errorf("%s: %w", vr.field, err)
		case err != nil:
			return resolved{}, nil, err
		case res.Version == "" && vr.field == "":
			return resolved{}, nil, fmt.Errorf("resolving %s gave no version", vr.ref.Chart)
		}
		if vr.field == "" {
			main = res
			out.Digest = chartDigest(res.Digest)
		}
		out.Versions[key] = res.Version
	}
	return out, main, nil
}

// bundleSpec is the HelmOp's deployment options with every version replaced by the exact one of
// the resolution.
func bundleSpec(op *v1alpha1.HelmOp, kind chartsource.Kind, versions resolved) v1alpha1.BundleSpec {
	in := op.Spec.DeepCopy()
	spec := v1alpha1.BundleSpec{
		BundleDeploymentOptions: in.BundleDeploymentOptions,
		Paused:                  in.Paused,
		TargetCustomizationMode: in.TargetCustomizationMode,
		TargetRestrictions:      in.TargetRestrictions,
		RolloutStrategy:         in.RolloutStrategy,
		DependsOn:               in.DependsOn,
		HelmOpOptions: &v1alpha1.BundleHelmOptions{
			SecretName:            op.Spec.HelmSecretName,
			InsecureSkipTLSVerify: op.Spec.InsecureSkipTLSVerify,
			ChartDigest:           versions.Digest,
		},
	}
	if spec.Helm == nil {
		spec.Helm = &v1alpha1.HelmOptions{}
	}
	helm := spec.Helm
	if kind != chartsource.KindTarball {
		helm.Version = versions.Versions[refKey(chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version})]
	}
	orig := op.Spec.HelmOrEmpty()
	for i, t := range op.Spec.Targets {
		t = *t.DeepCopy()
		t.Name = targetName(t, i)
		if t.Helm != nil && t.Helm.Version != "" {
			t.Helm.Version = versions.Versions[refKey(targetRef(orig, t))]
		}
		spec.Targets = append(spec.Targets, t)
	}
	if len(spec.Targets) == 0 {
		spec.Targets = []v1alpha1.BundleTarget{{Name: "default", ClusterGroup: v1alpha1.DefaultClusterGroup}}
	}
	return spec
}

// chartDigest is a resolution's digest as the Bundle carries it, "sha256:<64 lowercase hex>",
// or empty when the source gave none or one in another form (an index may list anything): the
// chart is then not pinned rather than the Bundle refused.
func chartDigest(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return ""
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return ""
	}
	return d
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
