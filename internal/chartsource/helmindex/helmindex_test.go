package helmindex

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/helmops/helmops/internal/chartversion"
)

// helmEntries is what Helm's own loader finds for a chart, in our terms.
func helmEntries(t testing.TB, data []byte, chart string) (Entries, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := repo.LoadIndexFile(path)
	if err != nil {
		return Entries{}, err
	}
	cvs, ok := idx.Entries[chart]
	out := Entries{Found: ok}
	for _, cv := range cvs {
		out.Candidates = append(out.Candidates, chartversion.Candidate{
			Version: cv.Version, Created: cv.Created, Digest: cv.Digest, URLs: cv.URLs, Deprecated: cv.Deprecated,
		})
	}
	return out, nil
}

func normalize(e Entries) Entries {
	sort.SliceStable(e.Candidates, func(i, j int) bool { return e.Candidates[i].Version < e.Candidates[j].Version })
	for i := range e.Candidates {
		e.Candidates[i].Created = e.Candidates[i].Created.UTC()
		if len(e.Candidates[i].URLs) == 0 {
			e.Candidates[i].URLs = nil
		}
	}
	if len(e.Candidates) == 0 {
		e.Candidates = nil
	}
	return e
}

// expectSameAsHelm checks Parse against Helm's loader, and reports whether the fast path was used.
func expectSameAsHelm(t testing.TB, g Gomega, data []byte, chart string) bool {
	want, helmErr := helmEntries(t, data, chart)
	got, err := ParseBytes(data, chart)
	if helmErr != nil {
		// Helm refuses the index; we must not claim a result Helm would not give either, unless
		// Helm's refusal is about other charts (strict unknown-field checks).
		return false
	}
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(normalize(got)).To(Equal(normalize(want)))
	_, fast := scan(data, chart)
	return fast
}

const helmStyle = `apiVersion: v1
entries:
  alpine:
  - annotations:
      category: Demo
      images: |
        - name: alpine
          image: alpine:3
    apiVersion: v2
    created: "2026-01-02T03:04:05.123456789Z"
    dependencies:
    - name: common
      repository: https://charts.example.com
      version: 2.x.x
    description: Deploy a basic Alpine Linux pod
    digest: 515c58e5f79d8b2913a10cb400ebb6fa9c77fe813287afbacf1a0b897cd78727
    home: https://helm.sh/helm
    keywords:
    - linux
    - alpine
    maintainers:
    - email: a@example.com
      name: A
    name: alpine
    sources:
    - https://github.com/helm/helm
    urls:
    - https://charts.example.com/alpine-0.2.0.tgz
    - alpine-0.2.0.tgz
    version: 0.2.0
  - apiVersion: v2
    created: "2025-01-02T03:04:05Z"
    digest: aaaa
    name: alpine
    urls:
    - https://charts.example.com/alpine-0.1.0.tgz
    version: 0.1.0
  alpine-extra:
  - apiVersion: v2
    created: "2025-01-02T03:04:05Z"
    name: alpine-extra
    urls:
    - https://charts.example.com/alpine-extra-9.9.9.tgz
    version: 9.9.9
  nginx:
  - apiVersion: v2
    created: "2025-01-02T03:04:05Z"
    deprecated: true
    name: nginx
    urls:
    - nginx-1.1.0.tgz
    version: 1.1.0
generated: "2026-01-02T03:04:05Z"
`

