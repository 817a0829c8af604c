package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Registration labels and keys. An agent registers with a token's credential by creating a
// ClusterRegistration labelled with the token's name; an admission policy checks that the label
// names the token whose credential made the request, so a registration always answers to the
// token that was really used.
const (
	// RegistrationTokenLabel on a ClusterRegistration names the ClusterRegistrationToken whose
	// credential created it.
	RegistrationTokenLabel = "fleet.cattle.io/registration-token"
	// RegistrationTokenServiceAccountPrefix prefixes the name of the ServiceAccount of a token:
	// helmops-registration-<token name>, in the token's namespace.
	RegistrationTokenServiceAccountPrefix = "helmops-registration-"
	// RegistrationKubeconfigKey is the key of a kubeconfig in registration and agent credential
	// secrets.
	RegistrationKubeconfigKey = "kubeconfig"
	// Keys of an agent credential secret besides the kubeconfig.
	CredentialClusterNameKey      = "clusterName"
	CredentialWorkspaceKey        = "workspace"
	CredentialClusterNamespaceKey = "clusterNamespace"
	// RegistrationSecretType is the type of the secret holding a granted agent credential.
	RegistrationSecretType = "fleet.cattle.io/cluster-registration-values"
	// ClusterRegistrationGrantedCondition (ClusterRegistration) is True when the registration
	// was accepted and its credential written; False names why it was refused.
	ClusterRegistrationGrantedCondition = "Granted"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Secret-Name",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expires`

// ClusterRegistrationToken lets agents register new clusters in its namespace (a workspace). The
// controller makes a credential for it, in the secret status.secretName, that can do one thing:
// create a ClusterRegistration in this namespace.
type ClusterRegistrationToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ClusterRegistrationTokenSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterRegistrationTokenStatus `json:"status,omitempty"`
}

// ClusterRegistrationTokenSpec is what an administrator writes.
type ClusterRegistrationTokenSpec struct {
	// TTL is how long after its creation the token registers clusters; empty or "0" means it
	// does not expire. Clusters registered before it expires keep working: they use their own
	// credentials.
	// +optional
	// +nullable
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == '0' || (self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('2562047h'))",message="must be a Go duration with units ns, us, µs, ms, s, m or h (e.g. 15s, 5m, 2h, 1h30m)"
	TTL *metav1.Duration `json:"ttl,omitempty"`
}

// ClusterRegistrationTokenStatus is written by the controller.
type ClusterRegistrationTokenStatus struct {
	// Conditions: Ready (the registration credential is in status.secretName and the token has
	// not expired).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Expires is when the token stops registering clusters; empty when it does not expire.
	// +optional
	Expires *metav1.Time `json:"expires,omitempty"`
	// SecretName is the secret, in the token's namespace, holding the registration kubeconfig
	// (key "kubeconfig") to give an agent (`helmops agent --registration-kubeconfig`).
	// +optional
	// +nullable
	SecretName string `json:"secretName,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterRegistrationTokenList is a list of ClusterRegistrationTokens.
type ClusterRegistrationTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterRegistrationToken `json:"items"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster-Name",type=string,JSONPath=`.status.clusterName`
// +kubebuilder:printcolumn:name="Granted",type=boolean,JSONPath=`.status.granted`

// ClusterRegistration is an agent's request to join the workspace it is created in. Agents create
// it with a registration token's credential; the controller creates or finds the Cluster with
// the same client ID and hands the agent a credential of its own.
type ClusterRegistration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ClusterRegistrationSpec `json:"spec,omitempty"`
	// +optional
	Status ClusterRegistrationStatus `json:"status,omitempty"`
}

// ClusterRegistrationSpec is written by the registering agent.
type ClusterRegistrationSpec struct {
	// ClientID identifies the downstream cluster across registrations (the agent's
	// --client-id, default the UID of its kube-system namespace). A registration with the
	// client ID of an existing Cluster of the workspace re-registers that Cluster.
	// +optional
	// +nullable
	// +kubebuilder:validation:MaxLength=253
	ClientID string `json:"clientID,omitempty"`
	// ClientRandom is a random string the agent generated for this registration; the granted
	// credential's secret name is derived from it, so only this agent knows where to read it.
	// +optional
	// +nullable
	// +kubebuilder:validation:MaxLength=128
	ClientRandom string `json:"clientRandom,omitempty"`
	// ClusterLabels are set on a Cluster the registration creates.
	// +optional
	// +nullable
	ClusterLabels map[string]string `json:"clusterLabels,omitempty"`
}

// ClusterRegistrationStatus is written by the controller.
type ClusterRegistrationStatus struct {
	// Conditions: Granted (True with the cluster's name, or False naming why the registration
	// was refused).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ClusterName is the Cluster this registration was matched to or created.
	// +optional
	// +nullable
	ClusterName string `json:"clusterName,omitempty"`
	// Granted is true once the agent's credential was written.
	// +optional
	Granted bool `json:"granted,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterRegistrationList is a list of ClusterRegistrations.
type ClusterRegistrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterRegistration `json:"items"`
}

// CredentialSecretName is the name of the secret, in the registration's namespace, that holds
// the credential granted to a registration. It is derived from the client's random string, which
// only the registering agent and the controller know.
func CredentialSecretName(r *ClusterRegistration) string {
	return "helmops-agent-credential-" + shortHash(r.Spec.ClientID+"/"+r.Spec.ClientRandom)
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
