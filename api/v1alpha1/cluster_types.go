package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
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

	// TemplateValues are free-form values that ${ .ClusterValues.x } templates in the values of
	// HelmOps targeting this cluster read.
	// +optional
	// +nullable
	TemplateValues *GenericMap `json:"templateValues,omitempty"`

	// ClientID identifies the downstream cluster across registrations: a ClusterRegistration with
	// this client ID (made by an agent with a ClusterRegistrationToken) re-registers this Cluster.
	// Set by registration; unique across workspaces.
	// +optional
	// +nullable
	ClientID string `json:"clientID,omitempty"`

	// KubeConfigSecret names a Secret of the Cluster's namespace holding a kubeconfig of the
	// downstream cluster (key "value", or "kubeconfig"): the controller installs the agent there and
	// uninstalls it when the Cluster is deleted.
	// +optional
	// +nullable
	KubeConfigSecret string `json:"kubeConfigSecret,omitempty"`

	// KubeConfigSecretNamespace is the namespace of kubeConfigSecret. Only the Cluster's own
	// namespace (or empty) is accepted: a Cluster never reads another namespace's secrets.
	// +optional
	// +nullable
	KubeConfigSecretNamespace string `json:"kubeConfigSecretNamespace,omitempty"`

	// RedeployAgentGeneration reinstalls the agent of a Cluster with kubeConfigSecret when it
	// differs from status.agentDeployedGeneration. Defaults to 0.
	// +optional
	RedeployAgentGeneration int64 `json:"redeployAgentGeneration,omitempty"`

	// AgentEnvVars are environment variables of an agent Fleet deploys. Accepted and not
	// applicable.
	// +optional
	// +nullable
	AgentEnvVars []corev1.EnvVar `json:"agentEnvVars,omitempty"`

	// AgentNamespace is the downstream namespace the controller installs the agent into (with
	// kubeConfigSecret); default helmops-system.
	// +optional
	// +nullable
	AgentNamespace string `json:"agentNamespace,omitempty"`

	// PrivateRepoURL is the image registry of an agent Fleet deploys. Accepted and not
	// applicable.
	// +optional
	// +nullable
	PrivateRepoURL string `json:"privateRepoURL,omitempty"`

	// AgentTolerations are tolerations of an agent Fleet deploys. Accepted and not applicable.
	// +optional
	// +nullable
	AgentTolerations []corev1.Toleration `json:"agentTolerations,omitempty"`

	// AgentAffinity is the affinity of an agent Fleet deploys. Accepted and not applicable.
	// +optional
	// +nullable
	AgentAffinity *corev1.Affinity `json:"agentAffinity,omitempty"`

	// AgentResources are the resource requirements of an agent Fleet deploys. Accepted and not
	// applicable.
	// +optional
	// +nullable
	AgentResources *corev1.ResourceRequirements `json:"agentResources,omitempty"`

	// HostNetwork runs an agent Fleet deploys in the host network. Accepted and not applicable.
	// +optional
	// +nullable
	HostNetwork *bool `json:"hostNetwork,omitempty"`

	// AgentSchedulingCustomization sets the priority class and disruption budget of an agent
	// Fleet deploys. Accepted and not applicable.
	// +optional
	// +nullable
	AgentSchedulingCustomization *AgentSchedulingCustomization `json:"agentSchedulingCustomization,omitempty"`

	// AgentPullSecrets are image pull secrets of an agent Fleet deploys. Accepted and not
	// applicable.
	// +optional
	// +nullable
	AgentPullSecrets *[]corev1.LocalObjectReference `json:"agentPullSecrets,omitempty"`
}

// AgentSchedulingCustomization is how Fleet schedules an agent it deploys.
type AgentSchedulingCustomization struct {
	// PriorityClass of the agent.
	// +optional
	PriorityClass *PriorityClassSpec `json:"priorityClass,omitempty"`
	// PodDisruptionBudget of the agent.
	// +optional
	PodDisruptionBudget *PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitempty"`
}

// PriorityClassSpec is a priority class of an agent.
type PriorityClassSpec struct {
	// Value is the priority.
	// +optional
	Value int `json:"value,omitempty"`
	// PreemptionPolicy is Never or PreemptLowerPriority.
	// +optional
	PreemptionPolicy *corev1.PreemptionPolicy `json:"preemptionPolicy,omitempty"`
}

