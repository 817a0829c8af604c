package helmop

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

// Fields of Fleet's git bundles are kept, named in the Accepted message and in a warning event;
// the HelmOp still deploys. The options helmops does honour reach the Bundle.
func TestGitOnlyFieldsAreReportedAndFleetOptionsReachTheBundle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "gitfields", repo.URL, "alpine")
	op.Spec.Helm.ValuesFiles = []string{"values-prod.yaml"}
	op.Spec.YAML = &v1alpha1.YAMLOptions{Overlays: []string{"prod"}}
	op.Spec.TargetCustomizationMode = v1alpha1.AllMatches
	op.Spec.DependsOn = []v1alpha1.BundleRef{{Name: "base"}}
	op.Spec.RolloutStrategy = &v1alpha1.RolloutStrategy{Partitions: []v1alpha1.Partition{{Name: "p1", ClusterName: "dev"}}}
	op.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev", NamespaceLabels: map[string]string{"a": "b"},
		Kustomize: &v1alpha1.KustomizeOptions{Dir: "k"}, DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "x"}}}}
	g.Expect(k8s.Create(ctx, op)).To(Succeed())

	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "gitfields", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.AcceptedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(ContainSubstring("not applicable to a HelmOp and ignored"))
		g.Expect(c.Message).To(ContainSubstring("spec.helm.valuesFiles, spec.targets[0].kustomize, spec.yaml"))
		g.Expect(c.Message).NotTo(ContainSubstring("downstreamResources"), "downstreamResources are honoured")
		get(g, b)
		g.Expect(b.Spec.TargetCustomizationMode).To(Equal(v1alpha1.AllMatches))
		g.Expect(b.Spec.DependsOn).To(Equal(op.Spec.DependsOn))
		g.Expect(b.Spec.RolloutStrategy).To(Equal(op.Spec.RolloutStrategy))
		g.Expect(b.Spec.Targets[0].NamespaceLabels).To(Equal(map[string]string{"a": "b"}))
		g.Expect(b.Spec.Targets[0].DownstreamResources).To(Equal([]v1alpha1.DownstreamResource{{Kind: "Secret", Name: "x"}}))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		events := &corev1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		var msgs []string
		for _, e := range events.Items {
			if e.Reason == v1alpha1.ReasonFieldsNotApplicable && e.Type == corev1.EventTypeWarning {
				msgs = append(msgs, e.Message)
			}
		}
		g.Expect(msgs).To(ContainElement(ContainSubstring("spec.yaml")))
	}, timeout, interval).Should(Succeed())

	// Once the fields are gone, so is the note.
	g.Eventually(func(g Gomega) {
		get(g, op)
		op.Spec.Helm.ValuesFiles, op.Spec.YAML, op.Spec.Targets[0].Kustomize, op.Spec.Targets[0].DownstreamResources = nil, nil, nil, nil
		g.Expect(k8s.Update(ctx, op)).To(Succeed()) // retried: the controller writes the status meanwhile
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.ObservedGeneration).To(Equal(op.Generation))
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Message).NotTo(ContainSubstring("not applicable"))
	}, timeout, interval).Should(Succeed())
}

// A downstreamResources entry that cannot be copied as written is a spec error naming the field.
func TestInvalidDownstreamResourceIsASpecError(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	op := newHelmOp(ns, "badkind", repo.URL, "alpine")
	op.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev", DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Deployment", Name: "x"}}}}
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		c := condition(op, v1alpha1.StalledCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
		g.Expect(c.Message).To(Equal(`spec.targets[0].downstreamResources[0].kind: unsupported kind "Deployment": use Secret or ConfigMap`))
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())
}
