package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
