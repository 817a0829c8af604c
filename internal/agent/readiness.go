package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	release "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/deploystate"
)

// notReadyInterval is how often a deployed release whose resources are not ready yet is checked
// again, so Ready follows a rollout within seconds rather than at the next drift check.
const notReadyInterval = 5 * time.Second

// monitorInterval is when to look at a deployed release again.
func (r *Reconciler) monitorInterval(f *facts) time.Duration {
	if len(f.nonReady) > 0 && r.DriftInterval > notReadyInterval {
		return notReadyInterval
	}
	return r.DriftInterval
}

// maxPodReasons bounds how many Pods' reasons one non-ready workload reports.
const maxPodReasons = 3

// workloadKinds own Pods through spec.selector; when one is not ready, its Pods say why.
var workloadKinds = map[string]bool{
	"apps/Deployment": true, "apps/StatefulSet": true, "apps/DaemonSet": true, "apps/ReplicaSet": true, "batch/Job": true,
}

// podReasons explains why a workload is not ready from its Pods that are not: a container
// waiting or terminated with a reason (CrashLoopBackOff, ImagePullBackOff, Error), or a Pod the
// scheduler cannot place. Pods that are Ready, or that completed, say nothing.
func podReasons(ctx context.Context, c client.Reader, workload *unstructured.Unstructured) ([]string, error) {
	gvk := workload.GroupVersionKind()
	if !workloadKinds[gvk.Group+"/"+gvk.Kind] {
		return nil, nil
	}
	raw, found, err := unstructured.NestedMap(workload.Object, "spec", "selector")
	if err != nil || !found {
		return nil, nil
	}
	ls := &metav1.LabelSelector{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, ls); err != nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil, nil
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(workload.GetNamespace()), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the Pods of %s %s/%s: %w", gvk.Kind, workload.GetNamespace(), workload.GetName(), err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var out []string
	for i := range pods.Items {
		if why := podReason(&pods.Items[i]); why != "" && len(out) < maxPodReasons {
			out = append(out, why)
		}
	}
	return out, nil
}

// podReason is why one Pod is not ready, or "" when it is ready, finished or just starting.
func podReason(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return fmt.Sprintf("Pod %s %s: %s", p.Name, c.Reason, c.Message)
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return containerReason(p.Name, cs.Name, w.Reason, w.Message, cs.RestartCount)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return containerReason(p.Name, cs.Name, orDefault(t.Reason, "Error"), strings.TrimSpace(fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message)), cs.RestartCount)
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return strings.TrimSpace(fmt.Sprintf("Pod %s Failed: %s %s", p.Name, p.Status.Reason, p.Status.Message))
	}
	return ""
}

func containerReason(pod, container, reason, message string, restarts int32) string {
	s := fmt.Sprintf("Pod %s container %s %s", pod, container, reason)
	if restarts > 0 {
		s += fmt.Sprintf(" (%d restarts)", restarts)
	}
	if message != "" {
		s += ": " + message
	}
	return s
}

// failedDeploy is a failed install or upgrade: Helm's error, made readable, with what the agent
// sees of the resources that are not ready.
type failedDeploy struct {
	msg string
	err error
}

func (e *failedDeploy) Error() string { return e.msg }
func (e *failedDeploy) Unwrap() error { return e.err }

// explainFailure rewrites the error of a failed install or upgrade so that it says first what
// the user needs: a wait that ran out of time names the timeout; the hooks that failed and the
// revision's resources that are not ready are listed with their state and their Pods' reasons;
// Helm's own message follows.
func (r *Reconciler) explainFailure(ctx context.Context, rel *release.Release, h v1alpha1.HelmOptions, timeout time.Duration, err error) error {
	var parts []string
	helmMsg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		helmMsg = strings.ReplaceAll(helmMsg, context.DeadlineExceeded.Error(), "")
		setting := "helm.timeoutSeconds"
		if h.TimeoutSeconds <= 0 {
			setting = "the default; set helm.timeoutSeconds to change it"
		}
		parts = append(parts, fmt.Sprintf("timed out after %s (%s)", timeout, setting))
	}
	helmMsg = strings.Join(strings.FieldsFunc(helmMsg, func(r rune) bool { return r == '\n' }), "; ")
	if rel != nil {
		parts = append(parts, r.failedHooks(ctx, rel, h)...)
		if objs, perr := manifestObjects(rel.Manifest, rel.Namespace, r.Helm.RESTMapper()); perr == nil {
			if nr := r.notReadyNow(ctx, objs, h); len(nr) > 0 {
				parts = append(parts, "not ready: "+deploystate.NonReadyMessage(nr))
			}
		}
	}
	if len(parts) == 0 {
		return &failedDeploy{msg: helmMsg, err: err}
	}
	return &failedDeploy{msg: strings.Join(parts, "; ") + "; helm: " + helmMsg, err: err}
}

// failedHooks describes the hooks of the revision that failed and their resources that are not
// ready.
func (r *Reconciler) failedHooks(ctx context.Context, rel *release.Release, h v1alpha1.HelmOptions) []string {
	var out []string
	for _, hk := range rel.Hooks {
		if hk.LastRun.Phase != release.HookPhaseFailed {
			continue
		}
		objs, err := manifestObjects(hk.Manifest, rel.Namespace, r.Helm.RESTMapper())
		if err != nil {
			continue
		}
		events := make([]string, 0, len(hk.Events))
		for _, e := range hk.Events {
			events = append(events, e.String())
		}
		msg := fmt.Sprintf("failed hook %s %s (%s)", hk.Kind, hk.Name, strings.Join(events, ","))
		if nr := r.notReadyNow(ctx, objs, h); len(nr) > 0 {
			msg = fmt.Sprintf("failed hook (%s): %s", strings.Join(events, ","), deploystate.NonReadyMessage(nr))
		}
		out = append(out, msg)
	}
	return out
}

// notReadyNow returns the objects that exist and are not ready; objects that cannot be read are
// left out (this only adds detail to an error already reported).
func (r *Reconciler) notReadyNow(ctx context.Context, objs []*unstructured.Unstructured, h v1alpha1.HelmOptions) []v1alpha1.NonReadyStatus {
	var out []v1alpha1.NonReadyStatus
	for _, want := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(want.GroupVersionKind())
		if err := r.Downstream.Get(ctx, client.ObjectKey{Namespace: want.GetNamespace(), Name: want.GetName()}, live); err != nil {
			continue
		}
		id := v1alpha1.BundleDeploymentResource{Kind: live.GetKind(), APIVersion: live.GetAPIVersion(), Namespace: live.GetNamespace(), Name: live.GetName()}
		if nr, err := notReady(ctx, r.Downstream, id, live, nil, h.WaitForJobs); err == nil && nr != nil {
			out = append(out, *nr)
		}
	}
	return out
}
