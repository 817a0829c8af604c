package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Policy restricts what the HelmOps of its namespace may fetch and use: which repositories and
// charts, which helmSecretName and service accounts, and the defaults of the last two. Several
// Policies in one namespace add up: their allowed lists are joined, any requireServiceAccount
// applies, and the first default by Policy name wins. A namespace without a Policy has no
// restriction. Policies are written by the administrators of a namespace's tenants, never by the
// tenants themselves (see docs/policy.md). The fields are Fleet's; helmops acts on the top-level
// fields and helmOp, and accepts gitRepo without acting on it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=fleet,path=policies
// +kubebuilder:printcolumn:name="Require-ServiceAccount",type=boolean,JSONPath=`.requireServiceAccount`
// +kubebuilder:printcolumn:name="Allowed-Repos",type=string,JSONPath=`.helmOp.allowedHelmRepoPatterns`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// RequireServiceAccount refuses a HelmOp whose spec.serviceAccount is empty once
	// helmOp.defaultServiceAccount has been applied. Defaults to false.
	// +optional
	RequireServiceAccount bool `json:"requireServiceAccount,omitempty"`

	// AllowedServiceAccounts, when not empty, lists the service accounts a HelmOp may name in
	// spec.serviceAccount and in each targets[].serviceAccount (exact names). Defaults to any.
	// +optional
	// +nullable
	AllowedServiceAccounts []string `json:"allowedServiceAccounts,omitempty"`

	// AllowNamespaceCreation is Fleet's switch for creating release namespaces when a service
	// account is required. Accepted; helmops does not act on it (a HelmOp's createNamespace
	// decides).
	// +optional
	AllowNamespaceCreation bool `json:"allowNamespaceCreation,omitempty"`

	// GitRepo holds restrictions of bundles built from git. Accepted; helmops does not act on
	// it.
	// +optional
	GitRepo *GitRepoPolicySpec `json:"gitRepo,omitempty"`

	// HelmOp holds the restrictions and defaults of HelmOps.
	// +optional
	HelmOp *HelmOpPolicySpec `json:"helmOp,omitempty"`
}

// GitRepoPolicySpec restricts bundles built from git. helmops accepts it and does not act on it.
type GitRepoPolicySpec struct {
	// DefaultServiceAccount is the service account of git bundles that name none.
	// +optional
	DefaultServiceAccount string `json:"defaultServiceAccount,omitempty"`
	// DefaultClientSecretName is the client secret of git bundles that name none.
	// +optional
	DefaultClientSecretName string `json:"defaultClientSecretName,omitempty"`
	// AllowedClientSecretNames lists the client secrets git bundles may name.
	// +optional
	// +nullable
	AllowedClientSecretNames []string `json:"allowedClientSecretNames,omitempty"`
	// AllowedRepoPatterns are regular expressions git repository URLs must match.
	// +optional
	// +nullable
	AllowedRepoPatterns []string `json:"allowedRepoPatterns,omitempty"`
}

// HelmOpPolicySpec restricts HelmOps and gives them defaults.
type HelmOpPolicySpec struct {
	// DefaultServiceAccount is used as spec.serviceAccount of a HelmOp that names none, before
	// requireServiceAccount and allowedServiceAccounts are checked.
	// +optional
	DefaultServiceAccount string `json:"defaultServiceAccount,omitempty"`

	// DefaultHelmSecretName is used as spec.helmSecretName of a HelmOp that names none, before
	// allowedHelmSecretNames is checked.
	// +optional
	DefaultHelmSecretName string `json:"defaultHelmSecretName,omitempty"`

	// AllowedHelmSecretNames, when not empty, lists the secrets a HelmOp may name in
	// spec.helmSecretName (exact names). Defaults to any secret of the namespace.
	// +optional
	// +nullable
	AllowedHelmSecretNames []string `json:"allowedHelmSecretNames,omitempty"`

	// AllowedHelmRepoPatterns, when not empty, are regular expressions (RE2, matched against
	// the whole value) that where a HelmOp fetches from must match: spec.helm.repo, or
	// spec.helm.chart when it is a chart archive URL, and the same of every target that
	// overrides them. URLs are compared in a normal form: lower-case scheme and host, no
	// userinfo, default port, trailing dot or fragment, the path cleaned of "." and "..", no
	// trailing slash. Defaults to any.
	// +optional
	// +nullable
	AllowedHelmRepoPatterns []string `json:"allowedHelmRepoPatterns,omitempty"`

	// AllowedChartPatterns, when not empty, are regular expressions (RE2, matched against the
	// whole value) that the chart must match: the chart name of spec.helm.chart, the last path
	// element of an oci:// reference, or the normal form of a chart archive URL, and the same
	// of every target that overrides them. Defaults to any.
	// +optional
	// +nullable
	AllowedChartPatterns []string `json:"allowedChartPatterns,omitempty"`
}

// PolicyList is a list of Policies.
//
// +kubebuilder:object:root=true
type PolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Policy `json:"items"`
}
