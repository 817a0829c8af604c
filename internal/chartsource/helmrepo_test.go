package chartsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/helmops/helmops/internal/testenv"
)

func TestRepositoryURLs(t *testing.T) {
	cases := []struct{ repo, chartURL, want string }{
		{"https://x.example.com", "alpine-0.1.0.tgz", "https://x.example.com/alpine-0.1.0.tgz"},
		{"https://x.example.com/sub", "charts/alpine-0.1.0.tgz", "https://x.example.com/sub/charts/alpine-0.1.0.tgz"},
		{"https://x.example.com/sub/", "/abs/alpine-0.1.0.tgz", "https://x.example.com/abs/alpine-0.1.0.tgz"},
		{"https://x.example.com/sub", "https://cdn.example.com/a.tgz", "https://cdn.example.com/a.tgz"},
	}
	for _, tc := range cases {
		g := NewWithT(t)
		got, err := resolveChartURL(normalizeRepoURL(tc.repo), tc.chartURL)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(tc.want))
	}
	g := NewWithT(t)
	g.Expect(normalizeRepoURL("HTTPS://X.example.com/charts/")).To(Equal(normalizeRepoURL("https://x.example.com/charts")))
	g.Expect(indexURL("https://x.example.com/charts/")).To(Equal("https://x.example.com/charts/index.yaml"))
	g.Expect(sameOrigin("https://x.example.com/a", "https://x.example.com:443/b")).To(BeTrue())
	g.Expect(sameOrigin("https://x.example.com/a", "http://x.example.com/a")).To(BeFalse())
	g.Expect(sameOrigin("https://x.example.com/a", "https://x.example.com.evil.com/a")).To(BeFalse())
	g.Expect(sameOrigin("https://x.example.com/a", "https://x.example.com:8443/a")).To(BeFalse())
}

// A JSON index with relative chart URLs, served from a sub-path by a plain file server.
func TestJSONIndexWithRelativeURLs(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	idx := repo.NewIndexFile()
	archives := map[string][]byte{}
	for _, v := range []string{"0.1.0", "0.2.0"} {
		data, err := testenv.BuildChart("alpine", v)
		g.Expect(err).NotTo(HaveOccurred())
		ch, err := loader.LoadArchive(bytesReader(data))
		g.Expect(err).NotTo(HaveOccurred())
		sum := sha256.Sum256(data)
		name := "alpine-" + v + ".tgz"
		g.Expect(idx.MustAdd(ch.Metadata, name, "", hex.EncodeToString(sum[:]))).To(Succeed())
		g.Expect(os.WriteFile(filepath.Join(dir, name), data, 0o644)).To(Succeed())
		archives[v] = data
	}
	doc, err := json.Marshal(idx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(dir, "index.yaml"), doc, 0o644)).To(Succeed())
	srv := httptest.NewServer(http.StripPrefix("/sub", http.FileServer(http.Dir(dir))))
	defer srv.Close()

	r := NewResolver(Options{Network: testNetwork})
	data, res, err := r.FetchArchive(context.Background(), Ref{Repo: srv.URL + "/sub/", Chart: "alpine", Version: "0.1.x"}, Auth{}, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.URL).To(Equal(srv.URL + "/sub/alpine-0.1.0.tgz"))
	g.Expect(data).To(Equal(archives["0.1.0"]))

	// A password written into the repository URL does not travel with relative chart URLs.
	withCreds := strings.Replace(srv.URL, "http://", "http://someone:pa55word@", 1) + "/sub"
	res, err = r.Resolve(context.Background(), Ref{Repo: withCreds, Chart: "alpine", Version: "0.1.0"}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.URL).To(Equal(srv.URL + "/sub/alpine-0.1.0.tgz"))

	// An archive that does not match the index's digest is refused.
	g.Expect(os.WriteFile(filepath.Join(dir, "alpine-0.2.0.tgz"), archives["0.1.0"], 0o644)).To(Succeed())
	_, _, err = r.FetchArchive(context.Background(), Ref{Repo: srv.URL + "/sub", Chart: "alpine", Version: "0.2.0"}, Auth{}, 0)
	g.Expect(err).To(MatchError(ContainSubstring("has digest sha256:" + hexSum(archives["0.1.0"]) + " but the index of " + srv.URL + "/sub says sha256:" + hexSum(archives["0.2.0"]))))
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
