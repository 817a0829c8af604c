package chartsource

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/helmops/helmops/internal/testenv"
	"github.com/helmops/helmops/internal/testutil"
)

// redirector answers every request with a redirect to target+path, counting the requests that
// carried an Authorization header.
type redirector struct {
	*httptest.Server
	authorized atomic.Int32
}

func newRedirector(t *testing.T, tls bool, target func(path string) string) *redirector {
	rd := &redirector{}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			rd.authorized.Add(1)
		}
		http.Redirect(w, req, target(req.URL.Path), http.StatusFound)
	})
	if tls {
		rd.Server = httptest.NewTLSServer(h)
	} else {
		rd.Server = httptest.NewServer(h)
	}
	t.Cleanup(rd.Close)
	return rd
}

func (rd *redirector) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rd.Certificate().Raw})
}

func TestRedirectsCarryCredentialsOnlyToTheirOrigin(t *testing.T) {
	creds := Auth{Username: "tenant", Password: "s3cret"}
	for _, tc := range []struct {
		name    string
		tls     bool
		to      func(target *testenv.ChartRepo) string
		refused bool
	}{
		{name: "another port", to: func(r *testenv.ChartRepo) string { return r.URL }},
		{name: "another host", to: func(r *testenv.ChartRepo) string { return strings.Replace(r.URL, "127.0.0.1", "localhost", 1) }},
		{name: "https to http", tls: true, to: func(r *testenv.ChartRepo) string { return r.URL }, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			target := newRepo(t, fixtures...)
			front := newRedirector(t, tc.tls, func(p string) string { return tc.to(target) + p })
			a := creds
			if tc.tls {
				a.CAFile = front.caPEM()
			}
			_, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine"}, a)
			g.Expect(front.authorized.Load()).To(BeEquivalentTo(1), "the credentials went to the repository itself")
			g.Expect(target.AuthorizedRequests("/index.yaml")).To(BeZero(), "no credentials after the redirect")
			if tc.refused {
				g.Expect(err).To(MatchError(ContainSubstring("refusing the redirect")))
				g.Expect(target.Requests("/index.yaml")).To(BeZero())
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(target.Requests("/index.yaml")).To(Equal(1))
			}
		})
	}

	t.Run("same origin keeps them", func(t *testing.T) {
		g := NewWithT(t)
		var moved atomic.Int32
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/moved/index.yaml", http.StatusFound)
		})
		mux.HandleFunc("/moved/index.yaml", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				moved.Add(1)
			}
			http.NotFound(w, r)
		})
		_, _ = NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "alpine"}, creds)
		g.Expect(moved.Load()).To(BeEquivalentTo(1))
	})
}

func TestBoundCredentialsStayOnTheirHost(t *testing.T) {
	g := NewWithT(t)
	own, other := newRepo(t, fixtures...), newRepo(t, fixtures...)
	a := Auth{Username: "tenant", Password: "s3cret"}.BoundTo(own.URL)
	r := NewResolver(Options{Network: testNetwork})
	_, err := r.Resolve(context.Background(), Ref{Repo: own.URL, Chart: "alpine"}, a)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Resolve(context.Background(), Ref{Repo: other.URL, Chart: "alpine"}, a)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(own.AuthorizedRequests("/index.yaml")).To(Equal(1))
	g.Expect(other.Requests("/index.yaml")).To(Equal(1))
	g.Expect(other.AuthorizedRequests("/index.yaml")).To(BeZero())
}

func TestDeniedAddresses(t *testing.T) {
	repo := newRepo(t, fixtures...)
	port := repo.URL[strings.LastIndex(repo.URL, ":")+1:]

	t.Run("a name resolving to loopback, without the opt-in", func(t *testing.T) {
		g := NewWithT(t)
		_, err := NewResolver(Options{}).Resolve(context.Background(), Ref{Repo: "http://localhost:" + port, Chart: "alpine"}, Auth{})
		g.Expect(errors.Is(err, ErrDeniedAddress)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("localhost:" + port))
		g.Expect(err.Error()).To(ContainSubstring("loopback"))
		g.Expect(err.Error()).NotTo(ContainSubstring("127.0.0.1"))
		g.Expect(err.Error()).NotTo(ContainSubstring("::1"))
		g.Expect(repo.Requests("/index.yaml")).To(BeZero())
	})

	t.Run("cloud metadata", func(t *testing.T) {
		g := NewWithT(t)
		_, err := NewResolver(Options{Network: AllowAll}).Resolve(context.Background(), Ref{Repo: "http://169.254.169.254/latest", Chart: "x"}, Auth{})
		g.Expect(errors.Is(err, ErrDeniedAddress)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("link-local or cloud metadata"))
	})

	t.Run("a redirect into a denied range", func(t *testing.T) {
		g := NewWithT(t)
		inside, err := testenv.StartChartRepo(testenv.RepoOptions{Addr: "127.0.0.2:0"})
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(inside.Stop)
		front := newRedirector(t, false, func(p string) string { return inside.URL + p })
		policy := NetworkPolicy{AllowLoopback: true, Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
		_, err = NewResolver(Options{Network: policy}).Resolve(context.Background(), Ref{Repo: front.URL, Chart: "alpine"}, Auth{})
		g.Expect(errors.Is(err, ErrDeniedAddress)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("denied by the operator"))
		g.Expect(inside.Requests("/index.yaml")).To(BeZero())
	})
}

// slowServer sends its answer one byte per second.
func slowServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var done atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer done.Add(1)
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
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv, &done
}