// PodDisruptionBudgetSpec is a disruption budget of an agent.
type PodDisruptionBudgetSpec struct {
	// MinAvailable is a number or a percentage.
	// +optional
	MinAvailable string `json:"minAvailable,omitempty"`
	// MaxUnavailable is a number or a percentage.
	// +optional
	MaxUnavailable string `json:"maxUnavailable,omitempty"`
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

	// ResourceCounts counts the resources of the cluster's releases by state.
	// +optional
	ResourceCounts ResourceCounts `json:"resourceCounts,omitempty"`

	// ReadyGitRepos is always 0: helmops has no GitRepos. Kept for Fleet clients.
	// +optional
	ReadyGitRepos int `json:"readyGitRepos"`

	// DesiredReadyGitRepos is always 0: helmops has no GitRepos. Kept for Fleet clients.
	// +optional
	DesiredReadyGitRepos int `json:"desiredReadyGitRepos"`

	FleetAgentStatus `json:",inline"`
}

// FleetAgentStatus holds what Fleet's controller records about an agent it deployed. helmops
// does not deploy agents and never writes these; they are accepted so that Fleet status
// round-trips.
type FleetAgentStatus struct {
	// +optional
	// +nullable
	AgentEnvVarsHash string `json:"agentEnvVarsHash,omitempty"`
	// +optional
	// +nullable
	AgentPrivateRepoURL string `json:"agentPrivateRepoURL,omitempty"`
	// +optional
	// +nullable
	AgentHostNetwork bool `json:"agentHostNetwork,omitempty"`
	// +optional
	// +nullable
	AgentDeployedGeneration *int64 `json:"agentDeployedGeneration,omitempty"`
	// +optional
	AgentMigrated bool `json:"agentMigrated,omitempty"`
	// +optional
	AgentNamespaceMigrated bool `json:"agentNamespaceMigrated,omitempty"`
	// +optional
	CattleNamespaceMigrated bool `json:"cattleNamespaceMigrated,omitempty"`
	// +optional
	AgentAffinityHash string `json:"agentAffinityHash,omitempty"`
	// +optional
	// +nullable
	AgentResourcesHash string `json:"agentResourcesHash,omitempty"`
	// +optional
	// +nullable
	AgentTolerationsHash string `json:"agentTolerationsHash,omitempty"`
	// +optional
	AgentConfigChanged bool `json:"agentConfigChanged,omitempty"`
	// +optional
	// +nullable
	APIServerURL string `json:"apiServerURL,omitempty"`
	// +optional
	// +nullable
	APIServerCAHash string `json:"apiServerCAHash,omitempty"`
	// +optional
	// +nullable
	AgentTLSMode string `json:"agentTLSMode,omitempty"`
	// +optional
	GarbageCollectionInterval *metav1.Duration `json:"garbageCollectionInterval,omitempty"`
	// +optional
	AgentSchedulingCustomizationHash string `json:"agentSchedulingCustomizationHash,omitempty"`
	// +optional
	Scheduled bool `json:"scheduled,omitempty"`
	// +optional
	ActiveSchedule bool `json:"activeSchedule,omitempty"`
}

// AgentStatus is the agent's heartbeat.
type AgentStatus struct {
	// LastSeen is the time of the agent's last heartbeat.
	// +optional
	// +nullable
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// Version is the agent's helmops version.
	// +optional
	Version string `json:"version,omitempty"`
	// Namespace is the downstream namespace the agent runs in, when it reports one.
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
}

// ClusterDisplay is a human summary.
type ClusterDisplay struct {
	// ReadyBundles is "ready/total".
	// +optional
	ReadyBundles string `json:"readyBundles,omitempty"`
	// State is the worst state of the cluster's deployments.
	// +optional
	// +nullable
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
	// +nullable
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
	// +nullable
	NonReadyClusters []string `json:"nonReadyClusters,omitempty"`

	// Summary counts the BundleDeployments of the group's clusters by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`

	// ResourceCounts counts the resources of the group's clusters' releases by state.
	// +optional
	ResourceCounts ResourceCounts `json:"resourceCounts,omitempty"`

	// Display is a human summary.
	// +optional
	Display ClusterGroupDisplay `json:"display,omitempty"`
}

// ClusterGroupDisplay is a human summary.
type ClusterGroupDisplay struct {
	// ReadyClusters is "ready/total".
	// +optional
	// +nullable
	ReadyClusters string `json:"readyClusters,omitempty"`
	// ReadyBundles is "ready/total".
	// +optional
	// +nullable
	ReadyBundles string `json:"readyBundles,omitempty"`
	// State is the worst state.
	// +optional
	// +nullable
	State string `json:"state,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterGroupList is a list of ClusterGroups.
type ClusterGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterGroup `json:"items"`
}
