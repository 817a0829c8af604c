package localenv

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControlPlaneBehavesLikeACluster checks what envtest alone does not give: owner references
// garbage-collect children and deleted namespaces finish deleting.
func TestControlPlaneBehavesLikeACluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp, err := Start(ctx, Options{Name: "gc"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gc-test"}}
	g.Expect(cp.Client.Create(ctx, ns)).To(Succeed())
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: ns.Name}}
	g.Expect(cp.Client.Create(ctx, owner)).To(Succeed())
	child := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "child", Namespace: ns.Name,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}
	g.Expect(cp.Client.Create(ctx, child)).To(Succeed())

	g.Expect(cp.Client.Delete(ctx, owner)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(cp.Client.Get(ctx, client.ObjectKeyFromObject(child), &corev1.ConfigMap{}))
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the garbage collector removes the owned ConfigMap")

	g.Expect(cp.Client.Delete(ctx, ns)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(cp.Client.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{}))
	}, 60*time.Second, 200*time.Millisecond).Should(BeTrue(), "the namespace controller finishes deleting the namespace")
}

func TestBinDirNamesTheMakeTarget(t *testing.T) {
	g := NewWithT(t)
	t.Setenv(BinDirEnv, t.TempDir())
	_, err := BinDir()
	g.Expect(err).To(MatchError(ContainSubstring("make envtest")))
}
