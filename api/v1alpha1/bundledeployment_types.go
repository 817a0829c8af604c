package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BundleDeployment is what one cluster must run: the exact chart and version with the options
// merged for that cluster. It lives in the cluster's namespace on the management cluster; the
// cluster's agent applies it and writes its status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fleet,path=bundledeployments
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.options.helm.version`
// +kubebuilder:printcolumn:name="Deployed",type=string,JSONPath=`.status.conditions[?(@.type=="Deployed")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BundleDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BundleDeploymentSpec `json:"spec,omitempty"`
	// +optional
	Status BundleDeploymentStatus `json:"status,omitempty"`
}

// BundleDeploymentSpec is what one cluster must run.
type BundleDeploymentSpec struct {
	// DeploymentID is a stable hash of everything that must cause a redeploy.
	// +optional
	DeploymentID string `json:"deploymentID,omitempty"`

	// Options are the Bundle's options merged with the matching target's.
	// +optional
	Options BundleDeploymentOptions `json:"options,omitempty"`

	// HelmChartOptions tell the agent how to reach the repository.
	// +optional
	HelmChartOptions *BundleHelmOptions `json:"helmChartOptions,omitempty"`

	// Paused stops the agent from applying changes. Defaults to false.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// BundleDeploymentStatus is what the agent observed downstream.
type BundleDeploymentStatus struct {
	// Conditions: Installed, Deployed, Ready, Monitored.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// AppliedDeploymentID is the deploymentID of the last successful deploy.
	// +optional
	AppliedDeploymentID string `json:"appliedDeploymentID,omitempty"`

	// Release is the Helm release the agent manages.
	// +optional
	Release *ReleaseInfo `json:"release,omitempty"`

	// Ready is true when every resource of the release is ready.
	// +optional
	Ready bool `json:"ready,omitempty"`

	// NonModified is true when no resource of the release drifted.
	// +optional
	NonModified bool `json:"nonModified,omitempty"`

	// Resources lists the resources of the release.
	// +optional
	Resources []BundleDeploymentResource `json:"resources,omitempty"`

	// NonReadyStatus lists resources that are not ready.
	// +optional
	NonReadyStatus []NonReadyStatus `json:"nonReadyStatus,omitempty"`

	// ModifiedStatus lists resources that differ from the release or are missing.
	// +optional
	ModifiedStatus []ModifiedStatus `json:"modifiedStatus,omitempty"`

	// Display is a human summary.
	// +optional
	Display BundleDeploymentDisplay `json:"display,omitempty"`
}

// ReleaseInfo describes a Helm release.
type ReleaseInfo struct {
	// Name of the release.
	Name string `json:"name,omitempty"`
	// Namespace of the release.
	Namespace string `json:"namespace,omitempty"`
	// Revision is the release revision.
	Revision int `json:"revision,omitempty"`
	// ChartVersion is the deployed chart version.
	ChartVersion string `json:"chartVersion,omitempty"`
	// Status is Helm's release status, e.g. deployed or failed.
	Status string `json:"status,omitempty"`
}

// BundleDeploymentResource identifies a resource of a release.
type BundleDeploymentResource struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
}

// NonReadyStatus is a resource that is not ready, with its kstatus.
type NonReadyStatus struct {
	// UID of the resource.
	// +optional
	// +nullable
	UID string `json:"uid,omitempty"`
	// +optional
	// +nullable
	Kind string `json:"kind,omitempty"`
	// +optional
	// +nullable
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// Summary is the kstatus state and message.
	// +optional
	Summary NonReadySummary `json:"summary,omitempty"`
}

// NonReadySummary is a resource's kstatus.
type NonReadySummary struct {
	// +optional
	State string `json:"state,omitempty"`
	// +optional
	Error bool `json:"error,omitempty"`
	// Transitioning is true while the resource is still progressing.
	// +optional
	Transitioning bool `json:"transitioning,omitempty"`
	// +optional
	Message []string `json:"message,omitempty"`
}

// ModifiedStatus is a resource that drifted from the release.
type ModifiedStatus struct {
	// +optional
	// +nullable
	Kind string `json:"kind,omitempty"`
	// +optional
	// +nullable
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	// +nullable
	Namespace string `json:"namespace,omitempty"`
	// +optional
	// +nullable
	Name string `json:"name,omitempty"`
	// Missing is true when the resource must be created: it was deleted, or (with exist) it
	// exists but the release does not own it.
	// +optional
	Missing bool `json:"missing,omitempty"`
	// Exist is true, with missing, when the resource exists but the release does not own it.
	// +optional
	Exist bool `json:"exist,omitempty"`
	// Delete is true when the resource exists but is not part of the release.
	// +optional
	Delete bool `json:"delete,omitempty"`
	// Patch summarises the difference.
	// +optional
	// +nullable
	Patch string `json:"patch,omitempty"`
}

// BundleDeploymentDisplay is a human summary.
type BundleDeploymentDisplay struct {
	Deployed  string `json:"deployed,omitempty"`
	Monitored string `json:"monitored,omitempty"`
	State     string `json:"state,omitempty"`
}

// +kubebuilder:object:root=true

// BundleDeploymentList is a list of BundleDeployments.
type BundleDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BundleDeployment `json:"items"`
}
