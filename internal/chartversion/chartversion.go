// Package chartversion chooses a chart version from the versions a repository publishes. It is
// pure: the Helm index and OCI tag listings both feed it, and it explains, for every newer
// version, why it was not chosen.
package chartversion

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Candidate is one published chart version.
type Candidate struct {
	// Version as published, e.g. "0.2.0", "v1.0.0" or "0.2.0+up1.0".
	Version string
	// Created is when the version was published (zero when unknown, as for OCI tags).
	Created time.Time
	// Digest is the archive or manifest digest, when known.
	Digest string
	// URLs are where the archive can be downloaded (Helm repositories only).
	URLs []string
	// Deprecated marks versions the chart's maintainers deprecated.
	Deprecated bool
}

// Rejection says why a version newer than the chosen one was not chosen.
type Rejection struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// Result is the chosen candidate and the newer candidates that were rejected, newest first.
type Result struct {
	Chosen   Candidate
	Rejected []Rejection
	// Latest is the newest stable (non-prerelease) semantic version among all candidates,
	// whatever the constraint; empty when there is none.
	Latest string
}

// InvalidConstraintError is a version that is neither a published version nor a valid
// Masterminds/semver constraint.
type InvalidConstraintError struct {
	Constraint string
	Err        error
}

func (e *InvalidConstraintError) Error() string {
	return fmt.Sprintf("improper constraint: %q", e.Constraint)
}

func (e *InvalidConstraintError) Unwrap() error { return e.Err }

// NoMatchError is a valid constraint that no published version satisfies.
type NoMatchError struct {
	Constraint string
	// Newest lists up to five of the newest published versions.
	Newest []string
}

func (e *NoMatchError) Error() string {
	if len(e.Newest) == 0 {
		return fmt.Sprintf("no version matches %q; no versions are published", e.Constraint)
	}
	return fmt.Sprintf("no version matches %q; newest: %s", e.Constraint, strings.Join(e.Newest, ", "))
}

// IsStatic reports whether version names one exact version (optionally v-prefixed, with
// prerelease or build metadata), so that there is nothing to resolve and nothing to poll.
func IsStatic(version string) bool {
	v := strings.TrimSpace(version)
	if v == "" || v == "*" {
		return false
	}
	_, err := semver.StrictNewVersion(strings.TrimPrefix(v, "v"))
	return err == nil
}

type parsed struct {
	c Candidate
	v *semver.Version
}

// newerFirst orders versions by semantic-version precedence, newest first; among versions of
// equal precedence (which differ only in build metadata or a "v" prefix) the most recently
// created comes first, then the larger build metadata, so the order never depends on input order.
func newerFirst(a, b parsed) int {
	if c := b.v.Compare(a.v); c != 0 {
		return c
	}
	if c := b.c.Created.Compare(a.c.Created); c != 0 {
		return c
	}
	return strings.Compare(b.v.Metadata(), a.v.Metadata())
}

// Choose picks the version a constraint resolves to:
//   - "" or "*": the newest stable version (no prereleases);
//   - a string equal to a published version wins first: literally ("v1.2.3" published and asked
//     as "v1.2.3"), then up to a "v" prefix ("v1.2.3" for "1.2.3" and the reverse), then by
//     semantic-version equality for an exact version ("1.2.3" for "1.2.3+up1.0" unless the
//     build metadata asked for differs);
//   - otherwise a Masterminds/semver v3 constraint; prereleases match only when the constraint
//     names one ("^1.2.0-0"), as Masterminds decides.
//
// Among versions of equal precedence the most recently created wins. Versions that are not
// semantic versions can only be chosen by naming them exactly; otherwise they are listed as
// rejected with the reason "not a semantic version".
//
// Deprecated versions stay eligible and are chosen like any other: in Helm, deprecation is a
// property of the chart (its newest Chart.yaml says deprecated: true), so skipping deprecated
// versions would silently roll a release back to an older version of the same deprecated chart.
// Candidate.Deprecated is carried to the caller so that it can warn.
func Choose(candidates []Candidate, constraint string) (Result, error) {
	constraint = strings.TrimSpace(constraint)
	all, unparsed := parseAll(candidates)
	latest := newestStable(all)
	if constraint != "" && constraint != "*" {
		if i := exactMatch(all, constraint); i >= 0 {
			return Result{Chosen: all[i].c, Rejected: rejectNewer(all[:i], unparsed, nil, ""), Latest: latest}, nil
		}
		for _, c := range unparsed {
			if c.Version == constraint {
				return Result{Chosen: c, Rejected: []Rejection{}, Latest: latest}, nil
			}
		}
	}

	var check *semver.Constraints
	if constraint != "" && constraint != "*" {
		var err error
		check, err = semver.NewConstraint(constraint)
		if err != nil {
			return Result{}, &InvalidConstraintError{Constraint: constraint, Err: err}
		}
	}
	for i, p := range all {
		if check == nil {
			if p.v.Prerelease() != "" {
				continue
			}
		} else if !check.Check(p.v) {
			continue
		}
		return Result{Chosen: p.c, Rejected: rejectNewer(all[:i], unparsed, check, constraint), Latest: latest}, nil
	}
	return Result{}, noMatch(all, constraint)
}