func TestASlowHostHoldsAtMostItsSlots(t *testing.T) {
	g := NewWithT(t)
	slow, finished := slowServer(t)
	r := NewResolver(Options{Network: testNetwork})
	// The callers holding the slots give up at their deadline, as a reconcile does.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var busy, other atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct repositories on one host: ten requests, not one shared.
			_, err := r.Resolve(ctx, Ref{Repo: slow.URL + "/r" + strconv.Itoa(i), Chart: "alpine"}, Auth{})
			if errors.Is(err, ErrHostBusy) {
				busy.Add(1)
			} else {
				other.Add(1)
			}
		}()
	}
	g.Eventually(busy.Load, 20*time.Second, 50*time.Millisecond).To(BeEquivalentTo(10 - DefaultMaxFetchesPerHost))
	// The others still wait on the slow host, which has answered nobody yet.
	g.Expect(other.Load()).To(BeZero())
	g.Expect(finished.Load()).To(BeZero())
	// Another host is not affected.
	_, err := r.Resolve(context.Background(), Ref{Repo: plainRepo.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	wg.Wait()
	g.Expect(other.Load()).To(BeEquivalentTo(DefaultMaxFetchesPerHost))
}

func TestHugeFlowStyleIndexIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("serves 100 MB")
	}
	g := NewWithT(t)
	const size = 100_000_000
	// One flow-style document, written as it is sent: the test holds none of it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		head := "{apiVersion: v1, entries: {alpine: ["
		_, _ = w.Write([]byte(head))
		written := len(head)
		tail := "]}}\n"
		for i := 0; ; i++ {
			e := fmt.Sprintf("{name: alpine, version: 0.%d.0, urls: [alpine-0.%d.0.tgz], apiVersion: v2}, ", i, i)
			if written+len(e)+len(tail) > size {
				break
			}
			_, _ = w.Write([]byte(e))
			written += len(e)
		}
		_, _ = w.Write([]byte(strings.Repeat(" ", size-written-len(tail)) + tail))
	}))
	t.Cleanup(srv.Close)
	var err error
	peak := testutil.PeakRSSGrowth(t, func() {
		_, err = NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "alpine"}, Auth{})
	})
	g.Expect(err).To(MatchError(ContainSubstring("only a full parse reads")))
	g.Expect(err).To(MatchError(ContainSubstring("limited to 8388608 bytes")))
	t.Logf("100 MB flow-style index refused; peak RSS grew by %d MiB", peak>>20)
	// The body is held once (100 MB); a full YAML decode would have taken gigabytes.
	g.Expect(peak).To(BeNumerically("<", 400<<20))
}

// TestManySlowHostsHoldAtMostTheSlowFetchSlots: six callers wait on six different hosts that
// send one byte per second, each within its host's slots. Past one second only MaxSlowFetches of
// them keep waiting; the others' requests are cancelled (the servers see them go) and they are
// told to try again, so slow hosts however many leave the rest of the workers free.
func TestManySlowHostsHoldAtMostTheSlowFetchSlots(t *testing.T) {
	g := NewWithT(t)
	const hosts, slots = 6, 2
	var open atomic.Int32
	servers := make([]*httptest.Server, hosts)
	for i := range servers {
		srv, _ := slowServer(t)
		servers[i] = srv
		inner := srv.Config.Handler
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			open.Add(1)
			defer open.Add(-1)
			inner.ServeHTTP(w, req)
		})
	}
	r := NewResolver(Options{Network: testNetwork, MaxSlowFetches: slots})
	// The callers that keep waiting give up at their deadline, as a reconcile does.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var busy, other atomic.Int32
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i == 0 {
				// An archive download is bounded the same way.
				_, _, err = r.FetchArchive(ctx, Ref{Chart: srv.URL + "/alpine-0.1.0.tgz"}, Auth{}, 0)
			} else {
				_, err = r.Resolve(ctx, Ref{Repo: srv.URL, Chart: "alpine"}, Auth{})
			}
			if errors.Is(err, ErrHostBusy) {
				busy.Add(1)
			} else {
				other.Add(1)
			}
		}()
	}
	g.Eventually(busy.Load, 20*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(hosts - slots))
	g.Eventually(open.Load, 10*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(slots), "the cut requests are closed")
	g.Expect(other.Load()).To(BeZero(), "the callers holding the slots still wait")
	// A host that answers needs no slot.
	_, err := r.Resolve(context.Background(), Ref{Repo: plainRepo.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	wg.Wait()
	g.Expect(other.Load()).To(BeEquivalentTo(slots))
	g.Expect(busy.Load()).To(BeEquivalentTo(hosts - slots))
	// The slots came back: one more slow request waits past the second again.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel2()
	_, err = r.Resolve(ctx2, Ref{Repo: servers[1].URL + "/again", Chart: "alpine"}, Auth{})
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
}
