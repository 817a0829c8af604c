package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"oras.land/oras-go/v2/registry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/controller/shard"
)

// RepositoryIndex is the HelmOp field index of the repositories a HelmOp follows (by Key).
const RepositoryIndex = "notify.repository"

// followed lists the repositories (and, for Helm repositories, the charts) whose new versions
// can change what a HelmOp resolves to: the helm block's and each target's that has its own
// version constraint. Exact versions, tagged OCI references and chart archive URLs follow
// nothing: a notification does not touch them.
func followed(op *v1alpha1.HelmOp) []Target {
	var out []Target
	add := func(ref chartsource.Ref) {
		kind, err := chartsource.Classify(ref)
		if err != nil || kind == chartsource.KindTarball || chartversion.IsStatic(ref.Version) {
			return
		}
		repo := strings.TrimSpace(ref.Repo)
		t := Target{}
		if kind == chartsource.KindOCI {
			r, err := registry.ParseReference(strings.TrimRight(repo[len("oci://"):], "/"))
			if err != nil || r.Reference != "" {
				return // a tag in the reference is an exact version
			}
		} else {
			t.Chart = strings.TrimSpace(ref.Chart)
		}
		key, ok := Key(repo)
		if !ok {
			return
		}
		t.Key = key
		for _, have := range out {
			if have == t {
				return
			}
		}
		out = append(out, t)
	}
	helm := op.Spec.HelmOrEmpty()
	add(chartsource.Ref{Repo: helm.Repo, Chart: helm.Chart, Version: helm.Version})
	for _, t := range op.Spec.Targets {
		if t.Helm == nil || t.Helm.Version == "" {
			continue
		}
		add(chartsource.Ref{Repo: firstOf(t.Helm.Repo, helm.Repo), Chart: firstOf(t.Helm.Chart, helm.Chart), Version: t.Helm.Version})
	}
	return out
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// indexRepositories is the RepositoryIndex function.
func indexRepositories(o client.Object) []string {
	op, ok := o.(*v1alpha1.HelmOp)
	if !ok {
		return nil
	}
	var keys []string
	for _, t := range followed(op) {
		if !containsString(keys, t.Key) {
			keys = append(keys, t.Key)
		}
	}
	return keys
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// helmOpsFollowing lists this shard's HelmOps that follow target.
func helmOpsFollowing(ctx context.Context, c client.Reader, shardID string, target Target) ([]*v1alpha1.HelmOp, error) {
	list := &v1alpha1.HelmOpList{}
	if err := c.List(ctx, list, client.MatchingFields{RepositoryIndex: target.Key}); err != nil {
		return nil, fmt.Errorf("listing the HelmOps that use %s: %w", target.Key, err)
	}
	var out []*v1alpha1.HelmOp
	for i := range list.Items {
		op := &list.Items[i]
		if !shard.Matches(op, shardID) || !op.DeletionTimestamp.IsZero() {
			continue
		}
		for _, f := range followed(op) {
			if f.Key == target.Key && (target.Chart == "" || f.Chart == target.Chart) {
				out = append(out, op)
				break
			}
		}
	}
	return out, nil
}

// requestReconcile sets the reconcile-requested annotation of op to now, as `helmops reconcile`
// does: the controller that owns op (this replica, the leader, whichever shard) resolves it again
// and revalidates its repository.
func requestReconcile(ctx context.Context, c client.Writer, op *v1alpha1.HelmOp, now time.Time) error {
	patch := client.MergeFrom(op.DeepCopy())
	if op.Annotations == nil {
		op.Annotations = map[string]string{}
	}
	op.Annotations[v1alpha1.ReconcileRequestedAnnotation] = now.UTC().Format(time.RFC3339Nano)
	return c.Patch(ctx, op, patch)
}
