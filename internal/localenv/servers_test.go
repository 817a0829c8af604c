package localenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

func TestChartRepoServesHelmIndexWithAuthTLSAndConditionalRequests(t *testing.T) {
	g := NewWithT(t)
	r, err := StartChartRepo(RepoOptions{TLS: true, Username: "u", Password: "p"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(r.Stop)
	g.Expect(r.Publish("alpine", "0.1.0")).To(Succeed())
	g.Expect(r.Publish("alpine", "0.2.0", WithValues(map[string]any{"data": map[string]any{"k": "v"}}))).To(Succeed())
	g.Expect(r.Publish("alpine", "0.2.0")).To(MatchError(ContainSubstring("already published")))

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: r.ClientTLS()}}
	get := func(path string, header http.Header, auth bool) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, r.URL+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		if auth {
			req.SetBasicAuth("u", "p")
		}
		resp, err := client.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		return resp
	}

	g.Expect(get("/index.yaml", nil, false).StatusCode).To(Equal(http.StatusUnauthorized))

	resp := get("/index.yaml", nil, true)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	body, _ := io.ReadAll(resp.Body)
	idx := &repo.IndexFile{}
	g.Expect(yaml.Unmarshal(body, idx)).To(Succeed())
	cv, err := idx.Get("alpine", "0.2.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cv.Digest).NotTo(BeEmpty())

	etag := resp.Header.Get("ETag")
	g.Expect(get("/index.yaml", http.Header{"If-None-Match": {etag}}, true).StatusCode).To(Equal(http.StatusNotModified))
	g.Expect(r.Requests("/index.yaml")).To(Equal(3))

	archive := get("/charts/alpine-0.2.0.tgz", nil, true)
	data, _ := io.ReadAll(archive.Body)
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ch.Metadata.Version).To(Equal("0.2.0"))

	// Without the CA the certificate is not trusted.
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get(r.URL + "/index.yaml")
	g.Expect(err).To(MatchError(ContainSubstring("certificate")))

	// A stopped repository refuses connections and serves again after Restart.
	r.Stop()
	_, err = client.Get(r.URL + "/index.yaml")
	g.Expect(err).To(HaveOccurred())
	g.Expect(r.Restart()).To(Succeed())
	g.Expect(get("/index.yaml", nil, true).StatusCode).To(Equal(http.StatusOK))
}

func TestOCIRegistryStoresChartsPushedWithHelm(t *testing.T) {
	g := NewWithT(t)
	reg, err := StartOCIRegistry(RegistryOptions{TLS: true, Username: "u", Password: "p"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)

	ctx := context.Background()
	ref, err := reg.Publish(ctx, "alpine", "0.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ref).To(Equal("oci://" + reg.Host + "/charts/alpine"))
	_, err = reg.Publish(ctx, "alpine", "0.2.0+up1.0")
	g.Expect(err).NotTo(HaveOccurred())

	c, err := reg.Client()
	g.Expect(err).NotTo(HaveOccurred())
	tags, err := c.Tags(reg.Host + "/charts/alpine")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tags).To(ConsistOf("0.1.0", "0.2.0+up1.0"))

	pulled, err := c.Pull(reg.Host + "/charts/alpine:0.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pulled.Chart.Meta.Version).To(Equal("0.1.0"))

	// Anonymous requests are refused.
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: reg.clientTLS()}}).Get("https://" + reg.Host + "/v2/charts/alpine/tags/list")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
}

func TestBuildChartRendersDefaultConfigMap(t *testing.T) {
	g := NewWithT(t)
	data, err := BuildChart("demo", "1.2.3", WithValues(map[string]any{"data": map[string]any{"color": "blue"}}), WithAppVersion("9"))
	g.Expect(err).NotTo(HaveOccurred())
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ch.Metadata.AppVersion).To(Equal("9"))
	g.Expect(ch.Values).To(HaveKeyWithValue("data", HaveKeyWithValue("color", "blue")))
	g.Expect(ch.Templates).To(HaveLen(1))

	data, err = BuildChart("demo", "1.2.3", WithTemplate("broken.yaml", "{{ .Values.missing.field }"))
	g.Expect(err).NotTo(HaveOccurred())
	ch, err = loader.LoadArchive(bytes.NewReader(data))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ch.Templates).To(HaveLen(1), "the first WithTemplate replaces the default template")
}

func TestChartRepoAcceptsUploadsWhenAllowed(t *testing.T) {
	g := NewWithT(t)
	r, err := StartChartRepo(RepoOptions{AllowUpload: true, Username: "u", Password: "p"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(r.Stop)
	data, err := BuildChart("hello", "0.3.0")
	g.Expect(err).NotTo(HaveOccurred())

	post := func(user string) int {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/api/charts", bytes.NewReader(data))
		req.SetBasicAuth(user, "p")
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode
	}
	g.Expect(post("someone")).To(Equal(http.StatusUnauthorized))
	g.Expect(post("u")).To(Equal(http.StatusCreated))
	g.Expect(post("u")).To(Equal(http.StatusConflict))
	_, ok := r.Archive("hello", "0.3.0")
	g.Expect(ok).To(BeTrue())
}
