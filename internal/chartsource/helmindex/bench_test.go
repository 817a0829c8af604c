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

// BenchmarkResolveLargeIndex resolves "1.x" of one chart on the large index, side by side:
//   - helmops-bytes: ParseBytes over the index in memory (what the resolver's cache holds) and
//     chartversion.Choose;
//   - helmops-file: Parse reading the index file, and chartversion.Choose;
//   - helmops-stream: Scan reading the index file as it arrives (what helmops resolve does with
//     the response body), and chartversion.Choose;
//   - helm-sdk: Helm's repo.LoadIndexFile on the same file and IndexFile.Get.
func BenchmarkResolveLargeIndex(b *testing.B) {
	data := large(b)
	b.Logf("index: %.1f MB", float64(len(data))/1e6)
	path := filepath.Join(b.TempDir(), "index.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	const chart, constraint = "chart-075", "1.x"
	var versions [4]string

	b.Run("helmops-bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := ParseBytes(data, chart)
			if err != nil || !e.Found {
				b.Fatal(err)
			}
			res, err := chartversion.Choose(e.Candidates, constraint)
			if err != nil {
				b.Fatal(err)
			}
			versions[0] = res.Chosen.Version
		}
	})
	b.Run("helmops-file", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			e, err := Parse(f, chart)
			f.Close()
			if err != nil || !e.Found {
				b.Fatal(err)
			}
			res, err := chartversion.Choose(e.Candidates, constraint)
			if err != nil {
				b.Fatal(err)
			}
			versions[1] = res.Chosen.Version
		}
	})
	b.Run("helmops-stream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			e, refusal, _, err := Scan(f, chart, 0)
			f.Close()
			if err != nil || refusal != "" || !e.Found {
				b.Fatal(err, refusal)
			}
			res, err := chartversion.Choose(e.Candidates, constraint)
			if err != nil {
				b.Fatal(err)
			}
			versions[3] = res.Chosen.Version
		}
	})
	b.Run("helm-sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			idx, err := repo.LoadIndexFile(path)
			if err != nil {
				b.Fatal(err)
			}
			cv, err := idx.Get(chart, constraint)
			if err != nil {
				b.Fatal(err)
			}
			versions[2] = cv.Version
		}
	})
	for _, v := range []string{versions[0], versions[1], versions[3]} {
		if versions[2] != "" && v != "" && v != versions[2] {
			b.Fatalf("helmops chose %q (bytes, file, stream: %q), Helm chose %q", v, versions, versions[2])
		}
	}
}

// The generated index must take the fast path, or the benchmark measures the fallback.
func TestLargeIndexTakesTheFastPath(t *testing.T) {
	data, err := Generate(GenerateOptions{Charts: 20, Versions: 40, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, r := scan(data, "chart-010"); r != "" {
		t.Fatalf("the fast path refused a generated index: %s", r)
	}
}
