package helmindex

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	. "github.com/onsi/gomega"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// awkward are strings that make Helm's index writer (sigs.k8s.io/yaml over go.yaml.in/yaml/v2)
// choose each of its scalar styles: plain, plain wrapped over lines, single-quoted (wrapped or
// not, with ”), double-quoted with escapes (wrapped or not, with escaped line breaks), and
// literal block scalars with each chomping and an indentation indicator.
var awkward = []string{
	"Jenkins - Build great things at any scale! As the leading open source automation server, Jenkins provides over 2000 plugins to support building, deploying and automating any project. ",
	"'quoted' at the start and \"double\" later: with a colon: and # a hash, wrapped well past the eighty column limit of the writer",
	"- a leading dash and a very long tail that goes on and on past the width so that the writer must wrap it somewhere",
	"ünïcödé 日本語 ✓ — long enough to wrap: the quick brown fox jumps over the lazy dog, again and again and again",
	"line one\nline two\n\n  indented line four\n",
	"tab\there and a control \x01 char in a long string that needs double quotes and wrapping past eighty columns, yes",
	"  leading spaces and trailing spaces  ",
	"# looks like a comment",
	"alpine:\n- version: 9.9.9\n  name: alpine\n",
	"  alpine:\n  - version: 9.9.8\n",
	"key: value",
	"@at `tick` %percent &amp *star !bang |pipe >gt [b] {c}, ?q and a long enough tail to be wrapped by the writer",
	"1.10", "yes", "null", "~", "", "-", "---", "...", ":", "? x",
	"a  double  spaced   long string with many     runs of spaces that the writer has to wrap somewhere past eighty",
	strings.Repeat("x", 100) + " " + strings.Repeat("y", 100),
	"trailing newlines\n\n\n", "\n\nleading newlines", "no trailing newline\nat all",
	"alias: bad.one", "*notalias &notanchor !nottag <<: merge",
	"emoji 🚀, NBSP \u00a0, line separator \u2028 and paragraph separator \u2029 in one long line of text",
	"back\\slash \\n not a newline, long enough to be wrapped by the emitter at the eighty column boundary ok",
	"\"starts with a double quote and is long enough to be wrapped by the writer at its eighty column width\"",
	"it's a string with an apostrophe ' in the middle, long enough that the writer wraps it: here and there too",
	"ends with a colon:",
	"words   \n   around   \n   breaks   ",
	" \n",
	"version: 9.9.9\nurls:\n- evil.tgz",
}

