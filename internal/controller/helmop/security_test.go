package helmop

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// TestASlowRepositoryDoesNotHoldEveryWorker: ten HelmOps name repositories on a server that
// answers one byte per second; an unrelated HelmOp still gets its Bundle while all ten wait.
func TestASlowRepositoryDoesNotHoldEveryWorker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var started, answered atomic.Int32
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		w.Header().Set("Content-Length", "600")
		w.WriteHeader(http.StatusOK)
		for range 600 {
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
			_, _ = w.Write([]byte(" "))
			w.(http.Flusher).Flush()
		}
		answered.Add(1)
	}))
	t.Cleanup(func() { close(stop); slow.Close() })
	fast := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)

	for i := range 10 {
		// Ten repositories on the one host: ten requests, none shared.
		g.Expect(k8s.Create(ctx, newHelmOp(ns, fmt.Sprintf("slow-%d", i), fmt.Sprintf("%s/r%d", slow.URL, i), "alpine"))).To(Succeed())
	}
	g.Eventually(started.Load, timeout, interval).Should(BeNumerically(">=", 1))

	start := time.Now()
	g.Expect(k8s.Create(ctx, newHelmOp(ns, "unrelated", fast.URL, "alpine"))).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
	}, timeout, 20*time.Millisecond).Should(Succeed())
	t.Logf("the unrelated HelmOp's Bundle came %v after it was created, with ten HelmOps waiting on a slow repository", time.Since(start))
	// The slow server answered nobody yet: the Bundle did not wait for a worker to come free.
	g.Expect(answered.Load()).To(BeZero())
	g.Expect(started.Load()).To(BeNumerically("<=", 2), "no more requests wait on the slow host than its slots")
}

// slowServers starts n servers that answer one byte per second; opened counts the requests
// they got, answered those they finished.
func slowServers(t *testing.T, n int) (urls []string, opened, answered *atomic.Int32) {
	opened, answered = &atomic.Int32{}, &atomic.Int32{}
	stop := make(chan struct{})
	for range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			opened.Add(1)
			w.Header().Set("Content-Length", "600")
			w.WriteHeader(http.StatusOK)
			for range 600 {
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				case <-time.After(time.Second):
				}
				_, _ = w.Write([]byte(" "))
				w.(http.Flusher).Flush()
			}
			answered.Add(1)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	t.Cleanup(func() { close(stop) })
	return urls, opened, answered
}

// TestManySlowRepositoriesDoNotHoldEveryWorker: ten HelmOps name ten different hosts that answer
// one byte per second, so the per-host bound holds none of them back; an unrelated HelmOp still
// gets its Bundle while they wait, because only --max-slow-fetches reconciles wait past one
// second and the others are tried again later without a worker.
func TestManySlowRepositoriesDoNotHoldEveryWorker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	urls, opened, answered := slowServers(t, 10)
	fast := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	for i, u := range urls {
		g.Expect(k8s.Create(ctx, newHelmOp(ns, fmt.Sprintf("slow-%d", i), u, "alpine"))).To(Succeed())
	}
	// Every worker the slow HelmOps can take is taken.
	g.Eventually(opened.Load, timeout, interval).Should(BeNumerically(">=", 10))

	start := time.Now()
	g.Expect(k8s.Create(ctx, newHelmOp(ns, "unrelated", fast.URL, "alpine"))).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
	}, timeout, 20*time.Millisecond).Should(Succeed())
	t.Logf("the unrelated HelmOp's Bundle came %v after it was created, with ten HelmOps waiting on ten slow hosts", time.Since(start))
	g.Expect(answered.Load()).To(BeZero(), "the Bundle did not wait for a slow host to answer")
	for i := range urls {
		op := &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("slow-%d", i), Namespace: ns}}
		get(g, op)
		g.Expect(condition(op, v1alpha1.AcceptedCondition).Status).NotTo(Equal(metav1.ConditionTrue))
	}
}

// TestPerTargetRepositoryOnAnotherHostGetsNoCredentials: the helmSecretName credentials go to the
// HelmOp's repository only, never to a per-target helm.repo elsewhere.
func TestPerTargetRepositoryOnAnotherHostGetsNoCredentials(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	own := chartRepo(t, testenv.RepoOptions{Username: "user", Password: "s3cret-pass"})
	elsewhere := chartRepo(t, testenv.RepoOptions{})
	ns := newNamespace(t)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		StringData: map[string]string{"username": "user", "password": "s3cret-pass"}})).To(Succeed())
	op := newHelmOp(ns, "bound", own.URL, "alpine", testutil.WithSecret("creds"), testutil.WithHelmOpTargets(
		v1alpha1.BundleTarget{Name: "other", ClusterName: "c1", Helm: &v1alpha1.HelmOptions{Repo: elsewhere.URL, Version: "0.1.x"}}))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	b := &v1alpha1.Bundle{ObjectMeta: metav1.ObjectMeta{Name: "bound", Namespace: ns}}
	g.Eventually(func(g Gomega) {
		get(g, b)
		g.Expect(b.Spec.Helm.Version).To(Equal("0.2.0"))
		g.Expect(b.Spec.Targets).To(HaveLen(1))
		g.Expect(b.Spec.Targets[0].Helm.Version).To(Equal("0.1.0"))
	}, timeout, interval).Should(Succeed())
	g.Expect(own.AuthorizedRequests("/index.yaml")).To(BeNumerically(">=", 1))
	g.Expect(elsewhere.Requests("/index.yaml")).To(BeNumerically(">=", 1))
	g.Expect(elsewhere.AuthorizedRequests("/index.yaml")).To(BeZero())
}
