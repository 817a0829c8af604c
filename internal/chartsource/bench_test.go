package chartsource

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helmops/helmops/internal/chartsource/helmindex"
)

// largeIndexServer serves a generated 23 MB index (150 charts × 120 versions, full metadata) with
// an ETag and Last-Modified, answering conditional requests with 304 as a static file server
// does, and counts index requests.
func largeIndexServer(b *testing.B) (*httptest.Server, *atomic.Int64) {
	b.Helper()
	index, err := helmindex.Generate(helmindex.GenerateOptions{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	modified := time.Now().Add(-time.Hour)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		requests.Add(1)
		w.Header().Set("ETag", `"large-index-1"`)
		http.ServeContent(w, req, "index.yaml", modified, bytes.NewReader(index))
	}))
	b.Cleanup(srv.Close)
	return srv, &requests
}

// BenchmarkRevalidateUnchangedIndex resolves a constraint against an index already cached: the
// server answers 304 and nothing is parsed.
func BenchmarkRevalidateUnchangedIndex(b *testing.B) {
	srv, requests := largeIndexServer(b)
	r := NewResolver(Options{Network: testNetwork})
	ref := Ref{Repo: srv.URL, Chart: "chart-042", Version: "1.x"}
	if _, err := r.Resolve(context.Background(), ref, Auth{}); err != nil {
		b.Fatal(err)
	}
	parses, before := r.IndexParses(), requests.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(context.Background(), ref, Auth{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(r.IndexParses()-parses)/float64(b.N), "parses/op")
	b.ReportMetric(float64(requests.Load()-before)/float64(b.N), "requests/op")
}

// BenchmarkConcurrentResolutions runs 1,000 resolutions at once against one repository with a
// cold cache, as 1,000 HelmOps created together would, and reports the index requests the server
// counted for each round.
func BenchmarkConcurrentResolutions(b *testing.B) {
	srv, requests := largeIndexServer(b)
	const n = 1000
	b.ReportAllocs()
	var rounds, total int64
	for b.Loop() {
		r := NewResolver(Options{Network: testNetwork, MinRevalidate: time.Minute})
		before := requests.Load()
		var wg sync.WaitGroup
		var failed atomic.Bool
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Resolve(context.Background(), Ref{Repo: srv.URL, Chart: "chart-042", Version: "1.x"}, Auth{}); err != nil {
					failed.Store(true)
				}
			}()
		}
		wg.Wait()
		if failed.Load() {
			b.Fatal("a resolution failed")
		}
		rounds++
		total += requests.Load() - before
	}
	b.ReportMetric(float64(total)/float64(rounds), "requests/op")
}
