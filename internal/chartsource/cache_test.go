package chartsource

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/helmops/helmops/internal/testenv"
)

func newRepo(t *testing.T, charts ...[2]string) *testenv.ChartRepo {
	t.Helper()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Stop)
	for _, c := range charts {
		if err := repo.Publish(c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

func TestUnchangedIndexIsRevalidatedWithoutParsing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := newRepo(t, fixtures...)
	r := NewResolver(Options{Network: testNetwork})
	notModified := testutil.ToFloat64(indexRequests.WithLabelValues("not_modified"))

	res, err := r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.2.0"))
	g.Expect(r.IndexParses()).To(Equal(int64(1)))

	for i := 0; i < 3; i++ {
		res, err = r.Resolve(ctx, Ref{Repo: repo.URL + "/", Chart: "alpine", Version: "0.1.x"}, Auth{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal("0.1.0"))
	}
	g.Expect(repo.Requests("/index.yaml")).To(Equal(4))
	g.Expect(r.IndexParses()).To(Equal(int64(1)), "a 304 reuses what was parsed")
	g.Expect(testutil.ToFloat64(indexRequests.WithLabelValues("not_modified")) - notModified).To(Equal(3.0))

	// Another chart of the same body is parsed once, then memoised too.
	_, err = r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "nginx"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "nginx"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.IndexParses()).To(Equal(int64(2)))

	// A new version is seen at the next resolution.
	g.Expect(repo.Publish("alpine", "0.3.0")).To(Succeed())
	res, err = r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.3.0"))
	g.Expect(r.IndexParses()).To(Equal(int64(3)))

	// Other credentials are another cache entry.
	_, err = r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "alpine"}, Auth{Username: "someone", Password: "else"})
	g.Expect(err).NotTo(HaveOccurred())
	_, n := r.cache.usage()
	g.Expect(n).To(Equal(2))
}

