package helmindex

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/Masterminds/semver/v3"
	. "github.com/onsi/gomega"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/helmops/helmops/internal/chartversion"
)

var (
	helmFileOnce sync.Once
	helmFile     string
)

// helmEntries is what Helm's own loader finds for a chart, in our terms. Helm loads indexes from
// files only; one scratch file per test process keeps fuzzing fast.
func helmEntries(t testing.TB, data []byte, chart string) (Entries, error) {
	t.Helper()
	helmFileOnce.Do(func() {
		f, err := os.CreateTemp("", "helmindex-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		helmFile = f.Name()
	})
	path := helmFile
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
	e.Candidates = slices.Clone(e.Candidates)
	sort.SliceStable(e.Candidates, func(i, j int) bool {
		a, b := e.Candidates[i], e.Candidates[j]
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Digest < b.Digest
	})
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

// semverOnly drops the entries Helm drops and we keep on purpose: versions that are not semantic
// versions.
func semverOnly(e Entries) Entries {
	out := Entries{Found: e.Found}
	for _, c := range e.Candidates {
		if _, err := semver.NewVersion(c.Version); err == nil {
			out.Candidates = append(out.Candidates, c)
		}
	}
	return out
}

// differ returns how Parse, its fast path when taken, and its full parse disagree with Helm's
// loader on an index Helm accepts, or "" when they agree. fast says whether the fast path took it.
func differ(t testing.TB, data []byte, chart string) (diff string, fast bool) {
	want, helmErr := helmEntries(t, data, chart)
	if helmErr != nil {
		return "", false // not a valid index
	}
	want = normalize(want)
	fastGot, refusal := scan(data, chart)
	fast = refusal == ""
	if diff := streamDiffers(data, chart, fastGot, refusal); diff != "" {
		return diff, fast
	}
	full, fullErr := parseFull(data, chart)
	got, err := ParseBytes(data, chart)
	switch {
	case err != nil:
		return fmt.Sprintf("Parse failed on an index Helm loads: %v", err), fast
	case fullErr != nil:
		return fmt.Sprintf("the full parse failed on an index Helm loads: %v", fullErr), fast
	}
	for name, e := range map[string]Entries{"Parse": got, "full parse": full, "fast path": fastGot} {
		if name == "fast path" && !fast {
			continue
		}
		if e := normalize(semverOnly(e)); !reflect.DeepEqual(e, want) {
			return fmt.Sprintf("%s disagrees with Helm on chart %q:\n got  %+v\n Helm %+v", name, chart, e, want), fast
		}
	}
	return "", fast
}

// expectSameAsHelm checks Parse against Helm's loader, and reports whether the fast path was used.
func expectSameAsHelm(t testing.TB, g Gomega, data []byte, chart string) bool {
	diff, fast := differ(t, data, chart)
	g.Expect(diff).To(BeEmpty())
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

func TestMain(m *testing.M) {
	// Helm's loader warns about every entry it drops; the tests make many on purpose.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	code := m.Run()
	if helmFile != "" {
		os.Remove(helmFile)
	}
	os.Exit(code)
}

func TestParseAgreesWithHelm(t *testing.T) {
	generated, err := Generate(GenerateOptions{Charts: 5, Versions: 30, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	helmWritten := helmWrittenIndex(t, func(i int) string { return awkward[i%len(awkward)] }, false)
	fixtures := map[string]struct {
		data string
		fast bool
	}{
		"helm style":                       {helmStyle, true},
		"written by helm, awkward strings": {string(helmWritten), true},
		"wrapped plain scalars":            {"apiVersion: v1\nentries:\n  alpine:\n  - description: Build great things at any scale! As the leading *open source\n      - automation server, alias: no 'quote\n      \"either\n    name: alpine\n    keywords:\n    - a keyword wrapped\n      ? over lines & more\n    version: 1.0.0\n", true},
		"wrapped quoted scalars":           {"apiVersion: v1\nentries:\n  other:\n  - description: 'a\n  alpine:\n  - it''s\n\n    #\n'\n    name: other\n    version: 1.0.0\n  alpine:\n  - name: \"alp\\\n      ine\"\n    version: '1.0.0\n      -rc.1'\n    digest: \"a\\tb\\u00e9\n\n      c\"\n    urls:\n    - 'a\n      b.tgz'\n", true},
		"generated":                        {string(generated), true},
		"indented sequences":               {strings.ReplaceAll(helmStyle, "\n  - ", "\n    - "), false},
		"json":                             {`{"apiVersion":"v1","entries":{"alpine":[{"apiVersion":"v2","name":"alpine","version":"0.2.0","urls":["a.tgz"],"created":"2025-01-02T03:04:05Z"}]}}`, false},
		"flow style entry":                 {"apiVersion: v1\nentries:\n  alpine: [{apiVersion: v2, name: alpine, version: 0.3.0}]\n", false},
		"anchors and aliases":              {"apiVersion: v1\nentries:\n  alpine:\n  - &e\n    apiVersion: v2\n    name: alpine\n    version: 0.1.0\n  nginx:\n  - *e\n", false},
		"quoted chart key":                 {"apiVersion: v1\nentries:\n  \"alpine\":\n  - apiVersion: v2\n    name: alpine\n    version: 0.4.0\n", false},
		"comments":                         {"# repo\napiVersion: v1\nentries:\n  # charts\n  alpine:\n  - apiVersion: v2 # api\n    name: alpine\n    version: 0.5.0\n", true},
		"crlf":                             {strings.ReplaceAll(helmStyle, "\n", "\r\n"), false},
		"single quotes":                    {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: '0.6.0'\n    created: '2025-01-02T03:04:05Z'\n", true},
		"keys in odd order":                {"entries:\n  alpine:\n  - version: 0.7.0\n    name: alpine\n    apiVersion: v2\napiVersion: v1\n", true},
		"empty entries":                    {"apiVersion: v1\nentries: {}\n", false},
		"chart with no versions":           {"apiVersion: v1\nentries:\n  alpine: []\n", false},
		"comments as values":               {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: #1.0.0\n  - name: alpine\n    version: 1.0.1\n    digest: # none\n", true},
		"block scalars that look like other things": {"apiVersion: v1\nentries:\n  other:\n  - name: other\n    version: 1.0.0\n    annotations:\n      schema: |-\n        {\"a\": \"b\",\n          \"alpine\": [\n  alpine:\n  - name: alpine\n    version: 0.9.8\n    annotations:\n      notes: >+ # folded\n        - *not an alias\n        alias: none\n        - \n    keywords:\n    - |\n      multi\n    - plain\n    urls:\n    - a.tgz\n", true},
		"comment after urls key":                    {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 0.9.7\n    urls: # mirrors\n    - a.tgz\n", true},
		"v prefix and build metadata":               {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: v0.3.0\n  - apiVersion: v2\n    name: alpine\n    version: 0.2.0+up1.0\n", true},
		"unquoted created":                          {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: 0.8.0\n    created: 2025-01-02T03:04:05.5+02:00\n", true},
		"prefix-named charts first":                 {"apiVersion: v1\nentries:\n  alpine-extra:\n  - name: alpine-extra\n    version: 2.0.0\n  alpine:\n  - name: alpine\n    version: 1.0.0\n  alpin:\n  - name: alpin\n    version: 3.0.0\n", true},
		"indented sequence items":                   {"apiVersion: v1\nentries:\n    alpine:\n        -   name: alpine\n            version: 1.2.0\n            urls:\n                - a.tgz\n                - b.tgz\n        -\n            name: alpine\n            version: 1.3.0\n", true},
		"invalid entries dropped":                   {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 1.0.0\n  - name: alpine\n    version: 1.1.0\n    type: weird\n  - name: ../alpine\n    version: 1.2.0\n  - version: 1.3.0\n  - name: alpine\n  - name: alpine\n    version: not-semver\n  -\n  - name: alpine\n    version: 1.4.0\n    maintainers:\n    -\n  - name: alpine\n    version: 1.5.0\n    dependencies:\n    - name: a\n      alias: bad.alias\n  - name: alpine\n    version: 1.6.0\n    dependencies:\n    - name: a\n    - name: a\n", false},
		"multi-line quoted elsewhere":               {"apiVersion: v1\nentries:\n  other:\n  - name: other\n    version: 1.0.0\n    description: \"foo\n  alpine:\n  - bar\"\n", false},
		"multi-line plain version":                  {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 1.0.0\n      -rc.1\n", false},
		"yaml 1.1 scalars":                          {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 1.10\n    digest: 0x1F\n  - name: alpine\n    version: 2.0.0\n    deprecated: yes\n", false},
		"block scalar descriptions":                 {"apiVersion: v1\nentries:\n  other:\n  - name: other\n    version: 1.0.0\n    description: |\n      alpine:\n      - version: 9.9.9\n  alpine:\n  - name: alpine\n    version: 0.9.0\n    description: >-\n      version: 8.8.8\n", true},
		"document markers":                          {"---\napiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 0.9.1\n...\n", false},
		"tags":                                      {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: !!str 0.9.2\n", false},
		"merge keys":                                {"apiVersion: v1\nentries:\n  base:\n  - &b\n    name: alpine\n    version: 0.9.3\n  alpine:\n  - <<: *b\n    version: 0.9.4\n", false},
		"urls inline and empty":                     {"apiVersion: v1\nentries:\n  alpine:\n  - name: alpine\n    version: 0.9.5\n    urls: [a.tgz, b.tgz]\n  - name: alpine\n    version: 0.9.6\n    urls: []\n", false},
		"json with odd keys":                        {`{"apiVersion":"v1","entries":{"alpine":[{"Name":"alpine","VERSION":"0.1.0","urls":["a.tgz"]},null,{"name":"alpine","version":"0.2.0","version":"0.3.0"}],"nginx":null}}`, false},
		"null chart":                                {"apiVersion: v1\nentries:\n  alpine:\n  nginx: ~\n", false},
		"numeric-looking version":                   {"apiVersion: v1\nentries:\n  alpine:\n  - apiVersion: v2\n    name: alpine\n    version: 1.0\n", false},
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

// genIndex builds an index from a fuzzer's program bytes: charts whose names are prefixes of one
// another, entries with their keys in any order, values plain, quoted, numeric-looking, null or
// multi-line, comments, indentation variants, and now and then flow style, anchors or tags.
func genIndex(program []byte) string {
	pos := 0
	next := func(n int) int {
		if pos >= len(program) {
			return 0
		}
		pos++
		return int(program[pos-1]) % n
	}
	// pick favours its first, ordinary choice so that many indexes reach the fast path.
	pick := func(xs ...string) string {
		if i := next(2 * len(xs)); i < len(xs) {
			return xs[i]
		}
		return xs[0]
	}
	var b strings.Builder
	b.WriteString(pick("apiVersion: v1\n", "# index\napiVersion: v1\n", "", "apiVersion: \"v1\"\n"))
	b.WriteString(pick("entries:\n", "entries: # all\n", "entries:\n  # charts\n"))
	seq := pick("  ", "    ")
	for c, nc := 0, 1+next(4); c < nc; c++ {
		name := pick("alpine", "alpine-extra", "alpin", "nginx", "nginx-ingress", "alpine")
		b.WriteString("  " + name + ":" + pick("", "", " # chart", " []", " ~") + "\n")
		for e, ne := 0, next(4); e < ne; e++ {
			item := seq + pick("- ", "-   ", "-\n"+seq+"  ")
			keys := []string{
				"name: " + pick(name, name, "\""+name+"\"", "'"+name+"'", "../x", "", "alpine"),
				"version: " + pick("1.0.0", "1.2.3", "v1.0.0", "0.2.0+up1.0", "1.0.0-rc.1", "\"1.10\"", "1.10", "1.0", "yes", "1_000", "latest", "'2.0.0'", "1.0.0 # c", "1.0.0\n"+seq+"      -x", "\"1.0.0\n"+seq+"  alpine: 9\"", "!!str 3.0.0", "~", "&v 4.0.0"),
				"created: " + pick("\"2025-01-02T03:04:05.123456789Z\"", "2025-01-02T03:04:05Z", "'2025-01-02T03:04:05+02:00'", "\"\"", "2025-01-02"),
				"digest: " + pick("abc123", "\"sha256:ff\"", "0123", "1e5", ""),
				"urls:" + pick("\n"+seq+"  - a.tgz", "\n"+seq+"  - a.tgz\n"+seq+"  - \"b c.tgz\"", "\n"+seq+"    - a.tgz", " [a.tgz]", " []", "\n"+seq+"  - a.tgz\n"+seq+"    more", "\n"+seq+"  -"),
				"deprecated: " + pick("true", "false", "yes", "\"true\""),
				"type: " + pick("application", "library", "other", ""),
				"apiVersion: " + pick("v2", "v1", "\"v2\""),
				"description: " + pick("plain words", "\"quoted\"", "|\n"+seq+"    alpine:\n"+seq+"    - version: 9.9.9", "'it''s'", "\"open\n"+seq+"  nginx:\n"+seq+"  - x\""),
				"maintainers:" + pick("\n"+seq+"  - name: a", "\n"+seq+"  -", " []", "\n"+seq+"  - ~"),
				"dependencies:" + pick("\n"+seq+"  - name: a\n"+seq+"    version: 1.x", "\n"+seq+"  - name: a\n"+seq+"    alias: ok", "\n"+seq+"  - name: a\n"+seq+"    alias: bad.one", "\n"+seq+"  - name: a\n"+seq+"  - name: a"),
			}
			n := len(keys)
			for k := n - 1; k > 0; k-- {
				j := next(k + 1)
				keys[k], keys[j] = keys[j], keys[k]
			}
			keys = keys[:1+next(n)]
			b.WriteString(item + strings.Join(keys, "\n"+seq+"  ") + "\n")
		}
	}
	b.WriteString(pick("", "generated: \"2025-01-01T00:00:00Z\"\n", "serverInfo: {}\n"))
	out := b.String()
	if next(8) == 0 {
		out = strings.ReplaceAll(out, "\n", "\r\n")
	}
	return out
}

// FuzzParse compares Parse (and each of its two paths) with Helm's loader, on an index generated
// from program and on raw taken as an index.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte(helmStyle))
	f.Add([]byte("helmops index fuzzing seed with some bytes"), []byte("apiVersion: v1\nentries:\n  a:\n  - version: 1.0.0\n    name: a\n    apiVersion: v2\n"))
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5}, []byte(`{"apiVersion":"v1","entries":{"alpine":[{"name":"alpine","version":"1.0.0"}]}}`))
	// Indexes written by Helm's own writer from awkward strings: wrapped plain and quoted scalars,
	// escapes and block scalars of every kind.
	for shift := 0; shift < len(awkward); shift += 5 {
		if data := helmWrittenIndex(f, func(i int) string { return awkward[(i*7+shift)%len(awkward)] }, shift%2 == 1); data != nil {
			f.Add([]byte{byte(shift), 1, 2, 3}, data)
		}
	}
	f.Fuzz(func(t *testing.T, program, raw []byte) {
		if len(program) > 4096 || len(raw) > 1<<16 {
			return
		}
		index := genIndex(program)
		for _, chart := range []string{"alpine", "nginx", "alpin"} {
			if diff, _ := differ(t, []byte(index), chart); diff != "" {
				t.Fatalf("generated index:\n%s\n%s", index, diff)
			}
			if diff, _ := differ(t, raw, chart); diff != "" {
				t.Fatalf("raw index:\n%q\n%s", raw, diff)
			}
		}
	})
}

// The generator must reach the fast path often, or fuzzing only exercises the fallback.
func TestGeneratedIndexesReachTheFastPath(t *testing.T) {
	fast := 0
	for i := 0; i < 300; i++ {
		program := make([]byte, 64)
		for j := range program {
			program[j] = byte((i*31 + j*17 + i*j) % 251)
		}
		data := []byte(genIndex(program))
		if _, err := helmEntries(t, data, "alpine"); err != nil {
			continue
		}
		if diff, ok := differ(t, data, "alpine"); diff != "" {
			t.Fatalf("index:\n%s\n%s", data, diff)
		} else if ok {
			fast++
		}
	}
	t.Logf("%d of 300 generated indexes took the fast path", fast)
	if fast < 10 {
		t.Fatalf("only %d of 300 generated indexes took the fast path", fast)
	}
}

func TestParseReadsFilesAndReaders(t *testing.T) {
	g := NewWithT(t)
	want, err := ParseBytes([]byte(helmStyle), "alpine")
	g.Expect(err).NotTo(HaveOccurred())
	path := t.TempDir() + "/index.yaml"
	g.Expect(os.WriteFile(path, []byte(helmStyle), 0o644)).To(Succeed())
	f, err := os.Open(path)
	g.Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	for _, r := range []io.Reader{strings.NewReader(helmStyle), bytes.NewBufferString(helmStyle), f, io.MultiReader(strings.NewReader(helmStyle))} {
		got, err := Parse(r, "alpine")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(want))
	}
}

// The fast path skips the charts not asked for without allocating.
func TestScanSkipsOtherChartsWithoutAllocating(t *testing.T) {
	g := NewWithT(t)
	data, err := Generate(GenerateOptions{Charts: 10, Versions: 20, Seed: 3})
	g.Expect(err).NotTo(HaveOccurred())
	allocs := testing.AllocsPerRun(5, func() {
		if e, r := scan(data, "no-such-chart"); r != "" || e.Found {
			t.Fatal("the fast path did not take the generated index")
		}
	})
	g.Expect(allocs).To(BeZero())
}

func TestParseErrors(t *testing.T) {
	for name, data := range map[string]string{
		"empty":          "",
		"no api version": "entries:\n  alpine:\n  - name: alpine\n    version: 1.0.0\n",
		"not yaml":       "apiVersion: v1\nentries: [\n",
		"json no api":    `{"entries":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := ParseBytes([]byte(data), "alpine")
			g.Expect(err).To(MatchError(ContainSubstring("parsing repository index")))
		})
	}
}
