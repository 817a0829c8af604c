// Package scheme builds the runtime.Scheme helmops clients and managers use: the Kubernetes
// built-in kinds, CustomResourceDefinitions and the fleet.cattle.io kinds.
package scheme

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/helmops/helmops/api/v1alpha1"
)

// New returns a new scheme with the built-in and fleet.cattle.io kinds.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // only on a programming error in the registered types
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
