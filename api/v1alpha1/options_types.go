package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// HelmOptions says which chart to deploy and how Helm installs it.
type HelmOptions struct {
	// Repo is the chart repository: an http(s) Helm repository URL, or an oci:// reference that
	// names the chart itself (then chart stays empty). Empty when chart is a tarball URL.
	// +optional
	// +nullable
	Repo string `json:"repo,omitempty"`

	// Chart is the chart name in the repository, or a URL of a chart archive ending in .tgz.
	// +optional
	// +nullable
	Chart string `json:"chart,omitempty"`

	// Version is an exact chart version, empty or "*" for the newest stable version, or a
	// Masterminds/semver v3 constraint such as "0.2.x" or ">= 1.0, < 2". On a Bundle and a
	// BundleDeployment it is always the exact version that was resolved.
	// +optional
	// +nullable
	Version string `json:"version,omitempty"`

	// ReleaseName is the Helm release name: at most 53 characters, lower-case DNS labels
	// joined by dots. Defaults to the HelmOp's name.
	// +optional
	// +nullable
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ReleaseName string `json:"releaseName,omitempty"`

	// Values are the chart values. They are deep-merged under per-target values. Unless
	// disablePreProcess is set, string values may hold ${ } templates over the cluster's name,
	// namespace, labels, annotations and templateValues, evaluated for each cluster.
	// +optional
	// +nullable
	Values *GenericMap `json:"values,omitempty"`

	// TemplateValues maps a top-level values key to a ${ } template (the same data and
	// functions as templates in values) whose output is read as YAML, so a template can produce
	// lists and maps. A key here replaces the same key of values. Ignored with disablePreProcess.
	// +optional
	// +nullable
	TemplateValues map[string]string `json:"templateValues,omitempty"`

	// ValuesFiles names values files of a git repository. It only applies to bundles built
	// from git; on a HelmOp it is accepted and reported as not applicable.
	// +optional
	// +nullable
	ValuesFiles []string `json:"valuesFiles,omitempty"`

	// ValuesFrom reads values from ConfigMaps and Secrets in the downstream cluster; they are
	// merged in order, and values take precedence over them.
	// +optional
	// +nullable
	ValuesFrom []ValuesFrom `json:"valuesFrom,omitempty"`

	// TimeoutSeconds is how long Helm waits for an install or upgrade. Defaults to 300.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`

	// Force makes Helm replace resources it cannot patch. Defaults to false.
	// +optional
	Force bool `json:"force,omitempty"`

	// TakeOwnership lets Helm adopt existing resources that another release or no release owns.
	// Defaults to false.
	// +optional
	TakeOwnership bool `json:"takeOwnership,omitempty"`

	// MaxHistory is the number of release revisions Helm keeps. Defaults to 5.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxHistory int `json:"maxHistory,omitempty"`

	// WaitForJobs makes Helm wait for Jobs to complete. Defaults to false.
	// +optional
	WaitForJobs bool `json:"waitForJobs,omitempty"`

	// Atomic rolls back a failed upgrade (and uninstalls a failed install). Defaults to false.
	// +optional
	Atomic bool `json:"atomic,omitempty"`

	// SkipSchemaValidation skips validating values against the chart's values.schema.json.
	// Defaults to false.
	// +optional
	SkipSchemaValidation bool `json:"skipSchemaValidation,omitempty"`

	// DisableDependencyUpdate skips updating the chart's dependencies before deploying.
	// Defaults to false.
	// +optional
	DisableDependencyUpdate bool `json:"disableDependencyUpdate,omitempty"`

	// DisablePreProcess turns off ${ } templating of values and the templateValues; values are
	// passed to Helm as written. Defaults to false.
	// +optional
	DisablePreProcess bool `json:"disablePreProcess,omitempty"`

	// DisableDNS turns off DNS lookups in the chart's templates (Helm's EnableDNS, which is on
	// by default). Defaults to false.
	// +optional
	DisableDNS bool `json:"disableDNS,omitempty"`
}

