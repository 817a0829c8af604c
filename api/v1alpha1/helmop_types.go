package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmOp deploys a chart from a Helm repository, an OCI registry or a chart tarball URL to the
// targeted clusters. The controller resolves the version once, centrally, and writes a Bundle
// with the exact version; agents download and install the chart.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fleet,path=helmops
// +kubebuilder:printcolumn:name="Repo",type=string,JSONPath=`.spec.helm.repo`
// +kubebuilder:printcolumn:name="Chart",type=string,JSONPath=`.spec.helm.chart`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Latest",type=string,JSONPath=`.status.latestAvailableVersion`,priority=1
// +kubebuilder:printcolumn:name="BundleDeployments-Ready",type=string,JSONPath=`.status.display.readyBundleDeployments`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HelmOp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec HelmOpSpec `json:"spec,omitempty"`
	// +optional
	Status HelmOpStatus `json:"status,omitempty"`
}

// HelmOpSpec is what the user asks for.
type HelmOpSpec struct {
	BundleDeploymentOptions `json:",inline"`

	// Paused stops updates to the deployments; the version is still resolved and shown.
	// Defaults to false.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// Targets select the clusters to deploy to. Defaults to the ClusterGroup "default" of the
	// HelmOp's namespace.
	// +optional
	Targets []BundleTarget `json:"targets,omitempty"`

	// TargetCustomizationMode says whose options apply when several targets match a cluster:
	// FirstMatch (the default) takes the first matching target's, AllMatches merges every
	// matching target's in order.
	// +optional
	// +kubebuilder:default=FirstMatch
	TargetCustomizationMode TargetCustomizationMode `json:"targetCustomizationMode,omitempty"`

	// TargetRestrictions, when set, limit the clusters the targets may select to those one of
	// them matches too.
	// +optional
	TargetRestrictions []BundleTargetRestriction `json:"targetRestrictions,omitempty"`

	// RolloutStrategy says how fast a change reaches the targeted clusters. It is copied to
	// the Bundle.
	// +optional
	// +nullable
	RolloutStrategy *RolloutStrategy `json:"rolloutStrategy,omitempty"`

	// DependsOn names bundles that must reach an accepted state before this one deploys. It
	// is copied to the Bundle.
	// +optional
	// +nullable
	DependsOn []BundleRef `json:"dependsOn,omitempty"`

	// Resources holds file content of bundles built from git. Accepted on a HelmOp and
	// reported as not applicable.
	// +optional
	// +nullable
	Resources []BundleResource `json:"resources,omitempty"`

	// ContentsID refers to stored content of bundles built from git. Accepted on a HelmOp and
	// reported as not applicable.
	// +optional
	// +nullable
	ContentsID string `json:"contentsId,omitempty"`

	// ValuesHash is written by the controller that builds a bundle. Accepted on a HelmOp and
	// reported as not applicable.
	// +optional
	ValuesHash string `json:"valuesHash,omitempty"`

	// HelmOpOptions are what the controller writes on the Bundle from helmSecretName and
	// insecureSkipTLSVerify. Accepted on a HelmOp and reported as not applicable: set those
	// two fields instead.
	// +optional
	// +nullable
	HelmOpOptions *BundleHelmOptions `json:"helmOpOptions,omitempty"`

	// Labels are added to the Bundle created from this HelmOp.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// PollingInterval is how often the repository is checked for a newer version matching the
	// constraint, as a Go duration ("30s", "5m", "1h30m"). Defaults to 0: no polling. Polling
	// applies only to a version that is a constraint, not an exact version nor a tarball.
	// +optional
	// +nullable
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == '0' || (self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('2562047h'))",message="pollingInterval must be 0 or a Go duration with units ns, us, ms, s, m or h, up to 2562047h, such as 30s, 5m, 1h30m or 1.5h"
	PollingInterval *metav1.Duration `json:"pollingInterval,omitempty"`

	// HelmSecretName is a Secret in the HelmOp's namespace with the repository credentials
	// (username/password, cacerts, tls.crt/tls.key, .dockerconfigjson). It is copied to every
	// targeted cluster so agents can download the chart.
	// +optional
	// +nullable
	// +kubebuilder:validation:MaxLength=253
	HelmSecretName string `json:"helmSecretName,omitempty"`

	// InsecureSkipTLSVerify skips TLS verification of the repository. Defaults to false.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
}

