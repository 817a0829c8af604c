// Package policy decides whether a HelmOp keeps to the Policies of its namespace (Fleet's
// policies.fleet.cattle.io): which repositories and charts it may fetch, which helmSecretName and
// service accounts it may name, and the defaults of the last two. It is pure: the HelmOp
// controller lists the Policies and acts on the answer.
package policy

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/redact"
)

// Rule names of the Policy fields, as a violation names them.
const (
	RuleRequireServiceAccount  = "requireServiceAccount"
	RuleAllowedServiceAccounts = "allowedServiceAccounts"
	RuleAllowedHelmSecretNames = "helmOp.allowedHelmSecretNames"
	RuleAllowedHelmRepoPattern = "helmOp.allowedHelmRepoPatterns"
	RuleAllowedChartPatterns   = "helmOp.allowedChartPatterns"
)

// pattern is one allowed pattern and the Policy it comes from.
type pattern struct {
	text   string
	policy string
	re     *regexp.Regexp
	err    error
}

// named is one allowed name and the Policy it comes from.
type named struct {
	name, policy string
}

// Set is the Policies of one namespace added up: allowed lists are joined, requireServiceAccount
// applies when any Policy sets it, and each default is the first one set, by Policy name.
type Set struct {
	// Namespace and Policies (sorted names) say where the rules come from.
	Namespace string
	Policies  []string

	requireServiceAccount []string // the Policies that set it
	serviceAccounts       []named
	secretNames           []named
	repoPatterns          []pattern
	chartPatterns         []pattern

	// Defaults are applied to a HelmOp before it is checked.
	Defaults Defaults
}

// Defaults are what a HelmOp that names no service account or secret gets.
type Defaults struct {
	ServiceAccount string
	HelmSecretName string
}

// Apply fills the empty fields of spec with the defaults.
func (d Defaults) Apply(spec *v1alpha1.HelmOpSpec) {
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = d.ServiceAccount
	}
	if spec.HelmSecretName == "" {
		spec.HelmSecretName = d.HelmSecretName
	}
}

// ApplyToBundle fills the service account and secret name of a Bundle's spec that its HelmOp
// left empty.
func (d Defaults) ApplyToBundle(spec *v1alpha1.BundleSpec) {
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = d.ServiceAccount
	}
	if spec.HelmOpOptions != nil && spec.HelmOpOptions.SecretName == "" {
		spec.HelmOpOptions.SecretName = d.HelmSecretName
	}
}

// Merge adds up the Policies of one namespace; nil when there are none (no restriction).
func Merge(namespace string, policies []v1alpha1.Policy) *Set {
	if len(policies) == 0 {
		return nil
	}
	policies = slices.Clone(policies)
	slices.SortFunc(policies, func(a, b v1alpha1.Policy) int { return strings.Compare(a.Name, b.Name) })
	s := &Set{Namespace: namespace}
	for _, p := range policies {
		s.Policies = append(s.Policies, p.Name)
		if p.RequireServiceAccount {
			s.requireServiceAccount = append(s.requireServiceAccount, p.Name)
		}
		for _, n := range p.AllowedServiceAccounts {
			s.serviceAccounts = append(s.serviceAccounts, named{n, p.Name})
		}
		h := p.HelmOp
		if h == nil {
			continue
		}
		if s.Defaults.ServiceAccount == "" {
			s.Defaults.ServiceAccount = h.DefaultServiceAccount
		}
		if s.Defaults.HelmSecretName == "" {
			s.Defaults.HelmSecretName = h.DefaultHelmSecretName
		}
		for _, n := range h.AllowedHelmSecretNames {
			s.secretNames = append(s.secretNames, named{n, p.Name})
		}
		s.repoPatterns = appendPatterns(s.repoPatterns, p.Name, h.AllowedHelmRepoPatterns)
		s.chartPatterns = appendPatterns(s.chartPatterns, p.Name, h.AllowedChartPatterns)
	}
	return s
}

func appendPatterns(out []pattern, policy string, texts []string) []pattern {
	for _, t := range texts {
		re, err := regexp.Compile(`^(?:` + t + `)$`)
		out = append(out, pattern{text: t, policy: policy, re: re, err: err})
	}
	return out
}