// helmWrittenIndex writes, with Helm's own IndexFile.WriteFile, an index of three charts whose
// entries carry pick(i) in every free-text field (description, home, icon, app and Kubernetes
// versions, keywords, sources, maintainers, annotations, dependency fields). When readFields is
// set, the version, digest and URLs take awkward values too.
func helmWrittenIndex(t testing.TB, pick func(i int) string, readFields bool) []byte {
	t.Helper()
	idx := repo.NewIndexFile()
	base := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)
	n := 0
	next := func() string { n++; return pick(n) }
	for c, name := range []string{"alpine", "alpine-extra", "nginx"} {
		for v, version := range []string{"1.0.0", "1.10", "2.0.0-rc.1+build.5", "v3.1.0"} {
			md := &chart.Metadata{
				APIVersion:  chart.APIVersionV2,
				Name:        name,
				Version:     version,
				AppVersion:  next(),
				Description: next(),
				Home:        next(),
				Icon:        next(),
				KubeVersion: ">=1.19.0-0",
				Keywords:    []string{next(), next(), name},
				Sources:     []string{next()},
				Maintainers: []*chart.Maintainer{{Name: next(), Email: next(), URL: next()}},
				Dependencies: []*chart.Dependency{
					{Name: "common", Version: next(), Repository: next(), Condition: next(), Tags: []string{next()}},
				},
				Annotations: map[string]string{"category": next(), "artifacthub.io/changes": next(), shortKey(next()): next()},
				Type:        "application",
			}
			digest := fmt.Sprintf("%064x", c*100+v)
			if err := idx.MustAdd(md, fmt.Sprintf("%s-%s.tgz", name, version), "https://charts.example.com/charts", digest); err != nil {
				t.Fatalf("adding %s %s: %v", name, md.Version, err)
			}
			cv := idx.Entries[name][len(idx.Entries[name])-1]
			if readFields {
				cv.Version = version + next()
				cv.Digest = next()
				cv.URLs = append([]string{next()}, cv.URLs...)
			}
			cv.Created = base.Add(time.Duration(c*10+v) * time.Hour)
			cv.Deprecated = v == 2
		}
	}
	idx.SortEntries()
	path := filepath.Join(t.TempDir(), "index.yaml")
	if err := idx.WriteFile(path, 0o644); err != nil {
		// The writer converts JSON to YAML, and fails on keys YAML cannot read back (a key
		// with a Unicode line break): there is no index to compare.
		t.Logf("Helm's writer refused the index: %v", err)
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// shortKey keeps an annotation key on one line and under the 128 bytes beyond which the writer
// makes it a complex key ("? key"), which the fast path leaves to the full parse.
func shortKey(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > 40 {
		s = s[:40]
	}
	return s + "/key"
}

// TestHelmWrittenIndexes checks the fast path against Helm's loader on indexes Helm's writer
// produced from awkward strings, and that it takes those whose awkward strings are all in fields
// it skips: wrapped plain and quoted scalars and block scalars no longer send it to the full parse.
func TestHelmWrittenIndexes(t *testing.T) {
	var all strings.Builder
	for shift := 0; shift < len(awkward); shift++ {
		for _, readFields := range []bool{false, true} {
			data := helmWrittenIndex(t, func(i int) string { return awkward[(i*7+shift)%len(awkward)] }, readFields)
			if data == nil {
				continue
			}
			all.Write(data)
			for _, name := range []string{"alpine", "nginx", "alpine-extra", "missing"} {
				diff, fast := differ(t, data, name)
				if diff != "" {
					t.Fatalf("shift %d, awkward read fields %v:\n%s\n%s", shift, readFields, data, diff)
				}
				_, refusal := scan(data, name)
				if !readFields && !fast && !strings.ContainsAny(string(data), "\u2028\u2029\u0085") {
					t.Errorf("shift %d: the fast path refused a Helm-written index (%s):\n%s", shift, refusal, data)
				}
			}
		}
	}
	// The fixtures cover every style the writer has.
	for _, shape := range []string{
		"description: 'Jenkins - Build great things at any scale! As the leading open source\n", // wrapped single quotes
		"'it''s a string", // '' in single quotes
		"\n      \\ ",     // a wrapped double-quoted scalar, the next line starting with an escaped space
		"\\t",             // an escape
		"description: a  double  spaced   long string with many     runs of spaces that\n", // wrapped plain
		": |\n", ": |-\n", ": |+\n", ": |2\n", // literal block scalars
	} {
		if !strings.Contains(all.String(), shape) {
			t.Errorf("no fixture has %q", shape)
		}
	}
}

// TestHelmWrittenWrappedDescription is the shape that sent real repositories to the full parse:
// a description wrapped by Helm's writer, in the chart asked for and in the others.
func TestHelmWrittenWrappedDescription(t *testing.T) {
	g := NewWithT(t)
	data := helmWrittenIndex(t, func(int) string { return awkward[0] }, false)
	g.Expect(string(data)).To(ContainSubstring("description: 'Jenkins - Build great things at any scale! As the leading open source\n      automation server"))
	for _, name := range []string{"alpine", "nginx"} {
		e, refusal := scan(data, name)
		g.Expect(refusal).To(BeEmpty())
		g.Expect(e.Candidates).To(HaveLen(4))
		g.Expect(expectSameAsHelm(t, g, data, name)).To(BeTrue())
	}
}

// FuzzHelmWritten writes indexes with Helm's own writer from the fuzzer's strings, put in every
// field (the fields the fast path reads included when the program says so), and compares Parse
// and its two paths with Helm's loader.
func FuzzHelmWritten(f *testing.F) {
	for i, s := range awkward {
		f.Add([]byte{byte(i), byte(i * 7), 3, 9}, s, i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, program []byte, text string, readFields bool) {
		if len(program) > 256 || len(text) > 512 {
			return
		}
		pick := func(i int) string {
			if len(program) == 0 {
				return text
			}
			switch b := program[i%len(program)]; {
			case b%3 == 0:
				return text
			case b%3 == 1:
				return awkward[int(b)%len(awkward)] + text
			default:
				return awkward[int(b)%len(awkward)]
			}
		}
		data := helmWrittenIndex(t, pick, readFields)
		if data == nil {
			return
		}
		for _, name := range []string{"alpine", "nginx", "alpine-extra"} {
			if diff, _ := differ(t, data, name); diff != "" {
				t.Fatalf("index:\n%s\n%s", data, diff)
			}
		}
	})
}

func TestDecodeQuoted(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		single bool
		want   string
		ok     bool
	}{
		{"it''s", true, "it's", true},
		{"a\n  b", true, "a b", true},
		{"a  \n\n  b", true, "a\nb", true},
		{"a\n\n\n b ", true, "a\n\nb ", true},
		{"x\\\n  y", false, "xy", true},
		{"x \\\n  \\ y", false, "x  y", true},
		{"\\t\\u00e9\\x41\\U0001F680\\N\\_\\L\\P\\0\\\\\\\"", false, "\té\x41🚀\u0085\u00a0\u2028\u2029\x00\\\"", true},
		{"bad \\q", false, "", false},
		{"\\ud800", false, "", false},
		{"\\x4", false, "", false},
		{"trailing\n", false, "trailing ", true},
	} {
		got, _, ok := decodeQuoted([]byte(tc.raw), tc.single)
		if ok != tc.ok || got != tc.want {
			t.Errorf("decodeQuoted(%q, %v) = %q, %v; want %q, %v", tc.raw, tc.single, got, ok, tc.want, tc.ok)
		}
	}
}