// HelmOpStatus is what the controller observed.
type HelmOpStatus struct {
	// Conditions: Accepted, Polled, NewerVersionAvailable, Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Version is the exact chart version resolved and written to the Bundle.
	// +optional
	Version string `json:"version,omitempty"`

	// LatestAvailableVersion is the newest stable (non-prerelease) version the repository
	// offered when the HelmOp was last resolved, whether or not the version constraint allows it.
	// Empty until a resolution lists the repository's versions (an exact OCI version is looked up
	// by its tag alone, without listing) and for chart archive URLs.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LatestAvailableVersion string `json:"latestAvailableVersion,omitempty"`

	// LastPollingTime is the start of the last polling attempt, successful or not.
	// +optional
	LastPollingTime *metav1.Time `json:"lastPollingTriggered,omitempty"`

	// LastHandledReconcileAt is the value of the fleet.cattle.io/reconcile-requested-at
	// annotation the controller last acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// ReadyClusters counts targeted clusters whose deployment is ready.
	// +optional
	ReadyClusters int `json:"readyClusters"`

	// DesiredReadyClusters counts targeted clusters.
	// +optional
	DesiredReadyClusters int `json:"desiredReadyClusters"`

	// Summary counts the BundleDeployments by state.
	// +optional
	Summary BundleSummary `json:"summary,omitempty"`

	// Display is a human summary.
	// +optional
	Display StatusDisplay `json:"display,omitempty"`

	// ResourceCounts counts the resources of the release over all targeted clusters, by state.
	// +optional
	ResourceCounts ResourceCounts `json:"resourceCounts,omitempty"`

	// PerClusterResourceCounts counts the resources of the release by state, per cluster
	// (keyed by cluster namespace/name).
	// +optional
	PerClusterResourceCounts map[string]*ResourceCounts `json:"perClusterResourceCounts,omitempty"`

	// Resources lists the resources of the release, each with the clusters it is in each
	// state on.
	// +optional
	Resources []Resource `json:"resources,omitempty"`
}

// ResourceCounts counts resources by state. Every count is always written, also when 0.
type ResourceCounts struct {
	// +optional
	Ready int `json:"ready"`
	// DesiredReady counts all resources.
	// +optional
	DesiredReady int `json:"desiredReady"`
	// WaitApplied counts resources of deployments the agent has not applied yet.
	// +optional
	WaitApplied int `json:"waitApplied"`
	// +optional
	Modified int `json:"modified"`
	// Orphaned counts resources that exist but are no longer part of the release.
	// +optional
	Orphaned int `json:"orphaned"`
	// +optional
	Missing int `json:"missing"`
	// Unknown counts resources whose state could not be read.
	// +optional
	Unknown int `json:"unknown"`
	// +optional
	NotReady int `json:"notReady"`
}

// Resource is one resource of the release, over every targeted cluster.
type Resource struct {
	// +optional
	// +nullable
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	// +nullable
	Kind string `json:"kind,omitempty"`
	// Type is the lower-cased kind qualified by its API group, such as "apps.deployment".
	// +optional
	Type string `json:"type,omitempty"`
	// ID is namespace/name, or name for a cluster-scoped resource.
	// +optional
	// +nullable
	ID string `json:"id,omitempty"`
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// IncompleteState is true when the state of some clusters could not be listed in full.
	// +optional
	IncompleteState bool `json:"incompleteState,omitempty"`
	// State is the worst state over the clusters, such as Ready, NotReady, Modified, Missing.
	// +optional
	State string `json:"state,omitempty"`
	// Error is true when the state is an error.
	// +optional
	Error bool `json:"error,omitempty"`
	// Transitioning is true while the resource is progressing on some cluster.
	// +optional
	Transitioning bool `json:"transitioning,omitempty"`
	// Message explains the state.
	// +optional
	// +nullable
	Message string `json:"message,omitempty"`
	// PerClusterState lists, for each state, the clusters (namespace/name) where the resource
	// is in that state.
	// +optional
	// +nullable
	PerClusterState *PerClusterState `json:"perClusterState,omitempty"`
}

// PerClusterState lists clusters by the state a resource is in there.
type PerClusterState struct {
	// +optional
	Ready []string `json:"ready,omitempty"`
	// +optional
	WaitApplied []string `json:"waitApplied,omitempty"`
	// +optional
	Pending []string `json:"pending,omitempty"`
	// +optional
	Modified []string `json:"modified,omitempty"`
	// +optional
	Orphaned []string `json:"orphaned,omitempty"`
	// +optional
	Missing []string `json:"missing,omitempty"`
	// +optional
	Unknown []string `json:"unknown,omitempty"`
	// +optional
	NotReady []string `json:"notReady,omitempty"`
}

// +kubebuilder:object:root=true

// HelmOpList is a list of HelmOps.
type HelmOpList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmOp `json:"items"`
}
