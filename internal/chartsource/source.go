// Package chartsource reads charts from where a HelmOp says they are: Helm HTTP(S) repositories
// (through one shared, size-bounded index cache with conditional requests), OCI registries and
// chart tarball URLs. It resolves a version constraint to one exact version and downloads chart
// archives, sending credentials only to the host they belong to.
package chartsource

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/redact"
)

// Kind is where a chart comes from.
type Kind string

const (
	// KindHelmRepo is a Helm repository served over HTTP(S) with an index.yaml.
	KindHelmRepo Kind = "helm"
	// KindOCI is a chart in an OCI registry (repo starts with oci://).
	KindOCI Kind = "oci"
	// KindTarball is a chart archive URL (chart ends in .tgz).
	KindTarball Kind = "tarball"
)

// Ref names a chart as the helm block of a HelmOp does.
type Ref struct {
	Repo, Chart, Version string
	// Digest, when set on an OCI reference given to FetchArchive, is the manifest to pull
	// (the one the controller resolved the version to), whatever the tag names by now; the
	// tag is not resolved again. Other kinds ignore it: their caller compares the archive.
	Digest string
}

// Location is the URL credentials are bound against (Auth.BoundTo): the repository, or the chart
// archive URL.
func (r Ref) Location() string {
	if r.Repo == "" {
		return r.Chart
	}
	return r.Repo
}

// FieldError is a helm block whose fields cannot be used together or are malformed. It is a
// terminal error: the spec must change.
type FieldError struct {
	// Field is relative to the HelmOp spec: "helm.repo", "helm.chart" or "helm.version".
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ErrUnauthorized is wrapped by every error caused by a 401 or 403 answer.
var ErrUnauthorized = errors.New("unauthorized")

// NotFoundError is an index, chart, repository or version that does not exist.
type NotFoundError struct {
	// Object is what was not found: "index", "chart", "repository" or "version".
	Object string
	// Name of the chart, repository or version.
	Name string
	// Where is the repository or registry it was looked up in.
	Where string
}

func (e *NotFoundError) Error() string {
	switch e.Object {
	case "index":
		return fmt.Sprintf("no Helm repository index at %s (404 Not Found): check helm.repo", e.Where)
	case "chart":
		return fmt.Sprintf("chart %q not found in repository %s: check helm.chart", e.Name, e.Where)
	case "repository":
		return fmt.Sprintf("repository %q not found in the registry: check helm.repo", e.Name)
	case "archive":
		return fmt.Sprintf("chart archive %s not found (404 Not Found)", e.Where)
	default:
		return fmt.Sprintf("%s %q not found in %s", e.Object, e.Name, e.Where)
	}
}

// Classify says which kind of source a helm block names and checks that its fields may be
// combined:
//   - chart ends in .tgz: a tarball URL; repo and version must be empty;
//   - repo starts with oci://: the full chart reference; chart must be empty;
//   - otherwise repo (an http or https URL) and chart are both required.
func Classify(ref Ref) (Kind, error) {
	repo, chart, version := strings.TrimSpace(ref.Repo), strings.TrimSpace(ref.Chart), strings.TrimSpace(ref.Version)
	switch {
	case repo == "" && chart == "":
		if version != "" {
			return "", &FieldError{Field: "helm.chart", Message: "the helm block needs a chart: helm.version is set but neither helm.repo nor helm.chart is; set helm.repo and helm.chart, helm.repo to an oci:// reference, or helm.chart to a .tgz URL"}
		}
		return "", &FieldError{Field: "helm.chart", Message: "the helm block needs a chart: set helm.repo and helm.chart, helm.repo to an oci:// reference, or helm.chart to a .tgz URL"}
	case strings.HasSuffix(strings.ToLower(chart), ".tgz"):
		if repo != "" {
			return "", &FieldError{Field: "helm.repo", Message: "must be empty when helm.chart is a chart archive URL (ending in .tgz); remove helm.repo, or set helm.chart to a chart name"}
		}
		if version != "" {
			return "", &FieldError{Field: "helm.version", Message: "must be empty when helm.chart is a chart archive URL (ending in .tgz): the archive is one exact version; remove helm.version"}
		}
		if err := checkHTTPURL(chart); err != nil {
			return "", &FieldError{Field: "helm.chart", Message: "a chart archive must be an http:// or https:// URL ending in .tgz: " + err.Error()}
		}
		return KindTarball, nil
	case strings.HasPrefix(strings.ToLower(repo), "oci://"):
		if chart != "" {
			return "", &FieldError{Field: "helm.chart", Message: "must be empty when helm.repo is an oci:// reference, which names the chart itself (oci://registry/path/chart); remove helm.chart or move it into helm.repo"}
		}
		if _, err := parseOCIRef(repo); err != nil {
			return "", &FieldError{Field: "helm.repo", Message: err.Error()}
		}
		return KindOCI, nil
	default:
		return classifyHelmRepo(repo, chart)
	}
}

// classifyHelmRepo checks a Helm repository URL and a chart name.
func classifyHelmRepo(repo, chart string) (Kind, error) {
	if repo == "" {
		return "", &FieldError{Field: "helm.repo", Message: fmt.Sprintf("is required for chart %q: set it to the Helm repository URL (https://…), or set helm.chart to a .tgz URL", chart)}
	}
	if err := checkHTTPURL(repo); err != nil {
		return "", &FieldError{Field: "helm.repo", Message: "must be an http:// or https:// Helm repository URL or an oci:// reference: " + err.Error()}
	}
	if chart == "" {
		return "", &FieldError{Field: "helm.chart", Message: "is required with a Helm repository URL in helm.repo: set it to the chart's name"}
	}
	if strings.ContainsAny(chart, "/?#") || strings.ContainsAny(chart, " \t") {
		return "", &FieldError{Field: "helm.chart", Message: fmt.Sprintf("%q is not a chart name: give the chart's name as it appears in the repository index", chart)}
	}
	return KindHelmRepo, nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", redact.URL(s))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q has scheme %q", redact.URL(s), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redact.URL(s))
	}
	return nil
}

