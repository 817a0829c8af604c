package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

// TestRegistryPushUpdatesHelmOp has the Distribution registry notify the endpoint, as its
// operator would configure it: a push made with Helm's registry client moves a HelmOp that
// polls once an hour to the new version.
func TestRegistryPushUpdatesHelmOp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg, err := testenv.StartOCIRegistry(testenv.RegistryOptions{Notifications: configuration.Notifications{
		Endpoints: []configuration.Endpoint{{
			Name: "helmops", URL: endpoint, Timeout: 5 * time.Second, Threshold: 3, Backoff: time.Second,
			Headers: http.Header{"Authorization": {"Bearer " + string(token)}},
			Ignore:  configuration.Ignore{Actions: []string{"pull"}},
		}},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	ref, err := reg.Publish(ctx, "alpine", "0.1.0")
	g.Expect(err).NotTo(HaveOccurred())

	ns := newNamespace(t)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns},
		StringData: map[string]string{"basicHTTP": "true"}})).To(Succeed())
	op := helmOp(ns, "pushed", ref, "", "0.x")
	op.Spec.HelmSecretName = "plain"
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.1.0"))
	tags := reg.Requests("/v2/charts/alpine/tags/list")

	start := time.Now()
	_, err = reg.Publish(ctx, "alpine", "0.2.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.2.0"))
	t.Logf("push of alpine 0.2.0 to the Bundle: %v (the push itself included)", time.Since(start))
	g.Expect(reg.Requests("/v2/charts/alpine/tags/list")).To(BeNumerically(">", tags), "the tag list was read again")

	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.Version).To(Equal("0.2.0"))
		g.Expect(op.Status.LastHandledReconcileAt).To(Equal(op.Annotations[v1alpha1.ReconcileRequestedAnnotation]))
	}, timeout, interval).Should(Succeed())
}

// TestGenericNotificationUpdatesHelmOp is a CI pipeline that publishes to a Helm HTTP
// repository and then signs a generic notification.
func TestGenericNotificationUpdatesHelmOp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, "alpine", "0.1.0")
	ns := newNamespace(t)
	op := helmOp(ns, "generic", repo.URL+"/", "alpine", "0.x")
	static := helmOp(ns, "static", repo.URL, "alpine", "0.1.0")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Expect(k8s.Create(ctx, static)).To(Succeed())
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.1.0"))
	g.Eventually(bundleVersion(static), timeout, interval).Should(Equal("0.1.0"))

	start := time.Now()
	g.Expect(repo.Publish("alpine", "0.2.0")).To(Succeed())
	body, _ := json.Marshal(map[string]string{"repo": repo.URL, "chart": "alpine"})
	g.Expect(post(g, endpoint, body, signed(body))).To(Equal(http.StatusAccepted))
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.2.0"))
	t.Logf("publish of alpine 0.2.0 and notification to the Bundle: %v", time.Since(start))

	// A HelmOp with an exact version is not touched.
	get(g, static)
	g.Expect(static.Annotations).NotTo(HaveKey(v1alpha1.ReconcileRequestedAnnotation))

	// Another chart of the same repository is not this HelmOp's business.
	before := annotation(g, op)
	body, _ = json.Marshal(map[string]string{"repo": repo.URL, "chart": "nginx"})
	g.Eventually(func() int { return post(g, endpoint, body, signed(body)) }, 3*time.Second, 200*time.Millisecond).Should(Equal(http.StatusAccepted))
	g.Expect(annotation(g, op)).To(Equal(before))
}

