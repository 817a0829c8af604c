package releasestate

// Owner marks the agent writes into the chart annotations of every revision it installs or
// upgrades (Helm stores them in the release record). They say which BundleDeployment installed
// the release; only that BundleDeployment upgrades or uninstalls it.
const (
	// BundleIDAnnotation is the name of the BundleDeployment that installed the release, as
	// Fleet's agent writes it.
	BundleIDAnnotation = "fleet.cattle.io/bundle-id"
	// ClusterNamespaceAnnotation is the namespace of that BundleDeployment on the management
	// cluster (its cluster namespace): two workspaces whose clusters share one downstream
	// cluster still tell their releases apart.
	ClusterNamespaceAnnotation = "fleet.cattle.io/cluster-namespace"
)

// Claim is a BundleDeployment that wants to change a release.
type Claim struct {
	// Namespace and Name of the BundleDeployment.
	Namespace, Name string
	// Recorded is true when the BundleDeployment's status (written only by its agent) names the
	// release and an applied deploymentID: the agent deployed it before releases carried owner
	// marks.
	Recorded bool
}

// OwnerMarks are the annotations that make c the owner of a release.
func OwnerMarks(c Claim) map[string]string {
	return map[string]string{BundleIDAnnotation: c.Name, ClusterNamespaceAnnotation: c.Namespace}
}

// Owns reports whether the release whose chart carries annotations belongs to c:
//   - marked by helmops: both marks name c;
//   - marked by Fleet's agent (a BundleDeployment name only): it names c;
//   - unmarked (installed by a helmops agent that did not mark releases, or by anyone else):
//     only when c's own status records that its agent deployed this release. A new
//     BundleDeployment has no such record, so it can never adopt a release it did not install.
func Owns(annotations map[string]string, c Claim) bool {
	ns, id := annotations[ClusterNamespaceAnnotation], annotations[BundleIDAnnotation]
	switch {
	case ns != "":
		return ns == c.Namespace && id == c.Name
	case id != "":
		return id == c.Name
	default:
		return c.Recorded
	}
}

// OwnerOf names the owner recorded in annotations: the BundleDeployment's namespace (empty when
// only Fleet's mark is there) and name; both empty when the release is unmarked.
func OwnerOf(annotations map[string]string) (namespace, name string) {
	return annotations[ClusterNamespaceAnnotation], annotations[BundleIDAnnotation]
}
