package chartarchive

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/helmops/helmops/internal/testutil"
)

func subchart(t *testing.T, name string, extra ...entry) []byte {
	return craft(t, append([]entry{{name: name + "/Chart.yaml", data: "apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n"}}, extra...)...)
}

// TestNestedSubchartsCountAgainstTheLimits: charts/*.tgz inside a chart are unpacked by Helm, so
// their files, bytes, links and number count too.
func TestNestedSubchartsCountAgainstTheLimits(t *testing.T) {
	t.Run("a chart with 1000 subcharts", func(t *testing.T) {
		g := NewWithT(t)
		entries := []entry{{name: "demo/Chart.yaml", data: chartYAML}}
		for i := range 1000 {
			entries = append(entries, entry{name: fmt.Sprintf("demo/charts/sub%d-0.1.0.tgz", i), data: string(subchart(t, fmt.Sprintf("sub%d", i)))})
		}
		archive := craft(t, entries...)
		grew := testutil.PeakRSSGrowth(t, func() {
			_, err := Load(archive, Limits{})
			g.Expect(err).To(MatchError(ContainSubstring("more than 200 subchart archives (charts/*.tgz)")))
		})
		t.Logf("%d KiB archive with 1000 subcharts refused; peak RSS grew by %d MiB", len(archive)>>10, grew>>20)
		g.Expect(grew).To(BeNumerically("<", 64<<20))
	})

	t.Run("100 levels of subcharts", func(t *testing.T) {
		g := NewWithT(t)
		inner := subchart(t, "sub99")
		for i := 98; i >= 0; i-- {
			inner = subchart(t, fmt.Sprintf("sub%d", i), entry{name: fmt.Sprintf("sub%d/charts/sub%d-0.1.0.tgz", i, i+1), data: string(inner)})
		}
		archive := craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/charts/sub0-0.1.0.tgz", data: string(inner)})
		grew := testutil.PeakRSSGrowth(t, func() {
			_, err := Load(archive, Limits{})
			g.Expect(err).To(MatchError(ContainSubstring("nests more than 8 levels deep")))
		})
		t.Logf("%d KiB archive with subcharts 100 levels deep refused; peak RSS grew by %d MiB", len(archive)>>10, grew>>20)
		g.Expect(grew).To(BeNumerically("<", 64<<20))
	})

	t.Run("a link inside a subchart", func(t *testing.T) {
		g := NewWithT(t)
		inner := subchart(t, "sub", entry{name: "sub/templates/x.yaml", typeflag: '2', link: "/etc/passwd"})
		_, err := Load(craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/charts/sub-0.1.0.tgz", data: string(inner)}), Limits{})
		g.Expect(err).To(MatchError(ContainSubstring("subchart charts/sub-0.1.0.tgz: entry \"sub/templates/x.yaml\" is a link")))
	})

	t.Run("a subchart that decompresses past the total", func(t *testing.T) {
		g := NewWithT(t)
		// 4 KiB of archive that unpacks to 2 MiB, against a 1 MiB total.
		inner := subchart(t, "sub", entry{name: "sub/values.yaml", data: strings.Repeat("a", 2<<20)})
		_, err := Load(craft(t, entry{name: "demo/Chart.yaml", data: chartYAML}, entry{name: "demo/charts/sub-0.1.0.tgz", data: string(inner)}),
			Limits{MaxDecompressedBytes: 1 << 20, MaxFileBytes: 4 << 20})
		g.Expect(err).To(MatchError(ContainSubstring("subchart charts/sub-0.1.0.tgz: decompressed chart is more than the limit of 1048576 bytes (subcharts included)")))
	})

	t.Run("a few subcharts load", func(t *testing.T) {
		g := NewWithT(t)
		ch, err := Load(craft(t, entry{name: "demo/Chart.yaml", data: chartYAML},
			entry{name: "demo/charts/a-0.1.0.tgz", data: string(subchart(t, "a"))},
			entry{name: "demo/charts/b-0.1.0.tgz", data: string(subchart(t, "b"))}), Limits{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ch.Dependencies()).To(HaveLen(2))
	})
}
