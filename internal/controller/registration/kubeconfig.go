package registration

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/helmops/helmops/api/v1alpha1"
)

// Kubeconfig is a kubeconfig for a ServiceAccount token on server, with namespace as the default.
func Kubeconfig(server Server, namespace, account, token string) ([]byte, error) {
	if server.URL == "" {
		return nil, fmt.Errorf("no API server URL to write into kubeconfigs: start the controller with --api-server-url")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["management"] = &clientcmdapi.Cluster{Server: server.URL, CertificateAuthorityData: server.CAData}
	cfg.AuthInfos[account] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["management"] = &clientcmdapi.Context{Cluster: "management", AuthInfo: account, Namespace: namespace}
	cfg.CurrentContext = "management"
	return clientcmd.Write(*cfg)
}

// AdmissionPolicyName names the ValidatingAdmissionPolicy (and its binding) that ties a
// ClusterRegistration's token label to the credential that creates it.
const AdmissionPolicyName = "helmops-cluster-registration"

// AdmissionPolicy returns the policy and binding: a request made with a registration token's
// ServiceAccount may only create ClusterRegistrations labelled with that very token, so the
// controller's expiry check applies to the token really used. Requests by anyone else are not
// constrained (an administrator may create registrations by hand).
func AdmissionPolicy() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	fail := admissionregistrationv1.Fail
	prefix := "'system:serviceaccount:' + request.namespace + ':" + v1alpha1.RegistrationTokenServiceAccountPrefix + "'"
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: AdmissionPolicyName, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{v1alpha1.GroupVersion.Version},
							Resources: []string{"clusterregistrations"},
						},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "made-with-a-registration-token",
				Expression: "request.userInfo.username.startsWith(" + prefix + ")",
			}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "has(object.metadata.labels) && '" + v1alpha1.RegistrationTokenLabel + "' in object.metadata.labels && " +
					"request.userInfo.username == " + prefix + " + object.metadata.labels['" + v1alpha1.RegistrationTokenLabel + "']",
				Message: "a ClusterRegistration made with a registration token must carry label " + v1alpha1.RegistrationTokenLabel + " naming that token",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AdmissionPolicyName, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        AdmissionPolicyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return policy, binding
}

// EnsureAdmissionPolicy writes the policy and its binding.
func EnsureAdmissionPolicy(ctx context.Context, c client.Client) error {
	want, wantBinding := AdmissionPolicy()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: want.Name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, policy, func() error {
		policy.Labels = want.Labels
		policy.Spec = want.Spec
		return nil
	}); err != nil {
		return fmt.Errorf("writing ValidatingAdmissionPolicy %s: %w", want.Name, err)
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: wantBinding.Name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, binding, func() error {
		binding.Labels = wantBinding.Labels
		binding.Spec = wantBinding.Spec
		return nil
	}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("writing ValidatingAdmissionPolicyBinding %s: %w", wantBinding.Name, err)
	}
	return nil
}
