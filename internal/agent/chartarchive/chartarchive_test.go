package chartarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/helmops/helmops/internal/testenv"
)

type entry struct {
	name     string
	data     string
	typeflag byte
	size     int64 // header size when it must lie
	link     string
}

func craft(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		hd := &tar.Header{Name: e.name, Typeflag: tf, Mode: 0o644, Size: int64(len(e.data)), Linkname: e.link}
		if tf != tar.TypeReg {
			hd.Size = 0
		}
		if err := tw.WriteHeader(hd); err != nil {
			t.Fatal(err)
		}
		if tf == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const chartYAML = "apiVersion: v2\nname: demo\nversion: 0.1.0\n"

func TestLoadAcceptsARealChart(t *testing.T) {
	g := NewWithT(t)
	data, err := testenv.BuildChart("demo", "0.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	ch, err := Load(data, Limits{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ch.Metadata.Name).To(Equal("demo"))
	g.Expect(ch.Metadata.Version).To(Equal("0.1.0"))
	g.Expect(ch.Templates).NotTo(BeEmpty())
}

func TestLoadRejectsUnsafeArchives(t *testing.T) {
	cases := []struct {
		name    string
		archive func(t *testing.T) []byte
		limits  Limits
		reason  string
	}{
		{"parent directory", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/../../etc/passwd", data: "x"})
		}, Limits{}, "escapes the chart folder"},
		{"absolute path", func(t *testing.T) []byte {
			return craft(t, entry{name: "/etc/demo/Chart.yaml", data: chartYAML})
		}, Limits{}, "absolute path"},
		{"windows drive", func(t *testing.T) []byte {
			return craft(t, entry{name: `c:\demo\Chart.yaml`, data: chartYAML})
		}, Limits{}, "absolute path"},
		{"second top-level folder", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "other/x.yaml", data: "x"})
		}, Limits{}, "outside the chart folder"},
		{"file at the root", func(t *testing.T) []byte {
			return craft(t, entry{name: "Chart.yaml", data: chartYAML})
		}, Limits{}, "outside the chart folder"},
		{"symlink", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/templates/x.yaml", typeflag: tar.TypeSymlink, link: "/etc/passwd"})
		}, Limits{}, "is a link"},
		{"too many files", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/a", data: "a"}, entry{name: "demo/b", data: "b"})
		}, Limits{MaxFiles: 2}, "more than 2 files"},
		{"file too large", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/big", data: strings.Repeat("x", 2000)})
		}, Limits{MaxFileBytes: 1000}, `file "big"`},
		{"decompressed too large", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/a", data: strings.Repeat("x", 600)}, entry{name: "demo/b", data: strings.Repeat("x", 600)})
		}, Limits{MaxDecompressedBytes: 1000}, "decompressed chart is more than"},
		{"archive too large", func(t *testing.T) []byte {
			return craft(t, entry{name: "demo/Chart.yaml", data: chartYAML})
		}, Limits{MaxArchiveBytes: 10}, "more than the limit of 10"},
		{"not gzip", func(t *testing.T) []byte { return []byte("apiVersion: v2") }, Limits{}, "not a gzip archive"},
		{"empty", func(t *testing.T) []byte { return craft(t) }, Limits{}, "no files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Load(tc.archive(t), tc.limits)
			g.Expect(err).To(HaveOccurred())
			var ie *InvalidArchiveError
			g.Expect(errors.As(err, &ie)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.reason))
		})
	}
}

func TestCacheRoundTrip(t *testing.T) {
	g := NewWithT(t)
	c, err := NewCache(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	_, ok := c.Get("sha256:abc")
	g.Expect(ok).To(BeFalse())
	g.Expect(c.Put("sha256:abc", []byte("archive"))).To(Succeed())
	b, ok := c.Get("sha256:abc")
	g.Expect(ok).To(BeTrue())
	g.Expect(string(b)).To(Equal("archive"))
	_, ok = c.Get("sha256:abd")
	g.Expect(ok).To(BeFalse())
}
