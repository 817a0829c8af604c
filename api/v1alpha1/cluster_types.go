package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster is one downstream cluster, registered by its agent or created by a user. Its labels
// are what targets select on.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fleet,path=clusters
// +kubebuilder:printcolumn:name="Bundles-Ready",type=string,JSONPath=`.status.display.readyBundles`
// +kubebuilder:printcolumn:name="Last-Seen",type=date,JSONPath=`.status.agent.lastSeen`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ClusterSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterSpec configures a downstream cluster.
type ClusterSpec struct {
	// Paused stops updates to every BundleDeployment of the cluster. Defaults to false.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// ClusterStatus is what the controller and the agent observed.
type ClusterStatus struct {
	// Conditions: Ready (the agent was seen recently).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Namespace is the cluster namespace on the management cluster that holds its
	// BundleDeployments and copied secrets.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Agent is what the cluster's agent reported.
	// +optional
	Agent AgentStatus `json:"agent,omitempty"`

	// Summary counts the cluster's BundleDeployments by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`

	// ReadyHelmOps counts HelmOps ready on this cluster.
	// +optional
	ReadyHelmOps int `json:"readyHelmOps"`

	// DesiredReadyHelmOps counts HelmOps targeting this cluster.
	// +optional
	DesiredReadyHelmOps int `json:"desiredReadyHelmOps"`

	// Display is a human summary.
	// +optional
	Display ClusterDisplay `json:"display,omitempty"`
}

// AgentStatus is the agent's heartbeat.
type AgentStatus struct {
	// LastSeen is the time of the agent's last heartbeat.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// Version is the agent's helmops version.
	// +optional
	Version string `json:"version,omitempty"`
}

// ClusterDisplay is a human summary.
type ClusterDisplay struct {
	// ReadyBundles is "ready/total".
	// +optional
	ReadyBundles string `json:"readyBundles,omitempty"`
	// State is the worst state of the cluster's deployments.
	// +optional
	State string `json:"state,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterList is a list of Clusters.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}

// ClusterGroup selects Clusters of its namespace by label.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fleet,path=clustergroups
// +kubebuilder:printcolumn:name="Clusters-Ready",type=string,JSONPath=`.status.display.readyClusters`
// +kubebuilder:printcolumn:name="Bundles-Ready",type=string,JSONPath=`.status.display.readyBundles`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ClusterGroupSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterGroupStatus `json:"status,omitempty"`
}

// ClusterGroupSpec selects clusters.
type ClusterGroupSpec struct {
	// Selector matches Clusters in the group's namespace by label; {} matches every cluster,
	// no selector matches none.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ClusterGroupStatus counts the group's clusters.
type ClusterGroupStatus struct {
	// Conditions: Ready (every cluster of the group is ready).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ClusterCount counts the clusters of the group.
	// +optional
	ClusterCount int `json:"clusterCount"`

	// NonReadyClusterCount counts the clusters that are not ready.
	// +optional
	NonReadyClusterCount int `json:"nonReadyClusterCount"`

	// NonReadyClusters names up to ten non-ready clusters.
	// +optional
	NonReadyClusters []string `json:"nonReadyClusters,omitempty"`

	// Summary counts the BundleDeployments of the group's clusters by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`

	// Display is a human summary.
	// +optional
	Display ClusterGroupDisplay `json:"display,omitempty"`
}

// ClusterGroupDisplay is a human summary.
type ClusterGroupDisplay struct {
	// ReadyClusters is "ready/total".
	// +optional
	ReadyClusters string `json:"readyClusters,omitempty"`
	// ReadyBundles is "ready/total".
	// +optional
	ReadyBundles string `json:"readyBundles,omitempty"`
	// State is the worst state.
	// +optional
	State string `json:"state,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterGroupList is a list of ClusterGroups.
type ClusterGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterGroup `json:"items"`
}
