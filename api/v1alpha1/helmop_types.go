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

	// Targets select the clusters to deploy to; the first matching target wins. Defaults to the
	// ClusterGroup "default" of the HelmOp's namespace.
	// +optional
	Targets []BundleTarget `json:"targets,omitempty"`

	// Labels are added to the Bundle created from this HelmOp.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// PollingInterval is how often the repository is checked for a newer version matching the
	// constraint, as a Go duration ("30s", "5m", "1h30m"). Defaults to 0: no polling. Polling
	// applies only to a version that is a constraint, not an exact version nor a tarball.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == '0' || (self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('2562047h'))",message="pollingInterval must be 0 or a Go duration with units ns, us, ms, s, m or h, up to 2562047h, such as 30s, 5m, 1h30m or 1.5h"
	PollingInterval *metav1.Duration `json:"pollingInterval,omitempty"`

	// HelmSecretName is a Secret in the HelmOp's namespace with the repository credentials
	// (username/password, cacerts, tls.crt/tls.key, .dockerconfigjson). It is copied to every
	// targeted cluster so agents can download the chart.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	HelmSecretName string `json:"helmSecretName,omitempty"`

	// InsecureSkipTLSVerify skips TLS verification of the repository. Defaults to false.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
}

// HelmOpStatus is what the controller observed.
type HelmOpStatus struct {
	// Conditions: Accepted, Polled, Ready, Reconciling, Stalled.
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
}

// +kubebuilder:object:root=true

// HelmOpList is a list of HelmOps.
type HelmOpList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmOp `json:"items"`
}
