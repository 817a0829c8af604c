package chartsource

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name      string
		ref       Ref
		kind      Kind
		errField  string
		errSubstr string
	}{
		{name: "helm repository", ref: Ref{Repo: "https://charts.example.com", Chart: "alpine"}, kind: KindHelmRepo},
		{name: "helm repository with version", ref: Ref{Repo: "http://charts.example.com/sub/", Chart: "alpine", Version: "0.x"}, kind: KindHelmRepo},
		{name: "oci reference", ref: Ref{Repo: "oci://registry.example.com/charts/alpine", Version: "1.0.0"}, kind: KindOCI},
		{name: "oci reference without version", ref: Ref{Repo: "oci://registry.example.com:5000/charts/alpine"}, kind: KindOCI},
		{name: "tarball", ref: Ref{Chart: "https://example.com/alpine-0.1.0.tgz"}, kind: KindTarball},
		{name: "nothing set", ref: Ref{}, errField: "helm.chart", errSubstr: "the helm block needs a chart"},
		{name: "only a version", ref: Ref{Version: "1.0.0"}, errField: "helm.chart", errSubstr: "needs a chart"},
		{name: "tarball with repo", ref: Ref{Repo: "https://example.com", Chart: "https://example.com/a-1.0.0.tgz"}, errField: "helm.repo", errSubstr: "must be empty"},
		{name: "tarball with version", ref: Ref{Chart: "https://example.com/a-1.0.0.tgz", Version: "1.0.0"}, errField: "helm.version", errSubstr: "must be empty"},
		{name: "tarball not a URL", ref: Ref{Chart: "charts/a-1.0.0.tgz"}, errField: "helm.chart", errSubstr: "http:// or https://"},
		{name: "oci with chart", ref: Ref{Repo: "oci://registry.example.com/charts/alpine", Chart: "alpine"}, errField: "helm.chart", errSubstr: "must be empty when helm.repo is an oci://"},
		{name: "oci without repository", ref: Ref{Repo: "oci://registry.example.com"}, errField: "helm.repo", errSubstr: "oci://registry/path/chart"},
		{name: "chart without repo", ref: Ref{Chart: "alpine"}, errField: "helm.repo", errSubstr: "is required"},
		{name: "repo without chart", ref: Ref{Repo: "https://charts.example.com"}, errField: "helm.chart", errSubstr: "is required"},
		{name: "repo of another scheme", ref: Ref{Repo: "ftp://charts.example.com", Chart: "alpine"}, errField: "helm.repo", errSubstr: "http:// or https://"},
		{name: "repo without host", ref: Ref{Repo: "https:///charts", Chart: "alpine"}, errField: "helm.repo", errSubstr: "no host"},
		{name: "chart with a slash", ref: Ref{Repo: "https://charts.example.com", Chart: "stable/alpine"}, errField: "helm.chart", errSubstr: "not a chart name"},
		{name: "password in the repo URL is not repeated", ref: Ref{Repo: "ftp://user:hunter2@example.com", Chart: "x"}, errField: "helm.repo", errSubstr: "ftp://example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			kind, err := Classify(tc.ref)
			if tc.errField == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(kind).To(Equal(tc.kind))
				return
			}
			var fe *FieldError
			g.Expect(errors.As(err, &fe)).To(BeTrue(), "error %v", err)
			g.Expect(fe.Field).To(Equal(tc.errField))
			g.Expect(err.Error()).To(HavePrefix(tc.errField + ": "))
			g.Expect(err.Error()).To(ContainSubstring(tc.errSubstr))
			g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
		})
	}
}
