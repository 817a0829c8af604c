// Package redact is the one place where text bound for status, events and logs loses its
// secrets, and where condition messages are cut to what the API accepts. Everything helmops
// shows about a remote system passes through String (or Error, or Message): passwords in URLs,
// query-string values, credentials a library repeats in its errors ("user:pass@host"),
// Authorization headers, and URLs too malformed to parse.
package redact

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxConditionMessage is the longest message a metav1.Condition accepts (its CRD schema's
// maxLength); longer ones make the whole status write fail.
const MaxConditionMessage = 32768

// Mark replaces what was removed.
const Mark = "REDACTED"

var (
	// urlPattern finds URLs in free text: a scheme, "://", and everything up to white space or a
	// quote.
	urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]{0,15}://[^\s"'<>\x60]+`)
	// userinfoPattern finds credentials written before a host without a scheme, as registry
	// clients repeat them: user:password@host.
	userinfoPattern = regexp.MustCompile(`[^\s/@:"'=,;()\[\]{}<>]+:[^\s/@"'<>]*@([a-zA-Z0-9.\-\[\]:]+)`)
	// headerPattern finds credentials of an Authorization header quoted in an error.
	headerPattern = regexp.MustCompile(`(?i)\b(basic|bearer|token)\s+[a-zA-Z0-9._~+/=-]{8,}`)
)

// String returns s without credentials: URLs lose their userinfo and the values of their query
// parameters, URLs that do not parse lose everything after their host, user:password@ before a
// host is dropped, and Authorization credentials are replaced.
func String(s string) string {
	if s == "" {
		return s
	}
	s = urlPattern.ReplaceAllStringFunc(s, URL)
	s = userinfoPattern.ReplaceAllString(s, "$1")
	s = headerPattern.ReplaceAllString(s, "$1 "+Mark)
	return s
}

// URL returns one URL without userinfo and with every query value replaced; a URL that does not
// parse keeps only its scheme and what looks like its host.
func URL(raw string) string {
	trail := ""
	// Punctuation that ends a sentence is not part of the URL.
	for len(raw) > 0 && strings.ContainsRune(".,;:)]", rune(raw[len(raw)-1])) {
		trail = raw[len(raw)-1:] + trail
		raw = raw[:len(raw)-1]
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" && u.Opaque != "" {
		return hostOnly(raw) + trail
	}
	u.User = nil
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Mark
		} else {
			for k := range q {
				q[k] = []string{Mark}
			}
			u.RawQuery = q.Encode()
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String() + trail
}

// hostOnly keeps scheme://host of a URL that does not parse, dropping userinfo, path and query.
func hostOnly(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "<invalid URL>"
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	return scheme + "://" + rest + "/<invalid URL>"
}

// Error is String of err's message ("" for nil).
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Message is what a condition message may say: s redacted and truncated to
// MaxConditionMessage.
func Message(s string) string { return Truncate(String(s), MaxConditionMessage) }

// Truncate cuts s to at most max bytes, on a rune boundary, ending in "..." when cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 3 {
		return s[:max]
	}
	cut := max - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