// ValuesFrom names one ConfigMap or Secret key holding values in YAML.
type ValuesFrom struct {
	// ConfigMapKeyRef selects a key of a ConfigMap.
	// +optional
	// +nullable
	ConfigMapKeyRef *ConfigMapKeySelector `json:"configMapKeyRef,omitempty"`

	// SecretKeyRef selects a key of a Secret.
	// +optional
	// +nullable
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// ConfigMapKeySelector selects a key of a ConfigMap in the downstream cluster.
type ConfigMapKeySelector struct {
	// Name of the ConfigMap. An empty name is reported on the BundleDeployment.
	// +optional
	// +nullable
	Name string `json:"name"`
	// Namespace of the ConfigMap. Defaults to the release namespace.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// Key in the ConfigMap. Defaults to "values.yaml".
	// +optional
	// +nullable
	Key string `json:"key,omitempty"`
}

// SecretKeySelector selects a key of a Secret in the downstream cluster.
type SecretKeySelector struct {
	// Name of the Secret. An empty name is reported on the BundleDeployment.
	// +optional
	// +nullable
	Name string `json:"name"`
	// Namespace of the Secret. Defaults to the release namespace.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// Key in the Secret. Defaults to "values.yaml".
	// +optional
	// +nullable
	Key string `json:"key,omitempty"`
}

// CorrectDrift says whether and how the agent restores resources that were changed or deleted
// in the downstream cluster.
type CorrectDrift struct {
	// Enabled turns drift correction on. Defaults to false (drift is only reported).
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// Force uses Helm's force option when correcting drift. Defaults to false.
	// +optional
	Force bool `json:"force,omitempty"`
	// KeepFailHistory keeps the revisions of failed corrections. Defaults to false.
	// +optional
	KeepFailHistory bool `json:"keepFailHistory,omitempty"`
}

// BundleDeploymentOptions are the options that decide what one cluster runs.
type BundleDeploymentOptions struct {
	// DefaultNamespace is the namespace for namespaced resources that name none, used when
	// namespace is empty. Defaults to "default".
	// +optional
	// +nullable
	DefaultNamespace string `json:"defaultNamespace,omitempty"`

	// Namespace is the release namespace; every namespaced resource goes there.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`

	// Helm says which chart to deploy and how.
	// +optional
	Helm *HelmOptions `json:"helm,omitempty"`

	// ServiceAccount is the downstream service account the agent impersonates to deploy.
	// Defaults to the agent's own.
	// +optional
	// +nullable
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// CreateNamespace creates the release namespace when it does not exist. Defaults to true.
	// +optional
	// +nullable
	CreateNamespace *bool `json:"createNamespace,omitempty"`

	// CorrectDrift restores resources that were changed outside Helm.
	// +optional
	CorrectDrift *CorrectDrift `json:"correctDrift,omitempty"`

	// KeepResources keeps the deployed resources when the release is removed, and the copies
	// of downstreamResources when a cluster is no longer targeted. Defaults to false.
	// +optional
	KeepResources bool `json:"keepResources,omitempty"`

	// DeleteNamespace deletes the release namespace when the release is removed.
	// Defaults to false.
	// +optional
	DeleteNamespace bool `json:"deleteNamespace,omitempty"`

	// ForceSyncGeneration forces a redeploy each time it is raised, even when nothing else
	// changed. Defaults to 0.
	// +optional
	ForceSyncGeneration int64 `json:"forceSyncGeneration,omitempty"`

	// Diff says which differences drift detection ignores.
	// +optional
	// +nullable
	Diff *DiffOptions `json:"diff,omitempty"`

	// Ignore says which resource conditions readiness ignores.
	// +optional
	// +nullable
	Ignore *IgnoreOptions `json:"ignore,omitempty"`

	// NamespaceLabels are set on the release namespace downstream (added to its own labels).
	// +optional
	// +nullable
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`

	// NamespaceAnnotations are set on the release namespace downstream (added to its own
	// annotations).
	// +optional
	// +nullable
	NamespaceAnnotations map[string]string `json:"namespaceAnnotations,omitempty"`

	// DeleteCRDResources removes the chart's CustomResourceDefinitions, and with them every
	// custom resource of those kinds, when the release is uninstalled. Defaults to false: CRDs
	// are kept.
	// +optional
	DeleteCRDResources bool `json:"deleteCRDResources,omitempty"`

	// DownstreamResources names Secrets and ConfigMaps of the HelmOp's namespace that are
	// copied into the release namespace of every targeted cluster and kept in sync.
	// +optional
	DownstreamResources []DownstreamResource `json:"downstreamResources,omitempty"`

	// YAML holds overlays for raw YAML bundles built from git. Accepted on a HelmOp and
	// reported as not applicable.
	// +optional
	// +nullable
	YAML *YAMLOptions `json:"yaml,omitempty"`

	// Kustomize holds kustomize options for bundles built from git. Accepted on a HelmOp and
	// reported as not applicable.
	// +optional
	// +nullable
	Kustomize *KustomizeOptions `json:"kustomize,omitempty"`

	// Overwrites lists resources that a git bundle takes over from another bundle. Accepted on
	// a HelmOp and reported as not applicable.
	// +optional
	Overwrites []OverwrittenResource `json:"overwrites,omitempty"`

	// AllowedTargetNamespaceSelector comes from restrictions of git repositories. Accepted on a
	// HelmOp and reported as not applicable.
	// +optional
	// +nullable
	AllowedTargetNamespaceSelector *metav1.LabelSelector `json:"allowedTargetNamespaceSelector,omitempty"`
}

// DiffOptions say which differences drift detection ignores.
type DiffOptions struct {
	// ComparePatches each select resources and say what of them is left out of the comparison.
	// +optional
	// +nullable
	ComparePatches []ComparePatch `json:"comparePatches,omitempty"`
}

// ComparePatch selects resources of the release and removes fields of them, or the whole
// resource, from drift detection. Empty selector fields match anything.
type ComparePatch struct {
	// APIVersion of the resources to match, such as "apps/v1".
	// +optional
	// +nullable
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the resources to match.
	// +optional
	// +nullable
	Kind string `json:"kind,omitempty"`
	// Name of the resource to match.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// Namespace of the resource to match.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// JSONPointers are RFC 6901 pointers of fields to leave out, such as "/spec/replicas".
	// +optional
	// +nullable
	JSONPointers []string `json:"jsonPointers,omitempty"`
	// Operations leave out fields ("remove" with a path) or the whole resource ("ignore").
	// +optional
	// +nullable
	Operations []Operation `json:"operations,omitempty"`
}

// Operation is one step of a ComparePatch.
type Operation struct {
	// Op is "remove" (leave out the field at path) or "ignore" (leave out the resource).
	// +optional
	// +nullable
	Op string `json:"op,omitempty"`
	// Path is the JSON pointer of the field "remove" leaves out.
	// +optional
	// +nullable
	Path string `json:"path,omitempty"`
	// Value is unused by "remove" and "ignore"; it is kept for Fleet manifests that set it.
	// +optional
	// +nullable
	Value string `json:"value,omitempty"`
}

// IgnoreOptions say what readiness ignores.
type IgnoreOptions struct {
	// Conditions each match a resource condition whose every listed field has the given value,
	// such as {type: Ready, status: "False"}; a matching condition does not make the resource
	// not ready.
	// +optional
	// +nullable
	Conditions []map[string]string `json:"conditions,omitempty"`
}

// YAMLOptions are overlays of raw YAML bundles built from git.
type YAMLOptions struct {
	// Overlays names overlay directories.
	// +optional
	// +nullable
	Overlays []string `json:"overlays,omitempty"`
}

// KustomizeOptions are kustomize options of bundles built from git.
type KustomizeOptions struct {
	// Dir is the directory holding kustomization.yaml.
	// +optional
	// +nullable
	Dir string `json:"dir,omitempty"`
}

// OverwrittenResource names a resource a git bundle takes over.
type OverwrittenResource struct {
	// Name of the resource.
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the resource.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Kind of the resource.
	// +optional
	Kind string `json:"kind,omitempty"`
}

// DownstreamResource names a Secret or ConfigMap of the HelmOp's namespace to copy downstream.
type DownstreamResource struct {
	// Kind is "Secret" or "ConfigMap"; any other kind is reported on the HelmOp.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the Secret or ConfigMap in the HelmOp's namespace.
	// +optional
	Name string `json:"name,omitempty"`
}

// BundleTarget selects clusters and may override options for them. A target matches a cluster
// when every criterion it sets matches; a target that sets none matches nothing. With
// targetCustomizationMode FirstMatch the first matching target's options apply; with
// AllMatches the options of every matching target are merged in order.
type BundleTarget struct {
	// Name of the target. Defaults to target000, target001, … by position.
	// +optional
	Name string `json:"name,omitempty"`

	// ClusterName matches the Cluster of that name, or the Cluster whose label
	// management.cattle.io/cluster-display-name has that value.
	// +optional
	// +nullable
	ClusterName string `json:"clusterName,omitempty"`

	// ClusterSelector matches Clusters by label; {} matches every cluster.
	// +optional
	// +nullable
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// ClusterGroup matches the Clusters of the ClusterGroup of that name.
	// +optional
	// +nullable
	ClusterGroup string `json:"clusterGroup,omitempty"`

	// ClusterGroupSelector matches the Clusters of ClusterGroups selected by label.
	// +optional
	// +nullable
	ClusterGroupSelector *metav1.LabelSelector `json:"clusterGroupSelector,omitempty"`

	// DoNotDeploy excludes the matched clusters. Defaults to false.
	// +optional
	DoNotDeploy bool `json:"doNotDeploy,omitempty"`

	// DefaultNamespace overrides the default namespace for the matched clusters.
	// +optional
	// +nullable
	DefaultNamespace string `json:"defaultNamespace,omitempty"`

	// Namespace overrides the release namespace for the matched clusters.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`

	// Helm overrides Helm options for the matched clusters: values and templateValues are
	// deep-merged, other fields replace the HelmOp's when set. A version here is resolved like
	// the HelmOp's.
	// +optional
	Helm *HelmOptions `json:"helm,omitempty"`

	// ServiceAccount overrides the service account for the matched clusters.
	// +optional
	// +nullable
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// CreateNamespace overrides whether the release namespace is created.
	// +optional
	// +nullable
	CreateNamespace *bool `json:"createNamespace,omitempty"`

	// CorrectDrift overrides drift correction for the matched clusters.
	// +optional
	CorrectDrift *CorrectDrift `json:"correctDrift,omitempty"`

	// KeepResources, when true, keeps resources on removal for the matched clusters.
	// +optional
	KeepResources bool `json:"keepResources,omitempty"`

	// DeleteNamespace, when true, deletes the release namespace on removal for the matched
	// clusters.
	// +optional
	DeleteNamespace bool `json:"deleteNamespace,omitempty"`

	// ForceSyncGeneration, when not 0, replaces the HelmOp's for the matched clusters.
	// +optional
	ForceSyncGeneration int64 `json:"forceSyncGeneration,omitempty"`

	// Diff overrides the drift comparison options for the matched clusters.
	// +optional
	// +nullable
	Diff *DiffOptions `json:"diff,omitempty"`

	// Ignore overrides the readiness options for the matched clusters.
	// +optional
	// +nullable
	Ignore *IgnoreOptions `json:"ignore,omitempty"`

	// NamespaceLabels are merged over the HelmOp's for the matched clusters.
	// +optional
	// +nullable
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`

	// NamespaceAnnotations are merged over the HelmOp's for the matched clusters.
	// +optional
	// +nullable
	NamespaceAnnotations map[string]string `json:"namespaceAnnotations,omitempty"`

	// DeleteCRDResources, when true, removes the chart's CRDs on uninstall for the matched
	// clusters.
	// +optional
	DeleteCRDResources bool `json:"deleteCRDResources,omitempty"`

	// DownstreamResources are added to the HelmOp's list for the matched clusters.
	// +optional
	DownstreamResources []DownstreamResource `json:"downstreamResources,omitempty"`

	// YAML is accepted and reported as not applicable to a HelmOp.
	// +optional
	// +nullable
	YAML *YAMLOptions `json:"yaml,omitempty"`

	// Kustomize is accepted and reported as not applicable to a HelmOp.
	// +optional
	// +nullable
	Kustomize *KustomizeOptions `json:"kustomize,omitempty"`

	// Overwrites is accepted and reported as not applicable to a HelmOp.
	// +optional
	Overwrites []OverwrittenResource `json:"overwrites,omitempty"`

	// AllowedTargetNamespaceSelector is accepted and reported as not applicable to a HelmOp.
	// +optional
	// +nullable
	AllowedTargetNamespaceSelector *metav1.LabelSelector `json:"allowedTargetNamespaceSelector,omitempty"`
}

// TargetCustomizationMode says how the options of several matching targets combine.
// +kubebuilder:validation:Enum=FirstMatch;AllMatches
type TargetCustomizationMode string

const (
	// FirstMatch applies the options of the first matching target only.
	FirstMatch TargetCustomizationMode = "FirstMatch"
	// AllMatches merges the options of every matching target, in order.
	AllMatches TargetCustomizationMode = "AllMatches"
)

// BundleTargetRestriction limits the clusters targets may select: when any is set, a cluster is
// targeted only if one restriction matches it too.
type BundleTargetRestriction struct {
	// Name of the restriction.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// ClusterName matches the Cluster of that name.
	// +optional
	// +nullable
	ClusterName string `json:"clusterName,omitempty"`
	// ClusterSelector matches Clusters by label.
	// +optional
	// +nullable
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	// ClusterGroup matches the Clusters of the ClusterGroup of that name.
	// +optional
	// +nullable
	ClusterGroup string `json:"clusterGroup,omitempty"`
	// ClusterGroupSelector matches the Clusters of ClusterGroups selected by label.
	// +optional
	// +nullable
	ClusterGroupSelector *metav1.LabelSelector `json:"clusterGroupSelector,omitempty"`
}

// BundleState is the state of a BundleDeployment as Fleet names it: Ready, NotReady,
// WaitApplied, ErrApplied, OutOfSync, Pending, Modified.
type BundleState string

// BundleRef names the bundles this one waits for.
type BundleRef struct {
	// Name of a Bundle in the same namespace.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// Selector matches Bundles in the same namespace by label.
	// +optional
	// +nullable
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// AcceptedStates are the states of the dependency that let this bundle deploy. Defaults to
	// Ready.
	// +optional
	// +nullable
	AcceptedStates []BundleState `json:"acceptedStates,omitempty"`
}

// RolloutStrategy says how fast a change reaches the targeted clusters.
type RolloutStrategy struct {
	// MaxUnavailable is how many clusters (a number or a percentage of the targeted clusters)
	// may be unavailable during a rollout before it pauses. Defaults to 100%.
	// +optional
	// +nullable
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// MaxUnavailablePartitions is how many partitions (a number or a percentage) may be
	// unavailable before the rollout pauses. Defaults to 0.
	// +optional
	// +nullable
	MaxUnavailablePartitions *intstr.IntOrString `json:"maxUnavailablePartitions,omitempty"`
	// AutoPartitionSize is the size of the partitions made automatically when none are
	// listed (a number or a percentage of the targeted clusters). Defaults to 25%.
	// +optional
	// +nullable
	AutoPartitionSize *intstr.IntOrString `json:"autoPartitionSize,omitempty"`
	// AutoPartitionThreshold is the number of targeted clusters from which partitions are
	// made automatically. Defaults to 200.
	// +optional
	// +nullable
	AutoPartitionThreshold *int `json:"autoPartitionThreshold,omitempty"`
	// MaxNew is how many BundleDeployments are created at once. Defaults to 50.
	// +optional
	// +nullable
	MaxNew *int `json:"maxNew,omitempty"`
	// Partitions are rolled out one after the other, in order.
	// +optional
	// +nullable
	Partitions []Partition `json:"partitions,omitempty"`
	// ProgressDeadlineSeconds is how long a cluster given a new deployment may take to become
	// ready before the rollout halts, in seconds (a helmops extension; Fleet has no such field).
	// While any cluster has failed to apply the new deployment, or is not ready with it within
	// this time, no further cluster receives it. Defaults to 600; 0 or less means no deadline
	// (only failed applies halt).
	// +optional
	// +nullable
	ProgressDeadlineSeconds *int `json:"progressDeadlineSeconds,omitempty"`
}

// Partition is a set of clusters rolled out together.
type Partition struct {
	// Name of the partition.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// MaxUnavailable is how many clusters of the partition (a number or a percentage) may be
	// unavailable before the partition counts as unavailable. Defaults to the rollout's.
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// ClusterName selects the Cluster of that name.
	// +optional
	ClusterName string `json:"clusterName,omitempty"`
	// ClusterSelector selects Clusters by label.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	// ClusterGroup selects the Clusters of the ClusterGroup of that name.
	// +optional
	ClusterGroup string `json:"clusterGroup,omitempty"`
	// ClusterGroupSelector selects the Clusters of ClusterGroups selected by label.
	// +optional
	// +nullable
	ClusterGroupSelector *metav1.LabelSelector `json:"clusterGroupSelector,omitempty"`
}

// BundleResource is content of a bundle built from git. Accepted on a HelmOp and reported as
// not applicable.
type BundleResource struct {
	// Name is the file name.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// Content is the file content.
	// +optional
	// +nullable
	Content string `json:"content,omitempty"`
	// Encoding is empty or base64+gz.
	// +optional
	// +nullable
	Encoding string `json:"encoding,omitempty"`
}

// BundleHelmOptions carries what an agent needs to download a chart itself.
type BundleHelmOptions struct {
	// SecretName is the Secret with the repository credentials; the controller copies it into
	// each targeted cluster's namespace under the same name.
	// +optional
	SecretName string `json:"helmOpSecretName,omitempty"`

	// InsecureSkipTLSVerify skips TLS verification of the repository. Defaults to false.
	// +optional
	InsecureSkipTLSVerify bool `json:"helmOpInsecureSkipTLSVerify,omitempty"`

	// CABundle is a PEM bundle of CAs to trust for the repository.
	// +optional
	// +nullable
	CABundle []byte `json:"helmOpCABundle,omitempty"`

	// ChartDigest pins the content of the chart the controller resolved: "sha256:<hex>" of the
	// chart archive for a Helm repository (the digest its index lists), or of the OCI manifest
	// for an OCI registry. The agent refuses a chart whose content does not match (a version
	// re-published with other content, a moved tag). Empty (no pin) for chart archive URLs,
	// for index entries without a digest, and on a BundleDeployment whose target overrides the
	// chart, repository or version. Written by the controller; defaults to empty.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(sha256:[a-f0-9]{64})?$`
	ChartDigest string `json:"helmOpChartDigest,omitempty"`
}

// BundleSummary counts BundleDeployments by state.
type BundleSummary struct {
	// NotReady counts deployments that are applied but not ready.
	// +optional
	NotReady int `json:"notReady,omitempty"`
	// WaitApplied counts deployments the agent has not applied yet.
	// +optional
	WaitApplied int `json:"waitApplied,omitempty"`
	// ErrApplied counts deployments the agent failed to apply.
	// +optional
	ErrApplied int `json:"errApplied,omitempty"`
	// OutOfSync counts deployments whose applied state is older than their spec.
	// +optional
	OutOfSync int `json:"outOfSync,omitempty"`
	// Modified counts deployments whose resources drifted.
	// +optional
	Modified int `json:"modified,omitempty"`
	// Ready counts ready deployments; always written, also when 0.
	// +optional
	Ready int `json:"ready"`
	// Pending counts deployments not yet picked up.
	// +optional
	Pending int `json:"pending,omitempty"`
	// DesiredReady counts all deployments that should be ready; always written, also when 0.
	// +optional
	DesiredReady int `json:"desiredReady"`
	// NonReadyResources lists up to ten non-ready deployments and why.
	// +optional
	// +nullable
	NonReadyResources []NonReadyResource `json:"nonReadyResources,omitempty"`
}

// NonReadyResource names a non-ready deployment and why it is not ready.
type NonReadyResource struct {
	// Name of the BundleDeployment (namespace/name) or cluster.
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// State is the deployment state, e.g. ErrApplied or NotReady.
	// +optional
	// +nullable
	State string `json:"bundleState,omitempty"`
	// Message says why.
	// +optional
	// +nullable
	Message string `json:"message,omitempty"`
	// ModifiedStatus lists drifted resources.
	// +optional
	// +nullable
	ModifiedStatus []ModifiedStatus `json:"modifiedStatus,omitempty"`
	// NonReadyStatus lists resources that are not ready.
	// +optional
	// +nullable
	NonReadyStatus []NonReadyStatus `json:"nonReadyStatus,omitempty"`
}

// StatusDisplay is a human summary for printer columns and UIs.
type StatusDisplay struct {
	// ReadyBundleDeployments is "ready/total".
	// +optional
	ReadyBundleDeployments string `json:"readyBundleDeployments,omitempty"`
	// State is the worst state among the deployments, empty when all are ready.
	// +optional
	State string `json:"state,omitempty"`
	// Message explains the state.
	// +optional
	Message string `json:"message,omitempty"`
	// Error is true when the state is an error.
	// +optional
	Error bool `json:"error,omitempty"`
}
