package agent

import (
	"context"
	"fmt"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	release "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/releasestate"
)

// claim is what a BundleDeployment can show to own a release: its name and namespace, and
// whether its status (which only its agent writes) records that it deployed this release.
func claim(bd *v1alpha1.BundleDeployment, rel *release.Release) releasestate.Claim {
	st := bd.Status.Release
	recorded := st != nil && st.Name == rel.Name && st.Namespace == rel.Namespace && bd.Status.AppliedDeploymentID != ""
	return releasestate.Claim{Namespace: bd.Namespace, Name: bd.Name, Recorded: recorded}
}

// owns reports whether bd installed rel (see releasestate.Owns).
func owns(bd *v1alpha1.BundleDeployment, rel *release.Release) bool {
	return releasestate.Owns(chartAnnotations(rel.Chart), claim(bd, rel))
}

func chartAnnotations(ch *chart.Chart) map[string]string {
	if ch == nil || ch.Metadata == nil {
		return nil
	}
	return ch.Metadata.Annotations
}

// markOwner writes bd's owner marks into the chart's annotations, replacing any the chart
// brought with it, so the revision Helm stores names bd.
func markOwner(ch *chart.Chart, bd *v1alpha1.BundleDeployment) {
	if ch == nil || ch.Metadata == nil {
		return
	}
	if ch.Metadata.Annotations == nil {
		ch.Metadata.Annotations = map[string]string{}
	}
	for k, v := range releasestate.OwnerMarks(releasestate.Claim{Namespace: bd.Namespace, Name: bd.Name}) {
		ch.Metadata.Annotations[k] = v
	}
}

// foreignRelease explains why bd does not touch rel, naming the owner (and its HelmOp, when the
// owner is a BundleDeployment of the same cluster namespace).
func (r *Reconciler) foreignRelease(ctx context.Context, bd *v1alpha1.BundleDeployment, rel *release.Release) error {
	ns, name := releasestate.OwnerOf(chartAnnotations(rel.Chart))
	owner := "something other than a helmops agent (it carries no owner marks)"
	switch {
	case name != "" && ns == bd.Namespace:
		owner = fmt.Sprintf("BundleDeployment %s/%s", ns, name)
		other := &v1alpha1.BundleDeployment{}
		if err := r.Upstream.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, other); err == nil && other.Labels[v1alpha1.HelmOpLabel] != "" {
			owner += fmt.Sprintf(" (HelmOp %s/%s)", other.Labels[v1alpha1.BundleNamespaceLabel], other.Labels[v1alpha1.HelmOpLabel])
		}
	case name != "" && ns != "":
		owner = fmt.Sprintf("BundleDeployment %s/%s of another cluster namespace", ns, name)
	case name != "":
		owner = fmt.Sprintf("BundleDeployment %s (marked by a Fleet agent)", name)
	}
	return fmt.Errorf("helm release %s/%s was installed by %s, not by this BundleDeployment %s/%s: helmops upgrades and uninstalls a release only from the BundleDeployment that installed it, and changes nothing here; set another helm.releaseName or namespace",
		rel.Namespace, rel.Name, owner, bd.Namespace, bd.Name)
}
