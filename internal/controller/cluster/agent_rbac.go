package cluster

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/clusterns"
)

const (
	// AgentRoleName is the Role and RoleBinding that let a cluster's agent work in its cluster
	// namespace.
	AgentRoleName = "helmops-agent"
	// agentRBACAnnotation on a cluster namespace records that the agent's Role was granted there.
	agentRBACAnnotation = "fleet.cattle.io/agent-rbac"
)

// AgentServiceAccount is the upstream ServiceAccount, in the Cluster's workspace, that the
// cluster's agent uses. Registration (or the controller, for a Cluster it installs the agent of)
// creates it with its workspace rights.
func AgentServiceAccount(clusterName string) string { return "helmops-agent-" + clusterName }

// AgentNamespaceRules are what an agent needs in its cluster namespace: its BundleDeployments and
// the repository secrets and downstreamResources copied there, events on its BundleDeployments and
// its heartbeat, nothing else.
func AgentNamespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// get, list, watch: its cache and watch; update, patch: add and remove its finalizer.
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"bundledeployments"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
		// The status it reports (only ever patched).
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"bundledeployments/status"}, Verbs: []string{"patch"}},
		// metadata.finalizers where OwnerReferencesPermissionEnforcement is on.
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"bundledeployments/finalizers"}, Verbs: []string{"update"}},
		// The copied repository secrets and downstreamResources (only copies live here).
		{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
		// Events on its BundleDeployments (a chart refused for its content).
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// Its heartbeat: renew the one Lease the controller created, create none.
		{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, ResourceNames: []string{clusterns.AgentLease}, Verbs: []string{"get", "update"}},
	}
}

func agentRole(namespace string) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRoleName, Namespace: namespace, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		Rules:      AgentNamespaceRules(),
	}
}

// agentRBACVersion is the value of agentRBACAnnotation once the current rights are granted; a
// namespace granted an older set is granted again (its Role updated).
const agentRBACVersion = "granted-v5"

// grantAgent creates the agent's Role and RoleBinding and its heartbeat Lease in a cluster
// namespace once, and marks the namespace so later reconciles cost nothing.
func (r *Reconciler) grantAgent(ctx context.Context, c *v1alpha1.Cluster, ns *corev1.Namespace) error {
	if ns.Annotations[agentRBACAnnotation] == agentRBACVersion {
		return nil
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRoleName, Namespace: ns.Name, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AgentRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: AgentServiceAccount(c.Name), Namespace: c.Namespace}},
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: clusterns.AgentLease, Namespace: ns.Name, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}}}
	for _, obj := range []client.Object{agentRole(ns.Name), binding, lease} {
		if err := r.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("granting the agent of Cluster %s/%s its rights in %s: %w", c.Namespace, c.Name, ns.Name, err)
		}
	}
	// A Role granted by an older version gets the current rules.
	role := &rbacv1.Role{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: AgentRoleName}, role); err != nil {
		return fmt.Errorf("reading the agent's Role in %s: %w", ns.Name, err)
	}
	if want := agentRole(ns.Name).Rules; !equality.Semantic.DeepEqual(role.Rules, want) {
		role.Rules = want
		if err := r.Client.Update(ctx, role); err != nil {
			return fmt.Errorf("updating the agent's Role in %s: %w", ns.Name, err)
		}
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Annotations[agentRBACAnnotation] = agentRBACVersion
	return r.Client.Patch(ctx, ns, patch)
}