// TestUnauthenticatedNotificationsChangeNothing plays an attacker who knows the endpoint but not
// the token: every request is refused and the repository is never asked.
func TestUnauthenticatedNotificationsChangeNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, "alpine", "0.1.0")
	ns := newNamespace(t)
	op := helmOp(ns, "guarded", repo.URL, "alpine", "0.x")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.1.0"))
	g.Eventually(func(g Gomega) { get(g, op); g.Expect(op.Status.Version).To(Equal("0.1.0")) }, timeout, interval).Should(Succeed())
	g.Expect(repo.Publish("alpine", "0.2.0")).To(Succeed())
	indexRequests := repo.Requests("/index.yaml")

	body, _ := json.Marshal(map[string]string{"repo": repo.URL})
	other := []byte(`{"repo":"` + repo.URL + `","chart":"alpine"}`)
	for name, req := range map[string]struct {
		url    string
		header http.Header
	}{
		"unsigned":                      {endpoint, http.Header{}},
		"signed with another key":       {endpoint, http.Header{"X-Hub-Signature-256": {signWith(body, "not-the-token-at-all")}}},
		"signature of another body":     {endpoint, signed(other)},
		"malformed signature":           {endpoint, http.Header{"X-Hub-Signature-256": {"sha256=zz"}}},
		"sha1 signature":                {endpoint, http.Header{"X-Hub-Signature": {"sha1=00"}}},
		"wrong bearer token":            {endpoint, http.Header{"Authorization": {"Bearer " + string(token) + "x"}}},
		"token prefix":                  {endpoint, http.Header{"Authorization": {"Bearer " + string(token[:8])}}},
		"basic auth with the token":     {endpoint, http.Header{"Authorization": {"Basic " + string(token)}}},
		"wrong token in the path":       {endpoint + "/guess", http.Header{}},
		"wrong path token, good header": {endpoint + "/guess", http.Header{"Authorization": {"Bearer " + string(token)}}},
	} {
		g.Expect(post(g, req.url, body, req.header)).To(Equal(http.StatusUnauthorized), name)
	}
	g.Consistently(func(g Gomega) {
		g.Expect(repo.Requests("/index.yaml")).To(Equal(indexRequests))
		g.Expect(bundleVersion(op)()).To(Equal("0.1.0"))
	}, 2*time.Second, 100*time.Millisecond).Should(Succeed())
	get(g, op)
	g.Expect(op.Annotations).NotTo(HaveKey(v1alpha1.ReconcileRequestedAnnotation))

	// The same body with the token is acted on, so the refusals above were not for another reason.
	g.Expect(post(g, endpoint+"/"+string(token), body, http.Header{})).To(Equal(http.StatusAccepted))
	g.Eventually(bundleVersion(op), timeout, interval).Should(Equal("0.2.0"))
	g.Expect(repo.Requests("/index.yaml")).To(BeNumerically(">", indexRequests))
}

// TestBurstIsRateLimitedPerRepository sends 100 notifications for one repository at once: one
// revalidation follows, the rest are answered 429, and another repository's notification is
// acted on at once.
func TestBurstIsRateLimitedPerRepository(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	busy, quiet := chartRepo(t, "alpine", "0.1.0"), chartRepo(t, "alpine", "0.1.0")
	ns := newNamespace(t)
	busyOp, quietOp := helmOp(ns, "busy", busy.URL, "alpine", "0.x"), helmOp(ns, "quiet", quiet.URL, "alpine", "0.x")
	g.Expect(k8s.Create(ctx, busyOp)).To(Succeed())
	g.Expect(k8s.Create(ctx, quietOp)).To(Succeed())
	for _, op := range []*v1alpha1.HelmOp{busyOp, quietOp} {
		g.Eventually(func(g Gomega) { get(g, op); g.Expect(op.Status.Version).To(Equal("0.1.0")) }, timeout, interval).Should(Succeed())
	}
	g.Expect(busy.Publish("alpine", "0.2.0")).To(Succeed())
	g.Expect(quiet.Publish("alpine", "0.2.0")).To(Succeed())
	busyRequests, quietRequests := busy.Requests("/index.yaml"), quiet.Requests("/index.yaml")

	body, _ := json.Marshal(map[string]string{"repo": busy.URL})
	quietBody, _ := json.Marshal(map[string]string{"repo": quiet.URL, "chart": "alpine"})
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var start time.Time
	quietCode := 0
	for i := range 100 {
		if i == 50 { // in the middle of the burst
			start = time.Now()
			quietCode = post(g, endpoint, quietBody, signed(quietBody))
		}
		wg.Go(func() {
			code := post(g, endpoint, body, signed(body))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	g.Expect(codes).To(Equal(map[int]int{http.StatusAccepted: 1, http.StatusTooManyRequests: 99}))
	g.Expect(quietCode).To(Equal(http.StatusAccepted))
	g.Eventually(bundleVersion(quietOp), timeout, interval).Should(Equal("0.2.0"))
	t.Logf("another repository's notification, sent during the burst, to its Bundle: %v", time.Since(start))
	g.Expect(quiet.Requests("/index.yaml")).To(Equal(quietRequests + 1))

	g.Eventually(bundleVersion(busyOp), timeout, interval).Should(Equal("0.2.0"))
	g.Consistently(func() int { return busy.Requests("/index.yaml") }, 2*time.Second, 100*time.Millisecond).Should(Equal(busyRequests + 1))
}

func chartRepo(t *testing.T, name, version string) *testenv.ChartRepo {
	t.Helper()
	r, err := testenv.StartChartRepo(testenv.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	if err := r.Publish(name, version); err != nil {
		t.Fatal(err)
	}
	return r
}

func get(g Gomega, obj client.Object) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
}

func annotation(g Gomega, op *v1alpha1.HelmOp) string {
	get(g, op)
	return op.Annotations[v1alpha1.ReconcileRequestedAnnotation]
}
