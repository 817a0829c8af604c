// Package v1alpha1 holds the fleet.cattle.io/v1alpha1 API that helmops serves: HelmOp, Bundle,
// BundleDeployment, Cluster, ClusterGroup, ClusterRegistrationToken and ClusterRegistration. Every field a HelmOp user writes has the JSON name
// Fleet gives it, so Fleet's HelmOp manifests apply unchanged. This package imports only
// apimachinery.
//
// +kubebuilder:object:generate=true
// +groupName=fleet.cattle.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every helmops kind.
var GroupVersion = schema.GroupVersion{Group: "fleet.cattle.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the kinds of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&HelmOp{}, &HelmOpList{},
		&Bundle{}, &BundleList{},
		&BundleDeployment{}, &BundleDeploymentList{},
		&Cluster{}, &ClusterList{},
		&ClusterGroup{}, &ClusterGroupList{},
		&ClusterRegistrationToken{}, &ClusterRegistrationTokenList{},
		&ClusterRegistration{}, &ClusterRegistrationList{},
		&Policy{}, &PolicyList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
