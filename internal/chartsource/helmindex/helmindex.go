// Package helmindex reads Helm repository indexes (index.yaml, YAML or JSON) and keeps only the
// entries of the one chart asked for.
//
// It agrees with Helm's own loader (helm.sh/helm/v4/pkg/repo/v1 LoadIndexFile) on which entries a
// chart has, with one deliberate difference: an entry whose version is not a semantic version is
// kept, so that chartversion.Choose can say why it was not chosen; Helm drops it silently. Where
// Helm rejects a whole index (unknown fields, wrong types) Parse may still answer.
//
// Versions and other strings are kept exactly as written, except where YAML itself reads a plain
// scalar as something else: an unquoted "version: 1.10" is the number 1.1 to YAML 1.1, and Parse
// reads it as Helm does ("1.1"). Helm writes such values quoted.
package helmindex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"sigs.k8s.io/yaml"

	"github.com/helmops/helmops/internal/chartversion"
)

// Entries are the versions of one chart in an index.
type Entries struct {
	// Found is false when the index has no chart of that name.
	Found bool
	// Candidates are the chart's versions in index order.
	Candidates []chartversion.Candidate
}

// Parse reads an index and returns the entries of chart. It reads r into one buffer, sized up
// front when r tells its length (files, bytes.Reader, strings.Reader), and scans that; callers
// that already hold the index in memory should call ParseBytes, which copies nothing.
func Parse(r io.Reader, chart string) (Entries, error) {
	var buf bytes.Buffer
	if n := sizeHint(r); n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return Entries{}, fmt.Errorf("reading repository index: %w", err)
	}
	return ParseBytes(buf.Bytes(), chart)
}

// sizeHint is the number of bytes left in r when it can say so cheaply, or -1.
func sizeHint(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < 1<<31 {
			return fi.Size()
		}
	}
	return -1
}

// ParseBytes is Parse over an index already in memory. The entries it returns share no memory
// with data.
func ParseBytes(data []byte, chart string) (Entries, error) {
	e, _, err := ParseBytesExplained(data, chart, 0)
	return e, err
}

// FullParseTooLargeError is an index the fast scanner cannot read (flow style, anchors and
// other constructs it leaves to a full decode) and that is larger than the full decode is
// allowed to take: a full YAML decode holds many times the document in memory.
type FullParseTooLargeError struct {
	Size, Max int64
}

func (e *FullParseTooLargeError) Error() string {
	return fmt.Sprintf("the index is %d bytes of YAML that only a full parse reads (flow style, anchors or another layout Helm does not write), and the full parse is limited to %d bytes (%d MiB): serve the index as Helm writes it (block style, or JSON) or raise the full-parse limit", e.Size, e.Max, e.Max>>20)
}

// ParseBytesMax is ParseBytes that refuses with *FullParseTooLargeError an index larger than
// maxFull bytes that needs the full YAML decode (maxFull <= 0: no limit). JSON documents are
// decoded without that limit: their decode holds about one copy of the document.
func ParseBytesMax(data []byte, chart string, maxFull int64) (Entries, error) {
	out, _, err := ParseBytesExplained(data, chart, maxFull)
	return out, err
}

// ParseBytesExplained is ParseBytesMax, and says why the fast path left the index to the full
// parse ("" when it took it), so that callers can count fallbacks.
func ParseBytesExplained(data []byte, chart string, maxFull int64) (Entries, Refusal, error) {
	out, refusal := scan(data, chart)
	if refusal == "" {
		return out, "", nil
	}
	if maxFull > 0 && int64(len(data)) > maxFull && !json.Valid(data) {
		return Entries{}, refusal, &FullParseTooLargeError{Size: int64(len(data)), Max: maxFull}
	}
	out, err := parseFull(data, chart)
	return out, refusal, err
}

// Refusal names why the fast path left an index to the full parse. The set is small and fixed,
// fit for a metric label.
type Refusal string