// parseAll parses the candidates' versions: all are those that are semantic versions, newest
// first (stable order among equal ones), unparsed the others in their order.
func parseAll(candidates []Candidate) (all []parsed, unparsed []Candidate) {
	for _, c := range candidates {
		v, err := semver.NewVersion(c.Version)
		if err != nil {
			unparsed = append(unparsed, c)
			continue
		}
		all = append(all, parsed{c, v})
	}
	slices.SortStableFunc(all, newerFirst)
	return all, unparsed
}

// newestStable is the newest version of all (sorted newest first) without a pre-release, "" when
// there is none.
func newestStable(all []parsed) string {
	for _, p := range all {
		if p.v.Prerelease() == "" {
			return p.c.Version
		}
	}
	return ""
}

// noMatch is the error when no version of all (sorted newest first) satisfies the constraint: it
// names the five newest.
func noMatch(all []parsed, constraint string) *NoMatchError {
	if constraint == "" {
		constraint = "*"
	}
	newest := make([]string, 0, 5)
	for _, p := range all[:min(len(all), 5)] {
		newest = append(newest, p.c.Version)
	}
	return &NoMatchError{Constraint: constraint, Newest: newest}
}

// exactMatch returns the index in all (sorted newest first) of the version the constraint names
// exactly, or -1.
func exactMatch(all []parsed, constraint string) int {
	for i, p := range all {
		if p.c.Version == constraint {
			return i
		}
	}
	for i, p := range all {
		if "v"+p.c.Version == constraint || p.c.Version == "v"+constraint {
			return i
		}
	}
	if !IsStatic(constraint) {
		return -1
	}
	want, err := semver.NewVersion(constraint)
	if err != nil {
		return -1
	}
	for i, p := range all {
		if p.v.Compare(want) == 0 && (want.Metadata() == "" || want.Metadata() == p.v.Metadata()) {
			return i
		}
	}
	return -1
}

// namesPrerelease reports whether a constraint mentions a prerelease version ("1.2.0-rc.1",
// ">=1.0.0-0"), as opposed to a hyphen range ("1 - 2").
func namesPrerelease(constraint string) bool {
	for i := 1; i+1 < len(constraint); i++ {
		if constraint[i] == '-' && constraint[i+1] != ' ' && constraint[i-1] != ' ' {
			return true
		}
	}
	return false
}

func rejectNewer(newer []parsed, unparsed []Candidate, check *semver.Constraints, constraint string) []Rejection {
	out := make([]Rejection, 0, len(newer)+len(unparsed))
	for _, p := range newer {
		reason := fmt.Sprintf("outside constraint %q", constraint)
		switch {
		case check == nil && p.v.Prerelease() != "":
			reason = "prerelease"
		case check == nil:
			reason = "not the exact version asked for"
		case p.v.Prerelease() != "" && !namesPrerelease(constraint):
			reason = "prerelease"
		}
		out = append(out, Rejection{Version: p.c.Version, Reason: reason})
	}
	for _, c := range unparsed {
		out = append(out, Rejection{Version: c.Version, Reason: "not a semantic version"})
	}
	return out
}
