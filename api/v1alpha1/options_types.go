package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmOptions says which chart to deploy and how Helm installs it.
type HelmOptions struct {
	// Repo is the chart repository: an http(s) Helm repository URL, or an oci:// reference that
	// names the chart itself (then chart stays empty). Empty when chart is a tarball URL.
	// +optional
	Repo string `json:"repo,omitempty"`

	// Chart is the chart name in the repository, or a URL of a chart archive ending in .tgz.
	// +optional
	Chart string `json:"chart,omitempty"`

	// Version is an exact chart version, empty or "*" for the newest stable version, or a
	// Masterminds/semver v3 constraint such as "0.2.x" or ">= 1.0, < 2". On a Bundle and a
	// BundleDeployment it is always the exact version that was resolved.
	// +optional
	Version string `json:"version,omitempty"`

	// ReleaseName is the Helm release name. Defaults to the HelmOp's name.
	// +optional
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ReleaseName string `json:"releaseName,omitempty"`

	// Values are the chart values. They are deep-merged under per-target values.
	// +optional
	Values *GenericMap `json:"values,omitempty"`

	// ValuesFrom reads values from ConfigMaps and Secrets in the downstream cluster; they are
	// merged in order, and values take precedence over them.
	// +optional
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
}

// ValuesFrom names one ConfigMap or Secret key holding values in YAML.
type ValuesFrom struct {
	// ConfigMapKeyRef selects a key of a ConfigMap.
	// +optional
	ConfigMapKeyRef *ConfigMapKeySelector `json:"configMapKeyRef,omitempty"`

	// SecretKeyRef selects a key of a Secret.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// ConfigMapKeySelector selects a key of a ConfigMap in the downstream cluster.
type ConfigMapKeySelector struct {
	// Name of the ConfigMap.
	// +required
	Name string `json:"name"`
	// Namespace of the ConfigMap. Defaults to the release namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key in the ConfigMap. Defaults to "values.yaml".
	// +optional
	Key string `json:"key,omitempty"`
}

// SecretKeySelector selects a key of a Secret in the downstream cluster.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	Name string `json:"name"`
	// Namespace of the Secret. Defaults to the release namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key in the Secret. Defaults to "values.yaml".
	// +optional
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
	DefaultNamespace string `json:"defaultNamespace,omitempty"`

	// Namespace is the release namespace; every namespaced resource goes there.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Helm says which chart to deploy and how.
	// +optional
	Helm *HelmOptions `json:"helm,omitempty"`

	// ServiceAccount is the downstream service account the agent impersonates to deploy.
	// Defaults to the agent's own.
	// +optional
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// CreateNamespace creates the release namespace when it does not exist. Defaults to true.
	// +optional
	CreateNamespace *bool `json:"createNamespace,omitempty"`

	// CorrectDrift restores resources that were changed outside Helm.
	// +optional
	CorrectDrift *CorrectDrift `json:"correctDrift,omitempty"`

	// KeepResources keeps the deployed resources when the release is removed. Defaults to false.
	// +optional
	KeepResources bool `json:"keepResources,omitempty"`

	// DeleteNamespace deletes the release namespace when the release is removed.
	// Defaults to false.
	// +optional
	DeleteNamespace bool `json:"deleteNamespace,omitempty"`
}

// BundleTarget selects clusters and may override options for them. A target matches a cluster
// when every criterion it sets matches; a target that sets none matches nothing.
type BundleTarget struct {
	// Name of the target. Defaults to target000, target001, … by position.
	// +optional
	Name string `json:"name,omitempty"`

	// ClusterName matches the Cluster of that name.
	// +optional
	ClusterName string `json:"clusterName,omitempty"`

	// ClusterSelector matches Clusters by label; {} matches every cluster.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// ClusterGroup matches the Clusters of the ClusterGroup of that name.
	// +optional
	ClusterGroup string `json:"clusterGroup,omitempty"`

	// ClusterGroupSelector matches the Clusters of ClusterGroups selected by label.
	// +optional
	ClusterGroupSelector *metav1.LabelSelector `json:"clusterGroupSelector,omitempty"`

	// DoNotDeploy excludes the matched clusters. Defaults to false.
	// +optional
	DoNotDeploy bool `json:"doNotDeploy,omitempty"`

	// DefaultNamespace overrides the default namespace for the matched clusters.
	// +optional
	DefaultNamespace string `json:"defaultNamespace,omitempty"`

	// Namespace overrides the release namespace for the matched clusters.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Helm overrides Helm options for the matched clusters: values are deep-merged, other
	// fields replace the HelmOp's when set. A version here is resolved like the HelmOp's.
	// +optional
	Helm *HelmOptions `json:"helm,omitempty"`
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
	CABundle []byte `json:"helmOpCABundle,omitempty"`
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
	// Ready counts ready deployments.
	// +optional
	Ready int `json:"ready,omitempty"`
	// Pending counts deployments not yet picked up.
	// +optional
	Pending int `json:"pending,omitempty"`
	// DesiredReady counts all deployments that should be ready.
	// +optional
	DesiredReady int `json:"desiredReady,omitempty"`
	// NonReadyResources lists up to ten non-ready deployments and why.
	// +optional
	NonReadyResources []NonReadyResource `json:"nonReadyResources,omitempty"`
}

// NonReadyResource names a non-ready deployment and why it is not ready.
type NonReadyResource struct {
	// Name of the BundleDeployment (namespace/name) or cluster.
	Name string `json:"name,omitempty"`
	// State is the deployment state, e.g. ErrApplied or NotReady.
	State string `json:"bundleState,omitempty"`
	// Message says why.
	Message string `json:"message,omitempty"`
	// ModifiedStatus lists drifted resources.
	ModifiedStatus []ModifiedStatus `json:"modifiedStatus,omitempty"`
	// NonReadyStatus lists resources that are not ready.
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