func TestParseAgreesWithHelm(t *testing.T) {
	generated, err := Generate(GenerateOptions{Charts: 5, Versions: 30, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	fixtures := map[string]struct {
		data string
		fast bool
	}{
		"helm style":                  {helmStyle, true},
		"generated":                   {string(generated), true},
		"indented sequences":          {strings.ReplaceAll(helmStyle, "\n  - ", "\n    - "), false},
		"json":                        {`{"apiVersion":"v1","entries":{"alpine":[{"apiVersion":"v2","name":"alpine","version":"0.2.0","urls":["a.tgz"],"created":"2025-01-02T03:04:05Z"}]}}`, false},
		"flow style entry":            {"apiVersion: v1\nentries:\n  alpine: [{apiVersion: v2, name: alpine, version: 0.3.0}]\n", false},
		"anchors and aliases":         {"apiVersion: v1\nentries:\n  alpine:\n  - &e\n    apiVersion: v2\n    name: alpine\n    version: 0.1.0\n  nginx:\n  - *e\n", false},
		"quoted chart key":            {"apiVersion: v1\nentries:\n  \"alpine\":\n  - apiVersion: v2\n    name: alpine\n    version: 0.4.0\n", false},
		"comments":                    {"# repo\napiVersion: v1\nentries:\n  # charts\n  alpine:\n  - apiVersion: v2 # api\n    name: alpine\n    version: 0.5.0\n", true},
		"crlf":                        {strings.ReplaceAll(helmStyle, "\n", "\r\n"), false},
		"single quotes":               {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: '0.6.0'\n    created: '2025-01-02T03:04:05Z'\n", true},
		"keys in odd order":           {"entries:\n  alpine:\n  - version: 0.7.0\n    name: alpine\n    apiVersion: v2\napiVersion: v1\n", true},
		"empty entries":               {"apiVersion: v1\nentries: {}\n", false},
		"chart with no versions":      {"apiVersion: v1\nentries:\n  alpine: []\n", false},
		"v prefix and build metadata": {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: v0.3.0\n  - apiVersion: v2\n    name: alpine\n    version: 0.2.0+up1.0\n", true},
		"numeric-looking version":     {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: 1.0\n", false},
	}
	for name, f := range fixtures {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			for _, chart := range []string{"alpine", "nginx", "chart-003", "missing"} {
				fast := expectSameAsHelm(t, g, []byte(f.data), chart)
				if chart == "alpine" || chart == "chart-003" {
					if _, err := helmEntries(t, []byte(f.data), chart); err == nil && f.fast && strings.Contains(f.data, chart+":") {
						g.Expect(fast).To(BeTrue(), "the fast path handles %s", name)
					}
				}
			}
		})
	}
}

func TestParseFindsPrefixNamedChartsApart(t *testing.T) {
	g := NewWithT(t)
	e, err := ParseBytes([]byte(helmStyle), "alpine")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.Found).To(BeTrue())
	g.Expect(e.Candidates).To(HaveLen(2))
	g.Expect(e.Candidates[0].URLs).To(Equal([]string{"https://charts.example.com/alpine-0.2.0.tgz", "alpine-0.2.0.tgz"}))
	g.Expect(e.Candidates[0].Digest).To(HavePrefix("515c58"))

	e, err = ParseBytes([]byte(helmStyle), "missing")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.Found).To(BeFalse())

	_, err = Parse(bytes.NewReader([]byte("entries: {}\n")), "alpine")
	g.Expect(err).To(MatchError(ContainSubstring("no API version")))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(helmStyle), "alpine")
	f.Add([]byte("apiVersion: v1\nentries:\n  a:\n  - version: 1.0.0\n    name: a\n    apiVersion: v2\n"), "a")
	f.Fuzz(func(t *testing.T, data []byte, chart string) {
		if len(data) > 1<<16 || chart == "" {
			return
		}
		want, helmErr := helmEntries(t, data, chart)
		if helmErr != nil {
			return
		}
		got, ok := scan(data, chart)
		if !ok {
			return // the full parse takes over; only the fast path must agree
		}
		// Helm drops entries that fail chart validation; compare the versions Helm kept.
		kept := map[string]bool{}
		for _, c := range want.Candidates {
			kept[c.Version] = true
		}
		var filtered Entries
		filtered.Found = got.Found
		for _, c := range got.Candidates {
			if kept[c.Version] {
				filtered.Candidates = append(filtered.Candidates, c)
			}
		}
		if got.Found != want.Found || len(filtered.Candidates) != len(want.Candidates) {
			t.Fatalf("fast path disagrees with Helm: got %+v, Helm %+v", got, want)
		}
		n1, n2 := normalize(filtered), normalize(want)
		for i := range n1.Candidates {
			a, b := n1.Candidates[i], n2.Candidates[i]
			if a.Version != b.Version || !a.Created.Equal(b.Created) || a.Digest != b.Digest || strings.Join(a.URLs, " ") != strings.Join(b.URLs, " ") || a.Deprecated != b.Deprecated {
				t.Fatalf("fast path disagrees with Helm on %s: got %+v, Helm %+v", a.Version, a, b)
			}
		}
	})
}