// Violation is a HelmOp field that a Policy rule does not allow.
type Violation struct {
	// Field is the HelmOp's field: "spec.helm.repo", "spec.targets[1].helm.repo", ….
	Field string
	// Rule is the Policy field that refuses it: "helmOp.allowedHelmRepoPatterns", ….
	Rule string
	// Message says what was refused and what is allowed.
	Message string
}

func (v *Violation) Error() string { return v.Field + ": " + v.Message }

// Check reports the first field of spec (defaults applied) that the Policies do not allow, or
// nil. Every helm block is checked: spec.helm and each target's override, since an override
// is fetched as much as spec.helm is.
func (s *Set) Check(spec *v1alpha1.HelmOpSpec) *Violation {
	if s == nil {
		return nil
	}
	if v := s.checkPatterns(); v != nil {
		return v
	}
	if len(s.requireServiceAccount) > 0 && spec.ServiceAccount == "" {
		return &Violation{Field: "spec.serviceAccount", Rule: RuleRequireServiceAccount,
			Message: fmt.Sprintf("a service account is required by %s of %s; set spec.serviceAccount", RuleRequireServiceAccount, s.policyNames(s.requireServiceAccount))}
	}
	if v := s.checkName("spec.serviceAccount", spec.ServiceAccount, RuleAllowedServiceAccounts, "service account", s.serviceAccounts); v != nil {
		return v
	}
	if v := s.checkName("spec.helmSecretName", spec.HelmSecretName, RuleAllowedHelmSecretNames, "secret", s.secretNames); v != nil {
		return v
	}
	if v := s.checkHelm("spec.helm", spec.HelmOrEmpty()); v != nil {
		return v
	}
	for i, t := range spec.Targets {
		if v := s.checkName(fmt.Sprintf("spec.targets[%d].serviceAccount", i), t.ServiceAccount, RuleAllowedServiceAccounts, "service account", s.serviceAccounts); v != nil {
			return v
		}
		if t.Helm != nil {
			if v := s.checkHelm(fmt.Sprintf("spec.targets[%d].helm", i), *t.Helm); v != nil {
				return v
			}
		}
	}
	return nil
}

// checkPatterns refuses everything while a pattern does not compile: a Policy that cannot be
// read allows nothing.
func (s *Set) checkPatterns() *Violation {
	for _, list := range []struct {
		rule     string
		patterns []pattern
	}{{RuleAllowedHelmRepoPattern, s.repoPatterns}, {RuleAllowedChartPatterns, s.chartPatterns}} {
		for _, p := range list.patterns {
			if p.err != nil {
				return &Violation{Field: "spec.helm", Rule: list.rule, Message: fmt.Sprintf(
					"%s of Policy %s/%s has %q, which is not a regular expression (%v): nothing is allowed until an administrator fixes it",
					list.rule, s.Namespace, p.policy, p.text, p.err)}
			}
		}
	}
	return nil
}

func (s *Set) checkName(field, value, rule, what string, allowed []named) *Violation {
	if value == "" || len(allowed) == 0 {
		return nil
	}
	names := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if a.name == value {
			return nil
		}
		names = append(names, a.name)
	}
	return &Violation{Field: field, Rule: rule, Message: fmt.Sprintf("%s %q is not allowed by %s of %s; allowed: %s",
		what, value, rule, s.policyNamesOf(allowed), strings.Join(quoteAll(names), ", "))}
}

// checkHelm checks one helm block: its repository (and a chart given as a URL, which is fetched
// too) against the repository patterns, its chart against the chart patterns.
func (s *Set) checkHelm(field string, h v1alpha1.HelmOptions) *Violation {
	repo, chart := strings.TrimSpace(h.Repo), strings.TrimSpace(h.Chart)
	if len(s.repoPatterns) > 0 {
		if repo != "" {
			if v := s.checkURL(field+".repo", repo); v != nil {
				return v
			}
		}
		if isURL(chart) {
			if v := s.checkURL(field+".chart", chart); v != nil {
				return v
			}
		}
	}
	if len(s.chartPatterns) == 0 {
		return nil
	}
	name, chartField := chart, field+".chart"
	switch {
	case isURL(chart):
		n, err := NormalURL(chart)
		if err != nil {
			return s.unparsable(chartField, RuleAllowedChartPatterns, chart, err, s.chartPatterns)
		}
		name = n
	case chart == "" && strings.HasPrefix(strings.ToLower(repo), "oci://"):
		name, chartField = ociChartName(repo), field+".repo"
	}
	if name == "" {
		return nil // inherits a chart checked in its own block
	}
	if matches(s.chartPatterns, chart, name) {
		return nil
	}
	return &Violation{Field: chartField, Rule: RuleAllowedChartPatterns, Message: fmt.Sprintf("chart %q is not allowed by %s of %s%s",
		redact.URL(name), RuleAllowedChartPatterns, s.policyNamesOfPatterns(s.chartPatterns), askAdmin)}
}

