package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

const (
	// LocalWorkspace is the workspace namespace of the local cluster.
	LocalWorkspace = "fleet-local"
	// LocalCluster is the name of the Cluster that stands for the management cluster itself.
	LocalCluster = "local"
	// LocalClusterLabel is the label Bootstrap puts on the local Cluster and the default
	// ClusterGroup selects: name=local.
	LocalClusterLabel = "name"
)

// Bootstrap creates namespace fleet-local, Cluster local (labelled name=local) and ClusterGroup
// default selecting it, so a HelmOp in fleet-local without targets deploys to the management
// cluster. It only creates what is missing and never changes existing objects, so it is safe to
// run at every start. It only writes, so it works before a manager's cache has started.
func Bootstrap(ctx context.Context, c client.Client) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LocalWorkspace}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{
			Name: LocalCluster, Namespace: LocalWorkspace,
			Labels: map[string]string{LocalClusterLabel: LocalCluster},
		}},
		&v1alpha1.ClusterGroup{
			ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultClusterGroup, Namespace: LocalWorkspace},
			Spec: v1alpha1.ClusterGroupSpec{Selector: &metav1.LabelSelector{
				MatchLabels: map[string]string{LocalClusterLabel: LocalCluster},
			}},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap: creating %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	return nil
}
