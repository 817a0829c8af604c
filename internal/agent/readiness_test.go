package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestPodReasonSaysWhyAPodIsNotReady(t *testing.T) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	notReady := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}
	waiting := func(reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", RestartCount: 5, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"ready", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{ready}}}, ""},
		{"succeeded", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, ""},
		{"crash loop", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{notReady},
			ContainerStatuses: []corev1.ContainerStatus{waiting("CrashLoopBackOff", "back-off restarting failed container")}}},
			"Pod p container app CrashLoopBackOff (5 restarts): back-off restarting failed container"},
		{"creating says nothing", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating", "")}}}, ""},
		{"unschedulable", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}}},
			"Pod p Unschedulable: 0/3 nodes are available"},
		{"container failed", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "containerFailed"}}}}}},
			"Pod p container app containerFailed: exit code 1"},
		{"init container first", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}}},
			"Pod p container init ImagePullBackOff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.pod.ObjectMeta = metav1.ObjectMeta{Name: "p"}
			g.Expect(podReason(&tc.pod)).To(Equal(tc.want))
		})
	}
}

func TestExplainFailureWithoutARelease(t *testing.T) {
	waitErr := errors.Join(errors.New("resource Job/ns/j not ready. status: InProgress, message: Job in progress"), context.DeadlineExceeded)
	for _, tc := range []struct {
		name string
		h    v1alpha1.HelmOptions
		err  error
		want string
	}{
		{"timeoutSeconds", v1alpha1.HelmOptions{TimeoutSeconds: 5}, waitErr,
			"timed out after 5s (helm.timeoutSeconds); helm: resource Job/ns/j not ready. status: InProgress, message: Job in progress"},
		{"default timeout", v1alpha1.HelmOptions{}, waitErr,
			"timed out after 5s (the default; set helm.timeoutSeconds to change it); helm: resource Job/ns/j not ready. status: InProgress, message: Job in progress"},
		{"other errors as Helm says them, on one line", v1alpha1.HelmOptions{}, errors.New("failed pre-install:\nbad"), "failed pre-install:; bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := (&Reconciler{}).explainFailure(context.Background(), nil, tc.h, 5*time.Second, tc.err)
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(errors.Is(err, tc.err)).To(BeTrue(), "Helm's error stays in the chain")
		})
	}
}
