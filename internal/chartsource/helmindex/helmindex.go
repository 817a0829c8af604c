// Package helmindex reads Helm repository indexes (index.yaml, YAML or JSON) and keeps only the
// entries of the one chart asked for.
package helmindex

import (
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/helmops/helmops/internal/chartversion"
)

// Entries are the versions of one chart in an index.
type Entries struct {
	// Found is false when the index has no chart of that name.
	Found bool
	// Candidates are the chart's versions in index order.
	Candidates []chartversion.Candidate
}

type entry struct {
	Version    string    `yaml:"version"`
	Created    time.Time `yaml:"created"`
	Digest     string    `yaml:"digest"`
	URLs       []string  `yaml:"urls"`
	Deprecated bool      `yaml:"deprecated"`
}

// Parse reads an index and returns the entries of chart.
func Parse(r io.Reader, chart string) (Entries, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Entries{}, err
	}
	return ParseBytes(data, chart)
}

// ParseBytes is Parse over an index already in memory.
func ParseBytes(data []byte, chart string) (Entries, error) {
	if out, ok := scan(data, chart); ok {
		return out, nil
	}
	return parseFull(data, chart)
}

// parseFull decodes the whole document with a YAML parser (JSON is YAML). It handles every
// construct, at the cost of building a node for everything.
func parseFull(data []byte, chart string) (Entries, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Entries{}, fmt.Errorf("parsing repository index: %w", err)
	}
	if len(root.Content) == 0 {
		return Entries{}, fmt.Errorf("parsing repository index: the document is empty")
	}
	top := resolveAlias(root.Content[0])
	if top.Kind != yaml.MappingNode {
		return Entries{}, fmt.Errorf("parsing repository index: not a mapping")
	}
	var apiVersion string
	var entries *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch top.Content[i].Value {
		case "apiVersion":
			apiVersion = top.Content[i+1].Value
		case "entries":
			entries = resolveAlias(top.Content[i+1])
		}
	}
	if apiVersion == "" {
		return Entries{}, fmt.Errorf("parsing repository index: no API version")
	}
	out := Entries{}
	if entries == nil || entries.Kind != yaml.MappingNode {
		return out, nil
	}
	for i := 0; i+1 < len(entries.Content); i += 2 {
		if entries.Content[i].Value != chart {
			continue
		}
		var list []entry
		if err := entries.Content[i+1].Decode(&list); err != nil {
			return Entries{}, fmt.Errorf("parsing entries of chart %q: %w", chart, err)
		}
		out.Found = true
		for _, e := range list {
			if e.Version == "" {
				continue // Helm drops entries without a version
			}
			out.Candidates = append(out.Candidates, chartversion.Candidate{
				Version: e.Version, Created: e.Created, Digest: e.Digest, URLs: e.URLs, Deprecated: e.Deprecated,
			})
		}
	}
	return out, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}
