package chartsource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/testenv"
)

// versionCases hold over every kind of repository: alpine 0.1.0 and 0.2.0 are published.
var versionCases = []struct {
	version string
	want    string
	err     string // substring of the error when no version is chosen
}{
	{version: "", want: "0.2.0"},
	{version: "*", want: "0.2.0"},
	{version: "0.2.x", want: "0.2.0"},
	{version: "> 0.1", want: "0.2.0"},
	{version: "0.x.x", want: "0.2.0"},
	{version: "0.1.0", want: "0.1.0"},
	{version: "0.3.x", err: `no version of chart "alpine" matches "0.3.x" in %s; newest: 0.2.0, 0.1.0`},
	{version: "foo", err: `helm.version: improper constraint: "foo"`},
}

func checkVersionCase(g *WithT, res *Resolution, err error, want, errFmt, where string) {
	if errFmt == "" {
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal(want))
		return
	}
	g.Expect(err).To(HaveOccurred())
	msg := errFmt
	if strings.Contains(errFmt, "%s") {
		msg = strings.Replace(errFmt, "%s", where, 1)
		var nm *chartversion.NoMatchError
		g.Expect(errors.As(err, &nm)).To(BeTrue())
	} else {
		var ic *chartversion.InvalidConstraintError
		g.Expect(errors.As(err, &ic)).To(BeTrue())
	}
	g.Expect(err.Error()).To(ContainSubstring(msg))
}

func TestResolveHelmRepository(t *testing.T) {
	t.Run("cached", func(t *testing.T) { resolveHelmRepository(t, NewResolver(Options{Network: testNetwork}), 1) })
	t.Run("streamed", func(t *testing.T) {
		resolveHelmRepository(t, NewResolver(Options{Network: testNetwork, StreamIndexes: true}), 0)
	})
}

// resolveHelmRepository resolves every version case on plainRepo with r, whose cache holds
// cacheEntries indexes afterwards.
func resolveHelmRepository(t *testing.T, r *Resolver, cacheEntries int) {
	for _, repoURL := range []string{plainRepo.URL, plainRepo.URL + "/"} {
		for _, tc := range versionCases {
			t.Run(repoURL+" "+tc.version, func(t *testing.T) {
				g := NewWithT(t)
				res, err := r.Resolve(context.Background(), Ref{Repo: repoURL, Chart: "alpine", Version: tc.version}, Auth{})
				checkVersionCase(g, res, err, tc.want, tc.err, plainRepo.URL)
				if err != nil {
					return
				}
				archive, ok := plainRepo.Archive("alpine", tc.want)
				g.Expect(ok).To(BeTrue())
				sum := sha256.Sum256(archive)
				g.Expect(res.Kind).To(Equal(KindHelmRepo))
				g.Expect(res.Digest).To(Equal("sha256:" + hex.EncodeToString(sum[:])))
				g.Expect(res.URL).To(Equal(plainRepo.URL + "/charts/alpine-" + tc.want + ".tgz"))
				g.Expect(res.Created.IsZero()).To(BeFalse())
			})
		}
	}
	t.Run("the newer version rejected is explained", func(t *testing.T) {
		g := NewWithT(t)
		res, err := r.Resolve(context.Background(), Ref{Repo: plainRepo.URL, Chart: "alpine", Version: "0.1.x"}, Auth{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Rejected).To(Equal([]chartversion.Rejection{{Version: "0.2.0", Reason: `outside constraint "0.1.x"`}}))
	})
	t.Run("both URL forms share one cache entry", func(t *testing.T) {
		g := NewWithT(t)
		_, n := r.cache.usage()
		g.Expect(n).To(Equal(cacheEntries))
	})
	t.Run("unknown chart", func(t *testing.T) {
		g := NewWithT(t)
		_, err := r.Resolve(context.Background(), Ref{Repo: plainRepo.URL, Chart: "nope"}, Auth{})
		var nf *NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring(`chart "nope" not found in repository ` + plainRepo.URL))
	})
	t.Run("unknown repository", func(t *testing.T) {
		g := NewWithT(t)
		_, err := r.Resolve(context.Background(), Ref{Repo: plainRepo.URL + "/nothing/here", Chart: "alpine"}, Auth{})
		var nf *NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("no Helm repository index at " + plainRepo.URL + "/nothing/here/index.yaml (404 Not Found)"))
	})
	t.Run("nothing listens", func(t *testing.T) {
		g := NewWithT(t)
		_, err := r.Resolve(context.Background(), Ref{Repo: "http://127.0.0.1:1", Chart: "alpine"}, Auth{})
		g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
	})
}