// Resolution is one exact chart version.
type Resolution struct {
	Kind Kind `json:"kind"`
	// Version is the exact chart version ("" for a tarball).
	Version string `json:"version"`
	// Digest is "sha256:…": of the archive for Helm repositories (when the index has it) and
	// tarballs fetched, of the manifest for OCI.
	Digest string `json:"digest,omitempty"`
	// URL is where the archive is: the absolute archive URL, oci://registry/repo:tag, or the
	// tarball URL.
	URL     string    `json:"url"`
	Created time.Time `json:"created,omitzero"`
	// Rejected lists the versions newer than Version and why each was not chosen, newest first.
	Rejected []chartversion.Rejection `json:"rejected,omitempty"`
	// Latest is the newest stable version the repository offers, whatever the constraint; empty
	// when the versions were not listed (an exact OCI version is resolved by its tag alone).
	Latest string `json:"latest,omitempty"`
}

// resolveError adds the chart and repository to a version-choice error.
type resolveError struct {
	msg string
	err error
}

func (e *resolveError) Error() string { return e.msg }
func (e *resolveError) Unwrap() error { return e.err }

// choiceError explains a failed version choice with the chart and where it was looked up.
func choiceError(err error, chart, where string) error {
	var nm *chartversion.NoMatchError
	if errors.As(err, &nm) {
		tail := "no versions are published"
		if len(nm.Newest) > 0 {
			tail = "newest: " + strings.Join(nm.Newest, ", ")
		}
		return &resolveError{msg: fmt.Sprintf("no version of chart %q matches %q in %s; %s", chart, nm.Constraint, where, tail), err: err}
	}
	var ic *chartversion.InvalidConstraintError
	if errors.As(err, &ic) {
		return &resolveError{msg: "helm.version: " + ic.Error() + ": use an exact version or a semantic version constraint such as 1.2.x or >= 1.0", err: err}
	}
	return err
}
