package chartsource

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// indexServer serves body as index.yaml, in pieces and without a Content-Length when chunked,
// and counts the requests.
func indexServer(t *testing.T, body string, chunked bool) (*httptest.Server, *atomic.Int32) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		requests.Add(1)
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write([]byte(body))
			return
		}
		for rest := body; rest != ""; {
			n := min(len(rest), 100)
			_, _ = w.Write([]byte(rest[:n]))
			w.(http.Flusher).Flush()
			rest = rest[n:]
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

const streamedIndex = `apiVersion: v1
entries:
  alpine:
  - apiVersion: v2
    description: 'a description Helm wraps
      over lines'
    name: alpine
    urls:
    - alpine-0.2.0.tgz
    version: 0.2.0
  - apiVersion: v2
    name: alpine
    urls:
    - alpine-0.1.0.tgz
    version: 0.1.0
`

func TestStreamedIndexKeepsNoBody(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run("chunked "+strconv.FormatBool(chunked), func(t *testing.T) {
			g := NewWithT(t)
			srv, requests := indexServer(t, streamedIndex, chunked)
			r := NewResolver(Options{Network: testNetwork, StreamIndexes: true})
			res, err := r.Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "alpine", Version: "0.1.x"}, Auth{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Version).To(Equal("0.1.0"))
			g.Expect(res.URL).To(Equal(srv.URL + "/alpine-0.1.0.tgz"))
			g.Expect(res.Rejected).To(HaveLen(1))
			g.Expect(requests.Load()).To(Equal(int32(1)))
			bytes, n := r.cache.usage()
			g.Expect(n).To(BeZero())
			g.Expect(bytes).To(BeZero(), "nothing stays reserved")
		})
	}
}

// An index the fast path does not read (here JSON) is fetched again and parsed whole, and the
// refusal is counted as for a cached index.
func TestStreamedIndexFallsBackToTheFullParse(t *testing.T) {
	g := NewWithT(t)
	srv, requests := indexServer(t, `{"apiVersion":"v1","entries":{"alpine":[{"apiVersion":"v2","name":"alpine","version":"0.3.0","urls":["a.tgz"]}]}}`, true)
	before := testutil.ToFloat64(indexFullParses.WithLabelValues("flow_style"))
	r := NewResolver(Options{Network: testNetwork, StreamIndexes: true})
	res, err := r.Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "alpine"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.3.0"))
	g.Expect(requests.Load()).To(Equal(int32(2)))
	g.Expect(testutil.ToFloat64(indexFullParses.WithLabelValues("flow_style")) - before).To(Equal(1.0))
}

func TestStreamedIndexErrors(t *testing.T) {
	r := NewResolver(Options{Network: testNetwork, StreamIndexes: true, MaxIndexBytes: 200})
	for _, chunked := range []bool{false, true} {
		t.Run("larger than the limit, chunked "+strconv.FormatBool(chunked), func(t *testing.T) {
			g := NewWithT(t)
			srv, _ := indexServer(t, streamedIndex+"# "+string(make([]byte, 300))+"\n", chunked)
			_, err := r.Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "alpine"}, Auth{})
			g.Expect(err).To(MatchError(ContainSubstring("the index is larger than the limit of 200 bytes")))
			g.Expect(errors.Is(err, errIndexTooLarge)).To(BeTrue())
		})
	}
	t.Run("no index", func(t *testing.T) {
		g := NewWithT(t)
		srv, _ := indexServer(t, streamedIndex, false)
		_, err := r.Resolve(context.Background(), Ref{Repo: srv.URL + "/nothing", Chart: "alpine"}, Auth{})
		var nf *NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
	})
	t.Run("no such chart", func(t *testing.T) {
		g := NewWithT(t)
		srv, _ := indexServer(t, streamedIndex, false)
		_, err := NewResolver(Options{Network: testNetwork, StreamIndexes: true}).Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "nginx"}, Auth{})
		var nf *NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
	})
}
