package helmindex

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/helmops/helmops/internal/chartversion"
)

var (
	bigIndexOnce sync.Once
	bigIndex     []byte
)

// large is the 150 charts × 120 versions index (about 23 MB) of a large public repository.
func large(b *testing.B) []byte {
	bigIndexOnce.Do(func() {
		var err error
		if bigIndex, err = Generate(GenerateOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	})
	return bigIndex
}

// BenchmarkResolveLargeIndex resolves "1.x" of one chart on the large index: helmops (streaming
// parse of one chart + chartversion.Choose) next to the Helm SDK (LoadIndexFile + IndexFile.Get).
func BenchmarkResolveLargeIndex(b *testing.B) {
	data := large(b)
	b.Logf("index size: %.1f MB", float64(len(data))/1e6)
	const chart, constraint = "chart-075", "1.x"

	b.Run("helmops", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			e, err := ParseBytes(data, chart)
			if err != nil || !e.Found {
				b.Fatal(err)
			}
			if _, err := chartversion.Choose(e.Candidates, constraint); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("helm-sdk", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "index.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			idx, err := repo.LoadIndexFile(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := idx.Get(chart, constraint); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The generated index must take the fast path, or the benchmark measures the fallback.
func TestLargeIndexTakesTheFastPath(t *testing.T) {
	data, err := Generate(GenerateOptions{Charts: 20, Versions: 40, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scan(data, "chart-010"); !ok {
		t.Fatal("the fast path refused a generated index")
	}
}
