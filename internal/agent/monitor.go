package agent

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/driftfilter"
)

// manifestObjects parses a release manifest into objects, with the release namespace filled in
// for namespaced kinds that name none.
func manifestObjects(manifest, namespace string, mapper meta.RESTMapper) ([]*unstructured.Unstructured, error) {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var out []*unstructured.Unstructured
	for _, k := range keys {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(docs[k]), &m); err != nil {
			return nil, fmt.Errorf("parsing the release manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" {
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, fmt.Errorf("%s %s of the release: %w", gvk.Kind, u.GetName(), err)
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				u.SetNamespace(namespace)
			}
		} else {
			u.SetNamespace("")
		}
		out = append(out, u)
	}
	return out, nil
}

// observation is what the monitor found about a release's resources.
type observation struct {
	resources []v1alpha1.BundleDeploymentResource
	nonReady  []v1alpha1.NonReadyStatus
	modified  []v1alpha1.ModifiedStatus
}

// observe reads every resource of the manifest from the downstream cluster, computes its
// kstatus and compares it with the manifest. diff.comparePatches leave resources or fields out
// of the comparison, ignore.conditions leave conditions out of the kstatus.
func observe(ctx context.Context, c client.Reader, objs []*unstructured.Unstructured, opts v1alpha1.BundleDeploymentOptions) (observation, error) {
	var patches []v1alpha1.ComparePatch
	if opts.Diff != nil {
		patches = opts.Diff.ComparePatches
	}
	var ignoreConditions []map[string]string
	if opts.Ignore != nil {
		ignoreConditions = opts.Ignore.Conditions
	}
	var o observation
	waitForJobs := opts.HelmOrEmpty().WaitForJobs
	for _, want := range objs {
		if err := o.add(ctx, c, want, patches, ignoreConditions, waitForJobs); err != nil {
			return o, err
		}
	}
	return o, nil
}

// add observes one resource of the manifest: whether it is missing or differs from the manifest,
// and whether it is ready.
func (o *observation) add(ctx context.Context, c client.Reader, want *unstructured.Unstructured, patches []v1alpha1.ComparePatch, ignoreConditions []map[string]string, waitForJobs bool) error {
	gvk := want.GroupVersionKind()
	id := v1alpha1.BundleDeploymentResource{Kind: gvk.Kind, APIVersion: want.GetAPIVersion(), Namespace: want.GetNamespace(), Name: want.GetName()}
	o.resources = append(o.resources, id)
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	err := c.Get(ctx, client.ObjectKey{Namespace: want.GetNamespace(), Name: want.GetName()}, live)
	w, l, ignored := driftfilter.ForDrift(patches, want, live)
	switch {
	case apierrors.IsNotFound(err) && !ignored:
		o.modified = append(o.modified, v1alpha1.ModifiedStatus{Kind: id.Kind, APIVersion: id.APIVersion, Namespace: id.Namespace, Name: id.Name, Missing: true})
		return nil
	case apierrors.IsNotFound(err):
		return nil // left out of the comparison by an "ignore" compare patch
	case err != nil:
		return fmt.Errorf("reading %s: %w", resourceID(id.Kind, id.Namespace, id.Name), err)
	}
	if paths := drift(w, l); !ignored && len(paths) > 0 {
		o.modified = append(o.modified, v1alpha1.ModifiedStatus{Kind: id.Kind, APIVersion: id.APIVersion, Namespace: id.Namespace, Name: id.Name,
			Patch: "changed: " + strings.Join(paths, ", ")})
	}
	nr, err := notReady(ctx, c, id, live, ignoreConditions, waitForJobs)
	if nr != nil {
		o.nonReady = append(o.nonReady, *nr)
	}
	return err
}

