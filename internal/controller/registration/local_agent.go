package registration

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/controller/cluster"
)

// localRecheck is how often the local agent's credential secret is checked (and written again
// when someone deleted it) without any change to the Cluster.
const localRecheck = 10 * time.Minute

// LocalAgent hands the agent of the local cluster (Cluster local in fleet-local: the management
// cluster itself) its credential, the way a Cluster with spec.kubeConfigSecret gets one: the
// ServiceAccount a registration grants, with a kubeconfig for it written into Secret, where the
// agent the helmops chart installs reads it (helmops agent --credential-secret). The agent so
// reaches its BundleDeployments with its own scoped rights, not with those it installs charts
// with.
type LocalAgent struct {
	Client client.Client
	// Direct reads and writes ServiceAccounts, Roles and Secrets without a cache.
	Direct client.Client
	Tokens kubernetes.Interface
	// Server is how the local agent reaches the API server: the controller's own configuration
	// (in a Pod, the in-cluster one), not --api-server-url, which is for agents elsewhere.
	Server Server
	// Secret is where the credential is written on the management cluster.
	Secret client.ObjectKey
	Clock  clock.PassiveClock
}

// SetupWithManager watches the local Cluster.
func (r *LocalAgent) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	local := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == cluster.LocalWorkspace && o.GetName() == cluster.LocalCluster
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("localagent").
		For(&v1alpha1.Cluster{}, builder.WithPredicates(local, predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// Reconcile grants the local Cluster's agent its account and writes its credential.
func (r *LocalAgent) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &v1alpha1.Cluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the account goes with the Cluster it is owned by
	}
	now := r.Clock.Now()
	data, renew, err := agentCredential(ctx, r.Direct, r.Tokens, r.Server, c, now)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("granting the agent of Cluster %s its credential: %w", klog.KObj(c), err)
	}
	if err := deliverCredential(ctx, r.Direct, r.Secret, data); err != nil {
		return ctrl.Result{}, fmt.Errorf("the agent of Cluster %s: %w", klog.KObj(c), err)
	}
	return ctrl.Result{RequeueAfter: minPositive(renew.Sub(now), localRecheck)}, nil
}