func TestMinRevalidateAnswersFromTheCache(t *testing.T) {
	g := NewWithT(t)
	repo := newRepo(t, fixtures...)
	r := NewResolver(Options{Network: testNetwork, MinRevalidate: time.Hour})
	for i := 0; i < 5; i++ {
		_, err := r.Resolve(context.Background(), Ref{Repo: repo.URL, Chart: "alpine"}, Auth{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(repo.Requests("/index.yaml")).To(Equal(1))
}

// gatedProxy forwards to repo, holding index requests until release returns true.
func gatedProxy(t *testing.T, repo *testenv.ChartRepo, release func() bool) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(repo.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		deadline := time.Now().Add(30 * time.Second)
		for !release() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestConcurrentResolutionsShareOneRequest(t *testing.T) {
	g := NewWithT(t)
	const n = 1000
	repo := newRepo(t, fixtures...)
	r := NewResolver(Options{Network: testNetwork})
	var front *httptest.Server
	// The server answers only once every resolution waits for the request in flight, so that
	// sharing, not timing, keeps the count at one.
	front = gatedProxy(t, repo, func() bool {
		return r.waiting(normalizeRepoURL(front.URL)+"\x00"+Auth{}.Fingerprint()) >= n
	})
	shared := testutil.ToFloat64(indexRequests.WithLabelValues("shared"))

	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine", Version: "0.x"}, Auth{})
			if err != nil || res.Version != "0.2.0" {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	g.Expect(failures.Load()).To(BeZero())
	g.Expect(repo.Requests("/index.yaml")).To(Equal(1))
	g.Expect(r.IndexParses()).To(Equal(int64(1)))
	g.Expect(testutil.ToFloat64(indexRequests.WithLabelValues("shared")) - shared).To(Equal(float64(n - 1)))
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	g := NewWithT(t)
	repo := newRepo(t, fixtures...)
	r := NewResolver(Options{Network: testNetwork})
	var released atomic.Bool
	front := gatedProxy(t, repo, released.Load)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, Ref{Repo: front.URL, Chart: "alpine"}, Auth{})
		first <- err
	}()
	g.Eventually(func() int { return r.waiting(normalizeRepoURL(front.URL) + "\x00" + Auth{}.Fingerprint()) }).Should(Equal(1))
	second := make(chan error, 1)
	go func() {
		_, err := r.Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine"}, Auth{})
		second <- err
	}()
	g.Eventually(func() int { return r.waiting(normalizeRepoURL(front.URL) + "\x00" + Auth{}.Fingerprint()) }).Should(Equal(2))
	cancel()
	released.Store(true)
	g.Expect(<-first).NotTo(HaveOccurred()) // the shared request was not cancelled with its first caller
	g.Expect(<-second).NotTo(HaveOccurred())
}

func TestIndexSizeLimit(t *testing.T) {
	g := NewWithT(t)
	repo := newRepo(t, fixtures...)
	_, err := NewResolver(Options{Network: testNetwork, MaxIndexBytes: 200}).Resolve(context.Background(), Ref{Repo: repo.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).To(MatchError(ContainSubstring("the index is larger than the limit of 200 bytes")))
	g.Expect(errors.Is(err, errIndexTooLarge)).To(BeTrue())
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a, b, c := newRepo(t, fixtures...), newRepo(t, fixtures...), newRepo(t, fixtures...)
	probe := NewResolver(Options{Network: testNetwork})
	_, err := probe.Resolve(ctx, Ref{Repo: a.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	one, _ := probe.cache.usage()

	// Room for two indexes: resolving a third evicts the least recently used.
	r := NewResolver(Options{Network: testNetwork, CacheBytes: 2*one + one/2})
	for _, repo := range []*testenv.ChartRepo{a, b, a, c} {
		_, err := r.Resolve(ctx, Ref{Repo: repo.URL, Chart: "alpine"}, Auth{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	used, n := r.cache.usage()
	g.Expect(n).To(Equal(2))
	g.Expect(used).To(BeNumerically("<=", 2*one+one/2))
	g.Expect(r.cache.get(normalizeRepoURL(b.URL) + "\x00" + Auth{}.Fingerprint())).To(BeNil())
	g.Expect(r.cache.get(normalizeRepoURL(a.URL) + "\x00" + Auth{}.Fingerprint())).NotTo(BeNil())

	// An index larger than the whole cache is refused while it downloads: downloads count
	// against the bound.
	tiny := NewResolver(Options{Network: testNetwork, CacheBytes: 100})
	_, err = tiny.Resolve(ctx, Ref{Repo: a.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).To(MatchError(ContainSubstring("more memory than the whole index cache holds (100 bytes)")))
	used, n = tiny.cache.usage()
	g.Expect(n).To(Equal(0))
	g.Expect(used).To(BeZero())
	g.Expect(tiny.cache.inflight).To(BeZero())
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	g := NewWithT(t)
	repo := newRepo(t, fixtures...)
	target, _ := url.Parse(repo.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			proxy.ServeHTTP(w, req)
		}
	}))
	defer front.Close()
	res, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.2.0"))
	g.Expect(calls.Load()).To(Equal(int32(3)))

	// A Retry-After beyond the bound is not waited for.
	calls.Store(0)
	front.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "come back in an hour", http.StatusTooManyRequests)
	})
	_, err = NewResolver(Options{Network: testNetwork, MaxRetryWait: time.Second}).Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).To(MatchError(ContainSubstring(`429 Too Many Requests: the server asked to retry later (Retry-After "3600")`)))
	g.Expect(calls.Load()).To(Equal(int32(1)))
}

func TestConcurrentOCIResolutionsShareOneTagListing(t *testing.T) {
	g := NewWithT(t)
	const n = 200
	r := NewResolver(Options{Network: testNetwork})
	target, _ := url.Parse("http://" + plainReg.Host)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var front *httptest.Server
	var listings atomic.Int32
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/tags/list") {
			listings.Add(1)
			key := "oci\x00" + strings.TrimPrefix(front.URL, "http://") + "/charts/alpine\x00" + Auth{PlainHTTP: true}.Fingerprint()
			deadline := time.Now().Add(30 * time.Second)
			for r.waiting(key) < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	defer front.Close()
	ref := Ref{Repo: "oci://" + strings.TrimPrefix(front.URL, "http://") + "/charts/alpine", Version: "0.x"}
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(context.Background(), ref, Auth{PlainHTTP: true})
			if err != nil || res.Version != "0.2.0" {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	g.Expect(failures.Load()).To(BeZero())
	g.Expect(listings.Load()).To(Equal(int32(1)))
}

func TestWithRevalidateBypassesTheFreshnessWindow(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(repo.Stop)
	g.Expect(repo.Publish("alpine", "0.1.0")).To(Succeed())
	r := NewResolver(Options{Network: testNetwork, MinRevalidate: time.Hour})
	ref := Ref{Repo: repo.URL, Chart: "alpine"}
	res, err := r.Resolve(ctx, ref, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.1.0"))

	g.Expect(repo.Publish("alpine", "0.2.0")).To(Succeed())
	res, err = r.Resolve(ctx, ref, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.1.0"), "within the freshness window the cached index answers")
	g.Expect(repo.Requests("/index.yaml")).To(Equal(1))

	res, err = r.Resolve(WithRevalidate(ctx), ref, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.2.0"))
	g.Expect(repo.Requests("/index.yaml")).To(Equal(2))
}

// An index the fast path leaves to the full parse is counted by reason; one it reads is not.
func TestFullParsesAreCountedByReason(t *testing.T) {
	g := NewWithT(t)
	bodies := map[string]string{
		"/json/index.yaml": `{"apiVersion":"v1","entries":{"alpine":[{"apiVersion":"v2","name":"alpine","version":"0.1.0","urls":["alpine-0.1.0.tgz"]}]}}`,
		"/yaml/index.yaml": "apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    description: 'a description Helm wrapped\n      over two lines'\n    name: alpine\n    urls:\n    - alpine-0.1.0.tgz\n    version: 0.1.0\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Write([]byte(bodies[req.URL.Path]))
	}))
	defer srv.Close()
	r := NewResolver(Options{Network: NetworkPolicy{AllowLoopback: true}})
	count := func() (json, total float64) {
		return testutil.ToFloat64(indexFullParses.WithLabelValues("flow_style")), float64(testutil.CollectAndCount(indexFullParses))
	}
	jsonBefore, _ := count()
	res, err := r.Resolve(context.Background(), Ref{Repo: srv.URL + "/json", Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.1.0"))
	jsonAfter, series := count()
	g.Expect(jsonAfter - jsonBefore).To(Equal(1.0))

	res, err = r.Resolve(context.Background(), Ref{Repo: srv.URL + "/yaml", Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.1.0"))
	last, seriesAfter := count()
	g.Expect(last).To(Equal(jsonAfter))
	g.Expect(seriesAfter).To(Equal(series), "the wrapped description is read by the fast path")
}
