package resourcecounts

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

var (
	cm     = v1alpha1.BundleDeploymentResource{APIVersion: "v1", Kind: "ConfigMap", Namespace: "app", Name: "cfg"}
	deploy = v1alpha1.BundleDeploymentResource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web"}
	crd    = v1alpha1.BundleDeploymentResource{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "things.example.com"}
)

func cond(t string, ok bool, reason string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason}
}

// bd is a deployment on cluster ws/name with the given state of its three resources.
func bd(name string, applied bool, mutate func(*v1alpha1.BundleDeploymentStatus)) *v1alpha1.BundleDeployment {
	b := &v1alpha1.BundleDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{v1alpha1.ClusterNamespaceLabel: "ws", v1alpha1.ClusterLabel: name}},
		Spec:       v1alpha1.BundleDeploymentSpec{DeploymentID: "s-1"},
		Status:     v1alpha1.BundleDeploymentStatus{Resources: []v1alpha1.BundleDeploymentResource{cm, deploy, crd}},
	}
	if applied {
		b.Status.AppliedDeploymentID = "s-1"
		b.Status.Ready = true
		b.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, true, "Succeeded"), cond(v1alpha1.MonitoredCondition, true, "Succeeded"), cond(v1alpha1.ReadyCondition, true, "Succeeded")}
	} else {
		b.Status.Conditions = []metav1.Condition{cond(v1alpha1.DeployedCondition, false, v1alpha1.ReasonProgressing)}
	}
	if mutate != nil {
		mutate(&b.Status)
	}
	return b
}

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		bd   *v1alpha1.BundleDeployment
		want v1alpha1.ResourceCounts
	}{
		{"all ready", bd("a", true, nil), v1alpha1.ResourceCounts{Ready: 3, DesiredReady: 3}},
		{"not applied yet", bd("a", false, nil), v1alpha1.ResourceCounts{WaitApplied: 3, DesiredReady: 3}},
		{"one not ready, one drifted", bd("a", true, func(s *v1alpha1.BundleDeploymentStatus) {
			s.Ready = false
			s.NonReadyStatus = []v1alpha1.NonReadyStatus{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web", Summary: v1alpha1.NonReadySummary{State: "InProgress"}}}
			s.ModifiedStatus = []v1alpha1.ModifiedStatus{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "app", Name: "cfg", Patch: "x"}}
		}), v1alpha1.ResourceCounts{Ready: 1, NotReady: 1, Modified: 1, DesiredReady: 3}},
		{"missing and orphaned", bd("a", true, func(s *v1alpha1.BundleDeploymentStatus) {
			s.ModifiedStatus = []v1alpha1.ModifiedStatus{
				{APIVersion: "v1", Kind: "ConfigMap", Namespace: "app", Name: "cfg", Missing: true},
				{APIVersion: "v1", Kind: "Secret", Namespace: "app", Name: "old", Delete: true},
			}
		}), v1alpha1.ResourceCounts{Ready: 2, Missing: 1, Orphaned: 1, DesiredReady: 3}},
		{"no resources", &v1alpha1.BundleDeployment{}, v1alpha1.ResourceCounts{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(Of(tt.bd)).To(Equal(tt.want))
		})
	}
}

func TestRoll(t *testing.T) {
	g := NewWithT(t)
	dev := bd("dev", true, func(s *v1alpha1.BundleDeploymentStatus) {
		s.Ready = false
		s.NonReadyStatus = []v1alpha1.NonReadyStatus{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "app", Name: "web", Summary: v1alpha1.NonReadySummary{State: "InProgress"}}}
	})
	prod := bd("prod", true, nil)
	edge := bd("edge", false, nil)
	r := Roll([]*v1alpha1.BundleDeployment{prod, nil, dev, edge})

	g.Expect(r.Counts).To(Equal(v1alpha1.ResourceCounts{Ready: 5, NotReady: 1, WaitApplied: 3, DesiredReady: 9}))
	g.Expect(r.PerCluster).To(Equal(map[string]*v1alpha1.ResourceCounts{
		"ws/dev":  {Ready: 2, NotReady: 1, DesiredReady: 3},
		"ws/prod": {Ready: 3, DesiredReady: 3},
		"ws/edge": {WaitApplied: 3, DesiredReady: 3},
	}))
	g.Expect(r.Resources).To(HaveLen(3))
	byID := map[string]v1alpha1.Resource{}
	for _, res := range r.Resources {
		byID[res.Type+" "+res.ID] = res
	}
	g.Expect(byID).To(HaveKey("configmap app/cfg"))
	g.Expect(byID).To(HaveKey("apiextensions.k8s.io.customresourcedefinition things.example.com"))
	web := byID["apps.deployment app/web"]
	g.Expect(web.Kind).To(Equal("Deployment"))
	g.Expect(web.State).To(Equal("InProgress"), "the first non-ready state, clusters in order")
	g.Expect(web.Transitioning).To(BeTrue())
	g.Expect(*web.PerClusterState).To(Equal(v1alpha1.PerClusterState{
		Ready: []string{"ws/prod"}, NotReady: []string{"ws/dev"}, WaitApplied: []string{"ws/edge"},
	}))
	cfg := byID["configmap app/cfg"]
	g.Expect(cfg.State).To(Equal(WaitApplied), "edge has not applied it")
	g.Expect(cfg.PerClusterState.Ready).To(Equal([]string{"ws/dev", "ws/prod"}))

	empty := Roll(nil)
	g.Expect(empty.Counts).To(Equal(v1alpha1.ResourceCounts{}))
	g.Expect(empty.Resources).To(BeEmpty())
}

// TestRollMarksTheSameResourcesIncomplete: once the cluster IDs listed pass their budget, the
// resources marked incomplete are the last ones listed, whatever order the map gives them in.
func TestRollMarksTheSameResourcesIncomplete(t *testing.T) {
	g := NewWithT(t)
	var bds []*v1alpha1.BundleDeployment
	for i := range 100 {
		// 100 clusters of 4 KB IDs: 400 KB of IDs per resource, three resources, a 1 MiB budget.
		bds = append(bds, bd(fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 4000)), true, nil))
	}
	for range 10 {
		r := Roll(bds)
		g.Expect(r.Resources).To(HaveLen(3))
		incomplete := map[string]bool{}
		for _, res := range r.Resources {
			incomplete[res.Type] = res.IncompleteState
		}
		g.Expect(incomplete).To(Equal(map[string]bool{
			"apiextensions.k8s.io.customresourcedefinition": false,
			"apps.deployment": false,
			"configmap":       true,
		}))
	}
}