func (s *Set) checkURL(field, raw string) *Violation {
	normal, err := NormalURL(raw)
	if err != nil {
		return s.unparsable(field, RuleAllowedHelmRepoPattern, raw, err, s.repoPatterns)
	}
	if matches(s.repoPatterns, raw, normal) {
		return nil
	}
	shown := fmt.Sprintf("%q", redact.URL(raw))
	if normal != redact.URL(raw) {
		shown += fmt.Sprintf(" (compared as %q)", normal)
	}
	return &Violation{Field: field, Rule: RuleAllowedHelmRepoPattern, Message: fmt.Sprintf("%s is not allowed by %s of %s%s",
		shown, RuleAllowedHelmRepoPattern, s.policyNamesOfPatterns(s.repoPatterns), askAdmin)}
}

func (s *Set) unparsable(field, rule, raw string, err error, patterns []pattern) *Violation {
	return &Violation{Field: field, Rule: rule, Message: fmt.Sprintf("%q cannot be checked against %s of %s: %v",
		redact.URL(raw), rule, s.policyNamesOfPatterns(patterns), err)}
}

// matches reports whether a pattern matches the normal form, or is the raw value itself (a plain
// string allow-list, as Fleet accepts). A pattern is never matched against the raw text, where
// userinfo or "." path elements could make another host look allowed.
func matches(patterns []pattern, raw, normal string) bool {
	for _, p := range patterns {
		if p.text == raw || p.text == normal || p.re != nil && p.re.MatchString(normal) {
			return true
		}
	}
	return false
}

func isURL(s string) bool { return strings.Contains(s, "://") }

// NormalURL is the form repository patterns are matched against: lower-case scheme and host,
// without userinfo, default port, trailing dot of the host and fragment, the path cleaned of "."
// and ".." elements and of a trailing slash, the query kept. A URL without a scheme or host is an
// error.
func NormalURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if scheme == "" || host == "" {
		return "", fmt.Errorf("a URL needs a scheme and a host")
	}
	port := u.Port()
	if port == "443" && (scheme == "https" || scheme == "oci") || port == "80" && scheme == "http" {
		port = ""
	}
	hostPort := host
	if strings.Contains(host, ":") {
		hostPort = "[" + host + "]"
	}
	if port != "" {
		hostPort = net.JoinHostPort(host, port)
	}
	p := ""
	if u.Path != "" {
		p = path.Clean("/" + u.Path)
	}
	p = strings.TrimSuffix(p, "/")
	out := scheme + "://" + hostPort + p
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// ociChartName is the last path element of an oci:// reference, without tag or digest.
func ociChartName(ref string) string {
	normal, err := NormalURL(ref)
	if err != nil {
		return ref
	}
	u, _ := url.Parse(normal)
	name := path.Base(u.Path)
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.Index(name, ":"); i >= 0 {
		name = name[:i]
	}
	if name == "/" || name == "." {
		return ""
	}
	return name
}

func (s *Set) policyNames(names []string) string {
	names = slices.Compact(slices.Clone(names))
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.Namespace + "/" + n
	}
	if len(out) == 1 {
		return "Policy " + out[0]
	}
	return "Policies " + strings.Join(out, ", ")
}

func (s *Set) policyNamesOf(list []named) string {
	names := make([]string, len(list))
	for i, n := range list {
		names[i] = n.policy
	}
	return s.policyNames(names)
}

func (s *Set) policyNamesOfPatterns(list []pattern) string {
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.policy
	}
	return s.policyNames(names)
}

// askAdmin ends a refusal by a pattern. The patterns themselves are not quoted: they read as
// URLs to the redactor every condition message passes, and the Policy shows them.
const askAdmin = ": use a repository and chart the Policy allows, or ask an administrator of the namespace to change it"

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