// The reasons the fast path refuses an index.
const (
	RefuseLineBreaks       Refusal = "line_breaks"        // CR, tab or a Unicode line break somewhere
	RefuseTopLevel         Refusal = "top_level"          // JSON, document markers, directives, odd top-level keys
	RefuseNoAPIVersion     Refusal = "no_api_version"     // no apiVersion (the full parse says so)
	RefuseFlowStyle        Refusal = "flow_style"         // flow collections (JSON among them) or inline values of collections
	RefuseUnclosedQuote    Refusal = "unclosed_quote"     // a quoted scalar that never ends
	RefuseDocumentMarker   Refusal = "document_marker"    // "---" or "..." inside a quoted scalar
	RefuseStructure        Refusal = "structure"          // indentation or nesting the scanner does not follow
	RefuseChartKey         Refusal = "chart_key"          // a chart name that is quoted, complex or has an inline value
	RefuseEntryKey         Refusal = "entry_key"          // an entry key that is quoted, complex, a merge key or not ASCII
	RefuseDuplicateKey     Refusal = "duplicate_key"      // a chart or entry key written twice
	RefuseCaseFoldedKey    Refusal = "case_folded_key"    // "Version:" and the like, which Helm's JSON decoding matches
	RefuseAnchorAliasTag   Refusal = "anchor_alias_tag"   // anchors, aliases, tags, complex keys
	RefuseNullItem         Refusal = "null_item"          // a null sequence item in a field Helm validates
	RefuseDependencyAlias  Refusal = "dependency_alias"   // a dependency alias, which Helm validates
	RefuseURLs             Refusal = "urls"               // urls written other than as one item per line
	RefuseValue            Refusal = "value"              // a value of a field read that YAML rejects or only the full parse reads
	RefuseYAML11Scalar     Refusal = "yaml11_scalar"      // a plain scalar YAML 1.1 reads as a number, boolean, null or time
	RefuseWrappedReadField Refusal = "wrapped_read_field" // a plain scalar of a field read, wrapped over lines
	RefuseLongLine         Refusal = "long_line"          // Scan only: a logical line longer than its window
)

// fullEntry holds the fields of a chart version that decide whether Helm keeps it and what a
// version choice needs.
type fullEntry struct {
	APIVersion   string            `json:"apiVersion"`
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Type         string            `json:"type"`
	Created      time.Time         `json:"created"`
	Digest       string            `json:"digest"`
	URLs         []string          `json:"urls"`
	Deprecated   bool              `json:"deprecated"`
	Maintainers  []*struct{}       `json:"maintainers"`
	Dependencies []*fullDependency `json:"dependencies"`
}

type fullDependency struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

// parseFull decodes the document the way Helm does (JSON when it is valid JSON, otherwise YAML
// converted to JSON), handling every construct at the cost of decoding every chart.
func parseFull(data []byte, chart string) (Entries, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Entries{}, fmt.Errorf("parsing repository index: the index is empty")
	}
	decode := decodeYAML
	if json.Valid(data) {
		decode = decodeJSON
	}
	apiVersion, list, found, err := decode(data, chart)
	if err != nil {
		return Entries{}, err
	}
	if apiVersion == "" {
		return Entries{}, fmt.Errorf("parsing repository index: no API version")
	}
	out := Entries{Found: found}
	for _, e := range list {
		if e == nil || !helmKeeps(e) {
			continue
		}
		out.Candidates = append(out.Candidates, chartversion.Candidate{
			Version: e.Version, Created: e.Created, Digest: e.Digest, URLs: e.URLs, Deprecated: e.Deprecated,
		})
	}
	return out, nil
}

// decodeJSON decodes a JSON index's API version and the entries of one chart only.
func decodeJSON(data []byte, chart string) (apiVersion string, list []*fullEntry, found bool, err error) {
	var doc struct {
		APIVersion string                     `json:"apiVersion"`
		Entries    map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", nil, false, fmt.Errorf("parsing repository index: %w", err)
	}
	raw, found := doc.Entries[chart]
	if found {
		if err := json.Unmarshal(raw, &list); err != nil {
			return "", nil, false, fmt.Errorf("parsing entries of chart %q in repository index: %w", chart, err)
		}
	}
	return doc.APIVersion, list, found, nil
}

// decodeYAML decodes a YAML index as Helm's loader does.
func decodeYAML(data []byte, chart string) (apiVersion string, list []*fullEntry, found bool, err error) {
	var doc struct {
		APIVersion string                  `json:"apiVersion"`
		Entries    map[string][]*fullEntry `json:"entries"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", nil, false, fmt.Errorf("parsing repository index: %w", err)
	}
	list, found = doc.Entries[chart]
	return doc.APIVersion, list, found, nil
}

var aliasName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// helmKeeps mirrors the chart validation Helm's loader applies to each entry, except that a
// version that is not a semantic version is kept (the package comment says why).
func helmKeeps(e *fullEntry) bool {
	if !validName(sanitize(e.Name)) || e.Version == "" || !validType(e.Type) {
		return false
	}
	for _, m := range e.Maintainers {
		if m == nil {
			return false
		}
	}
	seen := map[string]bool{}
	for _, d := range e.Dependencies {
		if d == nil || (d.Alias != "" && !aliasName.MatchString(d.Alias)) {
			return false
		}
		key := sanitize(d.Name)
		if d.Alias != "" {
			key = d.Alias
		}
		if seen[key] {
			return true // Helm ignores this error, and stops checking there
		}
		seen[key] = true
	}
	return true
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && filepath.Base(name) == name
}

func validType(t string) bool {
	return t == "" || t == "application" || t == "library"
}

// sanitize is Helm's normalisation of metadata strings: spaces become ' ', non-printable
// characters go.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
}
