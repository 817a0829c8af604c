package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bundle is what the HelmOp controller writes: the deployment options with the exact resolved
// version, and the targets. It holds no chart content.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fleet,path=bundles
// +kubebuilder:printcolumn:name="Chart",type=string,JSONPath=`.spec.helm.chart`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.helm.version`
// +kubebuilder:printcolumn:name="BundleDeployments-Ready",type=string,JSONPath=`.status.display.readyBundleDeployments`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Bundle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BundleSpec `json:"spec,omitempty"`
	// +optional
	Status BundleStatus `json:"status,omitempty"`
}

// BundleSpec is the deployment options with an exact version, and the targets.
type BundleSpec struct {
	BundleDeploymentOptions `json:",inline"`

	// Paused stops updates to the BundleDeployments. Defaults to false.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// Targets select the clusters.
	// +optional
	Targets []BundleTarget `json:"targets,omitempty"`

	// TargetCustomizationMode says whose options apply when several targets match a cluster:
	// FirstMatch (the default) or AllMatches.
	// +optional
	// +kubebuilder:default=FirstMatch
	TargetCustomizationMode TargetCustomizationMode `json:"targetCustomizationMode,omitempty"`

	// TargetRestrictions, when set, limit the clusters the targets may select.
	// +optional
	TargetRestrictions []BundleTargetRestriction `json:"targetRestrictions,omitempty"`

	// RolloutStrategy says how fast a change reaches the targeted clusters.
	// +optional
	// +nullable
	RolloutStrategy *RolloutStrategy `json:"rolloutStrategy,omitempty"`

	// DependsOn names bundles that must reach an accepted state before this one deploys.
	// +optional
	// +nullable
	DependsOn []BundleRef `json:"dependsOn,omitempty"`

	// HelmOpOptions tell agents how to reach the repository.
	// +optional
	HelmOpOptions *BundleHelmOptions `json:"helmOpOptions,omitempty"`
}

// BundleStatus rolls up the BundleDeployments of the Bundle.
type BundleStatus struct {
	// Conditions: Ready, and conditions that explain why deployments cannot be made.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Summary counts the BundleDeployments by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`

	// Display is a human summary.
	// +optional
	Display StatusDisplay `json:"display,omitempty"`

	// ReadyClusters counts targeted clusters whose deployment is ready.
	// +optional
	ReadyClusters int `json:"readyClusters"`

	// DesiredReadyClusters counts targeted clusters.
	// +optional
	DesiredReadyClusters int `json:"desiredReadyClusters"`

	// NewlyCreated is the number of BundleDeployments created by the last reconcile.
	// +optional
	NewlyCreated int `json:"newlyCreated,omitempty"`

	// Unavailable counts BundleDeployments that are not ready or whose applied deployment ID
	// is not the one in their spec.
	// +optional
	Unavailable int `json:"unavailable"`

	// UnavailablePartitions counts partitions with more unavailable clusters than they allow.
	// +optional
	UnavailablePartitions int `json:"unavailablePartitions"`

	// MaxUnavailable is rolloutStrategy.maxUnavailable as a number of clusters.
	// +optional
	MaxUnavailable int `json:"maxUnavailable"`

	// MaxUnavailablePartitions is rolloutStrategy.maxUnavailablePartitions as a number.
	// +optional
	MaxUnavailablePartitions int `json:"maxUnavailablePartitions"`

	// PartitionStatus lists the rollout partitions in order.
	// +optional
	PartitionStatus []PartitionStatus `json:"partitions,omitempty"`

	// ResourceCounts counts the resources of the release over all targeted clusters, by state.
	// +optional
	ResourceCounts ResourceCounts `json:"resourceCounts,omitempty"`

	// PerClusterResourceCounts counts the resources by state per cluster ("<workspace>/<cluster>").
	// +optional
	PerClusterResourceCounts map[string]*ResourceCounts `json:"perClusterResourceCounts,omitempty"`

	// Resources lists the resources of the release with the clusters they are in each state on.
	// +optional
	Resources []Resource `json:"resources,omitempty"`
}

// PartitionStatus is the state of one rollout partition.
type PartitionStatus struct {
	// Name of the partition.
	// +optional
	Name string `json:"name,omitempty"`
	// Count is the number of clusters in the partition.
	// +optional
	Count int `json:"count,omitempty"`
	// MaxUnavailable is how many clusters of the partition may be unavailable.
	// +optional
	MaxUnavailable int `json:"maxUnavailable,omitempty"`
	// Unavailable counts the clusters of the partition that are unavailable or not yet on the
	// current deployment.
	// +optional
	Unavailable int `json:"unavailable,omitempty"`
	// Summary counts the partition's BundleDeployments by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`
}

// +kubebuilder:object:root=true

// BundleList is a list of Bundles.
type BundleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Bundle `json:"items"`
}