func TestResolveOCI(t *testing.T) {
	r := NewResolver(Options{Network: testNetwork})
	auth := Auth{PlainHTTP: true}
	ref := plainReg.URL("alpine")
	for _, repo := range []string{ref, ref + "/"} {
		for _, tc := range versionCases {
			t.Run(repo+" "+tc.version, func(t *testing.T) {
				g := NewWithT(t)
				res, err := r.Resolve(context.Background(), Ref{Repo: repo, Version: tc.version}, auth)
				checkVersionCase(g, res, err, tc.want, tc.err, ref)
				if err != nil {
					return
				}
				g.Expect(res.Kind).To(Equal(KindOCI))
				g.Expect(res.URL).To(Equal(ref + ":" + tc.want))
				g.Expect(res.Digest).To(HavePrefix("sha256:"))
			})
		}
	}
	t.Run("an exact version resolves its one tag without listing tags", func(t *testing.T) {
		g := NewWithT(t)
		tagList := "/v2/charts/alpine/tags/list"
		before := plainReg.Requests(tagList)
		res, err := r.Resolve(context.Background(), Ref{Repo: ref, Version: "0.1.0"}, auth)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal("0.1.0"))
		g.Expect(plainReg.Requests(tagList)).To(Equal(before))
	})
	t.Run("an exact version that is not published says what is", func(t *testing.T) {
		g := NewWithT(t)
		_, err := r.Resolve(context.Background(), Ref{Repo: ref, Version: "9.9.9"}, auth)
		g.Expect(err).To(MatchError(ContainSubstring(`no version of chart "alpine" matches "9.9.9" in ` + ref + "; newest: 0.2.0, 0.1.0")))
	})
	t.Run("unknown repository", func(t *testing.T) {
		g := NewWithT(t)
		for _, v := range []string{"", "1.0.0"} {
			_, err := r.Resolve(context.Background(), Ref{Repo: plainReg.URL("nope"), Version: v}, auth)
			var nf *NotFoundError
			g.Expect(errors.As(err, &nf)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(`repository "` + plainReg.Host + `/charts/nope" not found in the registry`))
		}
	})
	cases := []struct{ chart, version, want string }{
		// Helm pushes 0.2.0+up1.0 as tag 0.2.0_up1.0.
		{"meta", "0.2.x", "0.2.0+up1.0"},
		{"meta", "", "0.2.0+up1.0"},
		{"meta", "0.2.0+up1.0", "0.2.0+up1.0"},
		{"meta", ">= 0.3.0-0", "0.3.0-rc.1"},
		// v-prefixed tags are versions too.
		{"vprefixed", "", "v0.3.0"},
		{"vprefixed", "0.3.x", "v0.3.0"},
		{"vprefixed", "0.1.0", "v0.1.0"},
		{"vprefixed", "v0.1.0", "v0.1.0"},
	}
	for _, tc := range cases {
		t.Run(tc.chart+" "+tc.version, func(t *testing.T) {
			g := NewWithT(t)
			res, err := r.Resolve(context.Background(), Ref{Repo: plainReg.URL(tc.chart), Version: tc.version}, auth)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Version).To(Equal(tc.want))
			g.Expect(res.URL).To(Equal(plainReg.URL(tc.chart) + ":" + strings.ReplaceAll(tc.want, "+", "_")))
		})
	}
	t.Run("more tags than one page", func(t *testing.T) {
		g := NewWithT(t)
		small := NewResolver(Options{Network: testNetwork, TagPageSize: 50})
		path := "/v2/charts/many/tags/list"
		before := plainReg.Requests(path)
		res, err := small.Resolve(context.Background(), Ref{Repo: plainReg.URL("many"), Version: "1.0.x"}, auth)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal("1.0.119"))
		g.Expect(plainReg.Requests(path) - before).To(Equal(3)) // 50 + 50 + 20
	})
}

func TestResolveTarball(t *testing.T) {
	g := NewWithT(t)
	u := plainRepo.URL + "/charts/alpine-0.1.0.tgz"
	res, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Chart: u}, Auth{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*res).To(Equal(Resolution{Kind: KindTarball, URL: u}))
}

// TestFetchPinnedOCIManifest: a tag pushed again with other content after its version was
// resolved. A fetch pinned to the resolved digest pulls the content resolved, not what the tag
// names now; without the pin the tag's new content comes; a pin the registry does not hold, or
// one that is not a digest, is an error saying so.
func TestFetchPinnedOCIManifest(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	r := NewResolver(Options{Network: testNetwork})
	auth := Auth{PlainHTTP: true}
	withContent := func(s string) testenv.ChartOption {
		return testenv.WithValues(map[string]any{"data": map[string]any{"content": s}})
	}
	ref, err := plainReg.Publish(ctx, "moving", "1.0.0", withContent("resolved"))
	g.Expect(err).NotTo(HaveOccurred())
	res, err := r.Resolve(ctx, Ref{Repo: ref, Version: "1.0.0"}, auth)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = plainReg.Publish(ctx, "moving", "1.0.0", withContent("moved"))
	g.Expect(err).NotTo(HaveOccurred())
	content := func(data []byte) string {
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		g.Expect(err).NotTo(HaveOccurred())
		return ch.Values["data"].(map[string]any)["content"].(string)
	}

	data, got, err := r.FetchArchive(ctx, Ref{Repo: ref, Version: "1.0.0", Digest: res.Digest}, auth, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Digest).To(Equal(res.Digest))
	g.Expect(content(data)).To(Equal("resolved"))

	data, got, err = r.FetchArchive(ctx, Ref{Repo: ref, Version: "1.0.0"}, auth, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Digest).NotTo(Equal(res.Digest))
	g.Expect(content(data)).To(Equal("moved"))

	absent := "sha256:" + strings.Repeat("0", 64)
	_, _, err = r.FetchArchive(ctx, Ref{Repo: ref, Version: "1.0.0", Digest: absent}, auth, 0)
	g.Expect(err).To(MatchError(ContainSubstring("fetching the manifest of " + ref + ":1.0.0")))
	_, _, err = r.FetchArchive(ctx, Ref{Repo: ref, Version: "1.0.0", Digest: "latest"}, auth, 0)
	g.Expect(err).To(MatchError(ContainSubstring(`the pinned manifest "latest" of ` + ref + " is not a digest")))
}
