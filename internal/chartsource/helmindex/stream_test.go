package helmindex

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	. "github.com/onsi/gomega"
)

// chunkReader returns data in reads of at most size bytes, as a network connection does.
type chunkReader struct {
	data []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// streamDiffers checks Scan against the fast path over the whole buffer (want, refusal), with the
// index arriving in pieces of several sizes, split anywhere (inside quoted scalars, multi-byte
// characters and line ends). Where the fast path takes the index, Scan must answer the same;
// where it refuses, Scan must refuse too. A window too small for a logical line refuses.
func streamDiffers(data []byte, chart string, want Entries, refusal Refusal) string {
	readers := map[string]func() io.Reader{
		"chunks of 7 bytes":  func() io.Reader { return &chunkReader{data, 7} },
		"chunks of 4 KiB":    func() io.Reader { return &chunkReader{data, 4096} },
		"half reads":         func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"one read of it all": func() io.Reader { return bytes.NewReader(data) },
	}
	if len(data) <= 1<<16 {
		readers["one byte at a time"] = func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }
	}
	for name, r := range readers {
		for _, window := range []int{0, 64} {
			got, gotRefusal, n, err := Scan(r(), chart, window)
			switch {
			case err != nil:
				return fmt.Sprintf("Scan (%s, window %d) failed: %v", name, window, err)
			case gotRefusal == RefuseLongLine && window > 0:
				continue
			case refusal != "" && gotRefusal == "":
				return fmt.Sprintf("Scan (%s, window %d) took an index the fast path refuses (%s)", name, window, refusal)
			case refusal == "" && gotRefusal != "":
				return fmt.Sprintf("Scan (%s, window %d) refused (%s) an index the fast path takes", name, window, gotRefusal)
			case refusal == "" && !reflect.DeepEqual(got, want):
				return fmt.Sprintf("Scan (%s, window %d) disagrees with the fast path on chart %q:\n got  %+v\n want %+v", name, window, chart, got, want)
			case refusal == "" && n != int64(len(data)):
				return fmt.Sprintf("Scan (%s, window %d) read %d of %d bytes", name, window, n, len(data))
			}
		}
	}
	return ""
}

func TestScanReadsTheLargeIndexInPieces(t *testing.T) {
	g := NewWithT(t)
	data, err := Generate(GenerateOptions{Seed: 1})
	g.Expect(err).NotTo(HaveOccurred())
	want, refusal := scan(data, "chart-075")
	g.Expect(refusal).To(BeEmpty())
	g.Expect(want.Candidates).NotTo(BeEmpty())
	g.Expect(streamDiffers(data, "chart-075", want, refusal)).To(BeEmpty())
}

func TestScanRefusesWhatTheFastPathRefuses(t *testing.T) {
	g := NewWithT(t)
	for name, doc := range map[string]string{
		"crlf late":          helmStyle + "other: x\r\n",
		"unclosed quote":     "apiVersion: v1\nentries:\n  alpine:\n  - name: 'alpine\n    version: 1.0.0\n",
		"json":               `{"apiVersion":"v1","entries":{}}`,
		"line separator":     helmStyle + "x: \u2028\n",
		"next line, at end":  helmStyle + "x: \u0085",
		"tab":                "apiVersion: v1\nentries:\n\talpine: []\n",
		"no api version":     "entries:\n  alpine:\n  - name: alpine\n    version: 1.0.0\n",
		"duplicate chart":    strings.Replace(helmStyle, "generated:", "  alpine:\n  - name: alpine\n    version: 9.0.0\ngenerated:", 1),
		"document end early": "apiVersion: v1\nentries:\n  alpine:\n  - name: \"alpine\n...\n\"\n    version: 1.0.0\n",
	} {
		_, refusal := scan([]byte(doc), "alpine")
		g.Expect(refusal).NotTo(BeEmpty(), name)
		g.Expect(streamDiffers([]byte(doc), "alpine", Entries{}, refusal)).To(BeEmpty(), name)
	}
}

func TestScanWindowBoundsALongLine(t *testing.T) {
	g := NewWithT(t)
	long := "apiVersion: v1\nentries:\n  alpine:\n  - description: '" + string(bytes.Repeat([]byte("word\n      "), 4000)) + "'\n    name: alpine\n    version: 1.0.0\n"
	_, refusal, _, err := Scan(bytes.NewReader([]byte(long)), "alpine", 4096)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refusal).To(Equal(RefuseLongLine))
	e, refusal, _, err := Scan(bytes.NewReader([]byte(long)), "alpine", 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refusal).To(BeEmpty())
	g.Expect(e.Candidates).To(HaveLen(1))
}

func TestScanReportsReadErrors(t *testing.T) {
	g := NewWithT(t)
	_, _, _, err := Scan(iotest.TimeoutReader(bytes.NewReader([]byte(helmStyle))), "alpine", 0)
	g.Expect(err).To(MatchError(ContainSubstring("reading repository index")))
}
