package agent

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent/releasestate"
)

// expectRefused waits until bd reports that the release belongs to someone else, with a message
// containing owner.
func expectRefused(g Gomega, bd *v1alpha1.BundleDeployment, owner string) {
	g.Eventually(func(g Gomega) {
		got := getBD(g, bd)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		for _, t := range []string{v1alpha1.InstalledCondition, v1alpha1.DeployedCondition, v1alpha1.ReadyCondition} {
			expectFalse(g, got, t, v1alpha1.ReasonReleaseConflict, owner)
		}
		g.Expect(got.Status.Release).To(BeNil(), "a release it does not own is not recorded as its own")
		g.Expect(got.Status.AppliedDeploymentID).To(BeEmpty())
		g.Expect(got.Status.Display.State).To(Equal("ErrApplied"))
	}, timeout, interval).Should(Succeed())
}

// expectRevisions checks that the release has n revisions, the newest deployed and marked as
// installed by the BundleDeployment owner.
func expectRevisions(g Gomega, name, ns string, n int, owner *v1alpha1.BundleDeployment) {
	hist, err := helm.History(context.Background(), name, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hist).To(HaveLen(n))
	last := hist[len(hist)-1]
	g.Expect(last.Info.Status).To(Equal(rcommon.StatusDeployed))
	g.Expect(last.Chart.Metadata.Annotations).To(HaveKeyWithValue(releasestate.BundleIDAnnotation, owner.Name))
	g.Expect(last.Chart.Metadata.Annotations).To(HaveKeyWithValue(releasestate.ClusterNamespaceAnnotation, owner.Namespace))
}

// A BundleDeployment naming the release another one installed (HelmOp a with releaseName b) is
// refused and changes nothing; deleting it leaves the release installed.
func TestAReleaseIsChangedOnlyByTheBundleDeploymentThatInstalledIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("owned", "0.1.0")).To(Succeed())
	shared := func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Namespace = "owned"
		b.Spec.Options.Helm.ReleaseName = "owned"
	}
	owner := bundleDeployment(mainNS, "owned", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "owned", Version: "0.1.0",
		Values: values(map[string]any{"data": map[string]any{"greeting": "from-the-owner"}})}, shared)
	g.Expect(upstream.Client.Create(ctx, owner)).To(Succeed())
	eventuallyReady(g, owner)
	expectRevisions(g, "owned", "owned", 1, owner)

	intruder := bundleDeployment(mainNS, "intruder", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "owned", Version: "0.1.0",
		Values: values(map[string]any{"data": map[string]any{"greeting": "from-the-intruder"}})}, shared)
	intruder.Spec.DeploymentID = "v:intruder"
	g.Expect(upstream.Client.Create(ctx, intruder)).To(Succeed())
	expectRefused(g, intruder, "BundleDeployment "+mainNS+"/owned (HelmOp fleet-default/owned)")
	got := getBD(g, intruder)
	t.Logf("Ready: %s", meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Message)

	// Over several drift intervals (1s) the intruder neither upgrades nor corrects anything.
	g.Consistently(func(g Gomega) {
		expectRevisions(g, "owned", "owned", 1, owner)
		g.Expect(configMap(g, "owned", "owned").Data).To(HaveKeyWithValue("greeting", "from-the-owner"))
	}, 4*time.Second, interval).Should(Succeed())

	// Deleting the intruder leaves the release installed and its owner Ready.
	g.Expect(upstream.Client.Delete(ctx, intruder)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(intruder), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue())
	expectRevisions(g, "owned", "owned", 1, owner)
	g.Expect(configMap(g, "owned", "owned").Data).To(HaveKeyWithValue("greeting", "from-the-owner"))
	// The owner still manages it: a change of its spec upgrades.
	update(g, owner, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.Values = values(map[string]any{"data": map[string]any{"greeting": "changed-by-the-owner"}})
		b.Spec.DeploymentID = "v:0.1.0-changed"
	})
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, owner))
		g.Expect(configMap(g, "owned", "owned").Data).To(HaveKeyWithValue("greeting", "changed-by-the-owner"))
		expectRevisions(g, "owned", "owned", 2, owner)
	}, timeout, interval).Should(Succeed())
}

// A release without owner marks (installed by an agent that did not mark releases) is adopted
// only by the BundleDeployment whose status records deploying it; a new BundleDeployment naming
// it is refused.
func TestAnUnmarkedReleaseIsAdoptedOnlyByTheBundleDeploymentThatRecordsIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(repo.Publish("legacy", "0.1.0")).To(Succeed())
	legacy := bundleDeployment(mainNS, "legacy", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "legacy", Version: "0.1.0"})
	g.Expect(upstream.Client.Create(ctx, legacy)).To(Succeed())
	eventuallyReady(g, legacy)

	// As an agent that did not mark releases left it: the stored revision carries no marks.
	hist, err := helm.History(ctx, "legacy", "legacy")
	g.Expect(err).NotTo(HaveOccurred())
	rel := hist[len(hist)-1]
	delete(rel.Chart.Metadata.Annotations, releasestate.BundleIDAnnotation)
	delete(rel.Chart.Metadata.Annotations, releasestate.ClusterNamespaceAnnotation)
	g.Expect(helm.SetStatus(ctx, rel, rcommon.StatusDeployed, rel.Info.Description)).To(Succeed())

	newcomer := bundleDeployment(mainNS, "newcomer", v1alpha1.HelmOptions{Repo: repo.URL, Chart: "legacy", Version: "0.1.0"}, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Namespace = "legacy"
		b.Spec.Options.Helm.ReleaseName = "legacy"
	})
	g.Expect(upstream.Client.Create(ctx, newcomer)).To(Succeed())
	expectRefused(g, newcomer, "carries no owner marks")

	// The BundleDeployment that deployed it keeps it: its next upgrade marks the release.
	update(g, legacy, func(b *v1alpha1.BundleDeployment) {
		b.Spec.Options.Helm.Values = values(map[string]any{"data": map[string]any{"greeting": "adopted"}})
		b.Spec.DeploymentID = "v:0.1.0-adopted"
	})
	g.Eventually(func(g Gomega) {
		expectCoherent(g, expectReady(g, legacy))
		g.Expect(configMap(g, "legacy", "legacy").Data).To(HaveKeyWithValue("greeting", "adopted"))
		expectRevisions(g, "legacy", "legacy", 2, legacy)
	}, timeout, interval).Should(Succeed())
	expectRefused(g, newcomer, "BundleDeployment "+mainNS+"/legacy")

	g.Expect(upstream.Client.Delete(ctx, newcomer)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(upstream.Client.Get(ctx, client.ObjectKeyFromObject(newcomer), &v1alpha1.BundleDeployment{}))
	}, timeout, interval).Should(BeTrue())
	expectRevisions(g, "legacy", "legacy", 2, legacy)
}