// notReady is the non-ready status of a live resource, from its kstatus and, for workloads, why
// their Pods are not ready; nil when it is Current. With waitForJobs a Job is ready only once it
// completed (kstatus counts a started Job as Current, as Helm does without waitForJobs).
func notReady(ctx context.Context, c client.Reader, id v1alpha1.BundleDeploymentResource, live *unstructured.Unstructured, ignoreConditions []map[string]string, waitForJobs bool) (*v1alpha1.NonReadyStatus, error) {
	res, err := status.Compute(driftfilter.ForReadiness(ignoreConditions, live))
	if err != nil {
		return &v1alpha1.NonReadyStatus{Kind: id.Kind, APIVersion: id.APIVersion, Namespace: id.Namespace, Name: id.Name,
			Summary: v1alpha1.NonReadySummary{State: string(status.UnknownStatus), Error: true, Message: []string{err.Error()}}}, nil
	}
	if res.Status == status.CurrentStatus && waitForJobs && isJob(live.GroupVersionKind()) && !jobComplete(live) {
		res = &status.Result{Status: status.InProgressStatus, Message: "Job has not completed (helm.waitForJobs)"}
	}
	if res.Status == status.CurrentStatus {
		return nil, nil
	}
	s := v1alpha1.NonReadySummary{State: string(res.Status), Error: res.Status == status.FailedStatus}
	if res.Message != "" {
		s.Message = []string{res.Message}
	}
	reasons, err := podReasons(ctx, c, live)
	if err != nil {
		return nil, err
	}
	s.Message = append(s.Message, reasons...)
	return &v1alpha1.NonReadyStatus{Kind: id.Kind, APIVersion: id.APIVersion, Namespace: id.Namespace, Name: id.Name, Summary: s}, nil
}

// drift returns the paths of fields the manifest sets that the live object does not match.
// Only fields present in the manifest count, so values the server fills in (defaults, status,
// metadata such as uid and managedFields, Helm's own labels and annotations) are ignored.
// Within metadata only labels and annotations are compared.
func drift(want, live *unstructured.Unstructured) []string {
	var paths []string
	for k, w := range want.Object {
		switch k {
		case "apiVersion", "kind", "status":
			continue
		case "metadata":
			wm, _ := w.(map[string]any)
			lm, _ := live.Object["metadata"].(map[string]any)
			for _, mk := range []string{"labels", "annotations"} {
				if wv, ok := wm[mk]; ok {
					paths = append(paths, diffValue("metadata."+mk, wv, lm[mk])...)
				}
			}
		case "stringData":
			if want.GetKind() == "Secret" && want.GroupVersionKind().Group == "" {
				sd, _ := w.(map[string]any)
				ld, _ := live.Object["data"].(map[string]any)
				for dk, dv := range sd {
					s, _ := dv.(string)
					if ld[dk] != base64.StdEncoding.EncodeToString([]byte(s)) {
						paths = append(paths, "stringData."+dk)
					}
				}
				continue
			}
			paths = append(paths, diffValue(k, w, live.Object[k])...)
		default:
			paths = append(paths, diffValue(k, w, live.Object[k])...)
		}
	}
	sort.Strings(paths)
	return paths
}

func diffValue(path string, want, live any) []string {
	switch w := want.(type) {
	case nil:
		return nil
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			if len(w) == 0 && live == nil {
				return nil
			}
			return []string{path}
		}
		var out []string
		for k, v := range w {
			out = append(out, diffValue(path+"."+k, v, l[k])...)
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok {
			if len(w) == 0 && live == nil {
				return nil
			}
			return []string{path}
		}
		if len(w) != len(l) {
			return []string{path}
		}
		var out []string
		for i := range w {
			out = append(out, diffValue(fmt.Sprintf("%s[%d]", path, i), w[i], l[i])...)
		}
		return out
	default:
		if scalarEqual(want, live) {
			return nil
		}
		return []string{path}
	}
}

func scalarEqual(a, b any) bool {
	if af, ok := number(a); ok {
		bf, ok := number(b)
		return ok && af == bf
	}
	if as, ok := a.(string); ok {
		bs, ok := b.(string)
		if !ok {
			return false
		}
		if as == bs {
			return true
		}
		// Quantities are normalised by the server ("0.5" is stored as "500m").
		qa, errA := resource.ParseQuantity(as)
		qb, errB := resource.ParseQuantity(bs)
		return errA == nil && errB == nil && qa.Cmp(qb) == 0
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func isJob(gvk schema.GroupVersionKind) bool { return gvk.Group == "batch" && gvk.Kind == "Job" }

// jobComplete reports whether a Job has the condition Complete=True.
func jobComplete(job *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(job.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Complete" && m["status"] == "True" {
			return true
		}
	}
	return false
}
