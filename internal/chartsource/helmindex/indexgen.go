package helmindex

import (
	"fmt"
	"math/rand/v2"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// GenerateOptions shape a generated index.
type GenerateOptions struct {
	// Charts and Versions per chart; defaults 150 × 120, which with full metadata gives an index of
	// about 23 MB, the shape of a large public repository.
	Charts, Versions int
	// Seed makes the output reproducible.
	Seed uint64
	// BaseURL prefixes the archive URLs.
	BaseURL string
}

// Generate writes an index.yaml with Helm's own index code, every entry carrying full metadata:
// description, keywords, sources, maintainers, dependencies and annotations. Chart names are
// chart-000 … chart-NNN; versions are MAJOR.MINOR.PATCH with some prereleases.
func Generate(o GenerateOptions) ([]byte, error) {
	if o.Charts == 0 {
		o.Charts = 150
	}
	if o.Versions == 0 {
		o.Versions = 120
	}
	if o.BaseURL == "" {
		o.BaseURL = "https://charts.example.com"
	}
	rnd := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	idx := repo.NewIndexFile()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for c := 0; c < o.Charts; c++ {
		name := fmt.Sprintf("chart-%03d", c)
		for v := 0; v < o.Versions; v++ {
			version := fmt.Sprintf("%d.%d.%d", v/40, (v/8)%5, v%8)
			if rnd.IntN(10) == 0 {
				version += fmt.Sprintf("-rc.%d", rnd.IntN(3))
			}
			md := generatedMetadata(rnd, name, version)
			digest := fmt.Sprintf("%016x%016x%016x%016x", rnd.Uint64(), rnd.Uint64(), rnd.Uint64(), rnd.Uint64())
			if err := idx.MustAdd(md, fmt.Sprintf("%s-%s.tgz", name, version), o.BaseURL, digest); err != nil {
				return nil, err
			}
			cv := idx.Entries[name][len(idx.Entries[name])-1]
			cv.Created = base.Add(time.Duration(c*o.Versions+v) * time.Minute)
		}
	}
	idx.SortEntries()
	idx.Generated = base
	return yaml.Marshal(idx)
}

// generatedMetadata is the metadata of one generated entry, with every field Helm writes.
func generatedMetadata(rnd *rand.Rand, name, version string) *chart.Metadata {
	return &chart.Metadata{
		APIVersion:  chart.APIVersionV2,
		Name:        name,
		Version:     version,
		AppVersion:  fmt.Sprintf("v%d.%d", rnd.IntN(10), rnd.IntN(30)),
		Description: fmt.Sprintf("%s packages a service for Kubernetes, version %s, build %d.", name, version, rnd.IntN(1000)),
		Home:        "https://example.com/" + name,
		Keywords:    []string{"database", "cache", "web", name},
		Sources:     []string{"https://github.com/example/" + name},
		Maintainers: []*chart.Maintainer{{Name: "Jane Doe", Email: "jane@example.com", URL: "https://example.com/jane"}, {Name: "Platform Team", Email: "platform@example.com"}},
		Dependencies: []*chart.Dependency{
			{Name: "common", Version: "2.x.x", Repository: "https://charts.example.com", Tags: []string{"bitnami-common"}},
			{Name: "redis", Version: "18.x.x", Repository: "oci://registry.example.com/charts", Condition: "redis.enabled"},
		},
		Annotations: map[string]string{
			"category":               "Infrastructure",
			"licenses":               "Apache-2.0",
			"images":                 fmt.Sprintf("- name: %s\n  image: registry.example.com/%s:%s\n- name: os-shell\n  image: registry.example.com/os-shell:12-debian-12-r%d\n", name, name, version, rnd.IntN(50)),
			"artifacthub.io/changes": "- kind: changed\n  description: bump dependencies\n",
		},
		Type: "application",
	}
}
