package helmindex

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/helmops/helmops/internal/chartversion"
)

// scan is the fast path: a line scanner over the block-style YAML that Helm writes. It skips the
// other charts without allocating (block scalar content is skipped whatever it contains) and
// decodes only what a version choice needs from the chart asked for: version, created, digest,
// urls and deprecated, plus name and type and the null items and aliases that decide whether
// Helm's validation keeps an entry. It reports ok=false for anything it does not handle exactly
// (JSON, flow style, anchors and aliases, tags, multi-line or escaped scalars, plain scalars YAML
// 1.1 reads as numbers, booleans or null, keys that Helm's JSON decoding matches regardless of
// case, CRLF, tabs, duplicate keys), and the caller then parses the whole document instead:
// never a silently wrong answer.
func scan(data []byte, chart string) (Entries, bool) {
	if bytes.IndexByte(data, '\r') >= 0 || bytes.IndexByte(data, '\t') >= 0 {
		return Entries{}, false
	}
	var (
		out         Entries
		sawAPI      bool
		inEntries   bool
		chartIndent = -1
		inChart     bool
		seqIndent   = -1 // column of the dashes of the chart's sequence
		itemIndent  = -1 // column of the keys of the current entry
		urlIndent   = -1 // column of the dashes of the current entry's urls
		readScalar  bool // the last key of the entry is one we read, with its value on its line
		cur         *chartversion.Candidate
		curHasVer   bool
		inURLs      bool
		keysSeen    map[string]bool
		foundCharts int
		blockIndent = -1 // lines indented more than this are the content of a block scalar
		curName     string
		curType     string
	)
	flush := func() {
		// Helm drops entries without a valid name, version or type (see helmKeeps).
		if cur != nil && curHasVer && validName(curName) && validType(curType) {
			out.Candidates = append(out.Candidates, *cur)
		}
		cur, curHasVer, inURLs, keysSeen, curName, curType, urlIndent = nil, false, false, nil, "", "", -1
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		body := line[indent:]
		if len(body) == 0 || body[0] == '#' {
			continue
		}
		if blockIndent >= 0 && indent > blockIndent {
			continue // the content of a block scalar ("description: |"), whatever it looks like
		}
		blockIndent = -1
		if c := blockScalarColumn(body); c >= 0 {
			blockIndent = indent + c
		}
		if indent == 0 {
			if !closedOnLine(body) || !plainKey(body) {
				return Entries{}, false
			}
			if inChart {
				flush()
				inChart = false
			}
			inEntries = false
			switch {
			case hasKey(body, "entries"):
				if len(bytes.TrimSpace(body[len("entries:"):])) != 0 {
					return Entries{}, false // flow style or inline value
				}
				inEntries = true
			case hasKey(body, "apiVersion"):
				if v, ok := scalarBytes(body[len("apiVersion:"):]); !ok || len(v) == 0 {
					return Entries{}, false
				}
				sawAPI = true
			case body[0] == '{' || body[0] == '[' || body[0] == '-' || body[0] == '%' || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '&' || body[0] == '!' || body[0] == '.':
				return Entries{}, false
			case foldsTo(body, "entries") || foldsTo(body, "apiVersion"):
				return Entries{}, false // Helm's JSON decoding matches keys regardless of case
			}
			continue
		}
		if !inEntries {
			continue
		}
		if !closedOnLine(body) {
			return Entries{}, false // a quoted scalar or flow collection continues on the next line
		}
		if chartIndent < 0 {
			chartIndent = indent
		}
		if indent < chartIndent {
			return Entries{}, false
		}
		isItem := body[0] == '-' && (len(body) == 1 || body[1] == ' ')
		if indent == chartIndent && !isItem {
			if inChart {
				flush()
				inChart = false
			}
			// A chart name key: plain "name:" only; anything else might hide our chart.
			c := body[0]
			if c == '"' || c == '\'' || c == '?' || c == '{' || c == '[' || c == '&' || c == '*' || c == '!' || c == '-' {
				return Entries{}, false
			}
			colon := bytes.IndexByte(body, ':')
			if colon <= 0 || !plainKey(body) {
				return Entries{}, false
			}
			rest := bytes.TrimSpace(body[colon+1:])
			if len(rest) != 0 && rest[0] != '#' {
				return Entries{}, false // inline value such as [] or an anchor
			}
			if string(body[:colon]) == chart {
				foundCharts++
				if foundCharts > 1 {
					return Entries{}, false
				}
				out.Found = true
				inChart = true
				itemIndent, seqIndent = -1, -1
			}
			continue
		}
		if !inChart {
			continue
		}
		// Inside our chart: a sequence of mappings.
		if isItem && (seqIndent < 0 || indent == seqIndent) {
			if seqIndent < 0 {
				seqIndent = indent
			}
			flush()
			cur = &chartversion.Candidate{}
			keysSeen = map[string]bool{}
			rest := body[1:]
			spaces := 0
			for spaces < len(rest) && rest[spaces] == ' ' {
				spaces++
			}
			body = rest[spaces:]
			if len(body) == 0 || body[0] == '#' {
				itemIndent = -1 // the keys start on the next line
				continue
			}
			itemIndent = indent + 1 + spaces
			indent, isItem = itemIndent, body[0] == '-' && (len(body) == 1 || body[1] == ' ')
		}
		if cur == nil || indent <= seqIndent {
			return Entries{}, false
		}
		if itemIndent < 0 {
			itemIndent = indent
		}
		if readScalar && indent > itemIndent {
			return Entries{}, false // a plain scalar we read continues on this line
		}
		if inURLs && indent > itemIndent || inURLs && isItem && indent == itemIndent {
			// The urls sequence: every item on one line, all at one column.
			if !isItem || (urlIndent >= 0 && indent != urlIndent) {
				return Entries{}, false
			}
			urlIndent = indent
			u, ok := scalar(body[1:])
			if !ok || nullItem(body[1:]) || looksNonString(u) || u == "" || u[0] == '-' {
				return Entries{}, false
			}
			cur.URLs = append(cur.URLs, u)
			continue
		}
		if isItem && indent >= itemIndent {
			// An item of a sequence we do not need, written at its key's column or deeper.
			if nullItem(body[1:]) || bytes.IndexByte(body, '!') >= 0 || bytes.IndexByte(body, '*') >= 0 || bytes.Contains(body, []byte("alias")) {
				return Entries{}, false
			}
			continue
		}
		if indent > itemIndent {
			// A nested value of a field we do not need, unless it can change what Helm keeps: a
			// null item (in maintainers or dependencies), a dependency alias, an alias, a merge
			// key or a tag.
			if bytes.IndexByte(body, '*') >= 0 || bytes.IndexByte(body, '!') >= 0 || bytes.Contains(body, []byte("<<")) || bytes.Contains(body, []byte("alias")) {
				return Entries{}, false
			}
			if body[0] == '-' && nullItem(body[1:]) {
				return Entries{}, false
			}
			continue
		}
		if indent < itemIndent {
			return Entries{}, false
		}
		inURLs, readScalar = false, false
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '<' || body[0] == '&' || body[0] == '*' {
			return Entries{}, false
		}
		if !plainKey(body) {
			return Entries{}, false
		}
		key := string(body[:colon])
		if keysSeen[key] {
			return Entries{}, false
		}
		switch key {
		case "version", "created", "digest", "name", "type", "deprecated", "urls", "maintainers", "dependencies", "apiVersion":
		default:
			for _, k := range helmKeys {
				if foldsTo(body, k) {
					return Entries{}, false // "Version:" is version to Helm's JSON decoding
				}
			}
		}
		keysSeen[key] = true
		val := body[colon+1:]
		trimmed := bytes.TrimSpace(val)
		if len(trimmed) > 0 && (trimmed[0] == '&' || trimmed[0] == '*' || trimmed[0] == '!') {
			return Entries{}, false
		}
		switch key {
		case "version", "created", "digest", "name", "type", "deprecated":
			readScalar = true
		}
		switch key {
		case "version":
			v, ok := scalar(val)
			if !ok || looksNonString(v) {
				return Entries{}, false
			}
			cur.Version, curHasVer = v, v != ""
		case "created":
			v, ok := scalar(val)
			if !ok {
				return Entries{}, false
			}
			if v != "" {
				// As encoding/json decodes a time, which is what Helm's loader ends up doing.
				if err := cur.Created.UnmarshalText([]byte(v)); err != nil {
					return Entries{}, false
				}
			}
		case "digest":
			v, ok := scalar(val)
			if !ok || looksNonString(v) {
				return Entries{}, false
			}
			cur.Digest = v
		case "name":
			v, ok := scalar(val)
			if !ok || !printableASCII(v) || looksNonString(v) {
				return Entries{}, false
			}
			curName = v
		case "type":
			v, ok := scalar(val)
			if !ok || looksNonString(v) {
				return Entries{}, false
			}
			curType = v
		case "maintainers", "dependencies":
			if len(trimmed) != 0 && trimmed[0] != '#' {
				return Entries{}, false // inline value: leave it to the full parse
			}
		case "deprecated":
			v, ok := scalar(val)
			if !ok || (v != "true" && v != "false") {
				return Entries{}, false
			}
			cur.Deprecated = v == "true"
		case "urls":
			if len(trimmed) != 0 && trimmed[0] != '#' {
				return Entries{}, false
			}
			inURLs, urlIndent = true, -1
		}
	}
	if inChart {
		flush()
	}
	if !sawAPI {
		return Entries{}, false
	}
	return out, true
}

// helmKeys are the keys of an entry whose values decide what Helm keeps or what we read.
var helmKeys = []string{"version", "created", "digest", "name", "type", "deprecated", "urls", "maintainers", "dependencies", "apiVersion"}

// plainKey reports whether a "key: value" line has a key the fast path can compare byte for
// byte: ASCII, and not ending in a space ("key :" is the key "key" to YAML).
func plainKey(body []byte) bool {
	colon := bytes.IndexByte(body, ':')
	if colon < 0 {
		return true // not a key: the caller decides
	}
	if colon == 0 || body[colon-1] == ' ' {
		return false
	}
	for _, c := range body[:colon] {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// foldsTo reports whether the key of a "key:" line equals key ignoring case, as encoding/json
// matches object keys to struct fields.
func foldsTo(body []byte, key string) bool {
	return len(body) > len(key) && body[len(key)] == ':' && strings.EqualFold(string(body[:len(key)]), key)
}

// blockScalarColumn returns, for a line whose value is a block scalar ("key: |", "- >-",
// "key: |2 # c"), the column (within body) of the node that owns it: its content is every
// following line indented more than that. Otherwise -1.
func blockScalarColumn(body []byte) int {
	if bytes.IndexByte(body, '|') < 0 && bytes.IndexByte(body, '>') < 0 {
		return -1
	}
	col := 0
	for col < len(body) && body[col] == '-' && (col+1 == len(body) || body[col+1] == ' ') {
		next := col + 1
		for next < len(body) && body[next] == ' ' {
			next++
		}
		if next < len(body) && (body[next] == '|' || body[next] == '>') {
			return col // "- |": the content belongs to the sequence item
		}
		col = next
	}
	rest := body[col:]
	if len(rest) > 0 && (rest[0] == '"' || rest[0] == '\'') {
		end := quotedEnd(rest)
		if end < 0 {
			return -1
		}
		i := bytes.Index(rest[end:], []byte(": "))
		if i < 0 {
			return -1
		}
		return blockIndicatorAt(rest, end+i+2, col)
	}
	i := bytes.Index(rest, []byte(": "))
	if i < 0 {
		return -1
	}
	return blockIndicatorAt(rest, i+2, col)
}

// blockIndicatorAt reports col when rest[at:] is a block scalar header: | or > with optional
// indentation and chomping indicators and an optional comment.
func blockIndicatorAt(rest []byte, at, col int) int {
	v := bytes.TrimLeft(rest[at:], " ")
	if len(v) == 0 || (v[0] != '|' && v[0] != '>') {
		return -1
	}
	v = v[1:]
	for len(v) > 0 && (v[0] == '+' || v[0] == '-' || v[0] >= '1' && v[0] <= '9') {
		v = v[1:]
	}
	if len(v) == 0 || v[0] == ' ' && (len(bytes.TrimSpace(v)) == 0 || bytes.TrimSpace(v)[0] == '#') {
		return col
	}
	return -1
}

func hasKey(body []byte, key string) bool {
	return len(body) > len(key) && string(body[:len(key)]) == key && body[len(key)] == ':'
}

// scalar decodes a single-line scalar that follows "key:" — plain, or quoted without escapes.
func scalar(val []byte) (string, bool) {
	v, ok := scalarBytes(val)
	if !ok || len(v) == 0 {
		return "", ok
	}
	return string(v), true
}

// scalarBytes is scalar without the copy: the value's bytes within val.
func scalarBytes(val []byte) ([]byte, bool) {
	v := bytes.TrimSpace(val)
	if len(v) == 0 || v[0] == '#' {
		return nil, true // null
	}
	switch v[0] {
	case '"':
		if len(v) < 2 || v[len(v)-1] != '"' || bytes.IndexByte(v[1:len(v)-1], '"') >= 0 || bytes.IndexByte(v, '\\') >= 0 {
			return nil, false
		}
		return v[1 : len(v)-1], true
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || bytes.IndexByte(v[1:len(v)-1], '\'') >= 0 {
			return nil, false
		}
		return v[1 : len(v)-1], true
	case '|', '>', '&', '*', '!', '{', '[', '@', '`', '%', '?', ',', ']', '}':
		return nil, false
	}
	if bytes.Contains(v, []byte(" #")) || bytes.Contains(v, []byte(": ")) || v[0] == '-' && (len(v) == 1 || v[1] == ' ') {
		return nil, false
	}
	switch string(v) {
	case "~", "null", "Null", "NULL":
		return nil, false
	}
	return v, true
}

// looksNonString reports plain scalars that YAML 1.1 (which Helm's loader speaks) reads as
// something else than the string written: numbers ("1.10" becomes "1.1"), booleans ("yes"
// becomes "true"), null, and times. It errs on the side of caution: the full parse decides.
func looksNonString(s string) bool {
	if s == "" {
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		return true
	}
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "~", "null", ".inf", "-.inf", "+.inf", ".nan":
		return true
	}
	numeric := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '+' || c == '-') {
			numeric = false
			break
		}
	}
	// Sexagesimal numbers (1:20), underscores (1_000) and dates (2025-01-02) need YAML's rules.
	return numeric && strings.ContainsAny(s, "_:") || len(s) >= 8 && s[4] == '-' && s[0] >= '0' && s[0] <= '9'
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// nullItem reports a sequence item (the text after "-") that is empty or null.
func nullItem(rest []byte) bool {
	v := bytes.TrimSpace(rest)
	if i := bytes.Index(v, []byte(" #")); i >= 0 {
		v = bytes.TrimSpace(v[:i])
	}
	if len(v) > 0 && v[0] == '#' {
		v = nil
	}
	switch string(v) {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// closedOnLine reports whether a line of block YAML leaves no quoted scalar or flow collection
// open: such values may continue on lines that look like keys of their own.
func closedOnLine(body []byte) bool {
	if bytes.IndexByte(body, '"') < 0 && bytes.IndexByte(body, '\'') < 0 && bytes.IndexByte(body, '[') < 0 && bytes.IndexByte(body, '{') < 0 {
		return true
	}
	v := body
	for {
		for len(v) > 0 && v[0] == '-' && (len(v) == 1 || v[1] == ' ') {
			v = bytes.TrimLeft(v[1:], " ")
		}
		if len(v) == 0 {
			return true
		}
		switch v[0] {
		case '[', '{':
			return false // flow collections: the full parse decides
		case '"', '\'':
			end := quotedEnd(v)
			if end < 0 {
				return false
			}
			rest := bytes.TrimLeft(v[end:], " ")
			if len(rest) == 0 || rest[0] == '#' {
				return true
			}
			if rest[0] != ':' {
				return false
			}
			v = bytes.TrimLeft(rest[1:], " ")
			continue
		}
		// A plain key or scalar: look at the value after the first ": ".
		i := bytes.Index(v, []byte(": "))
		if i < 0 {
			return true
		}
		v = bytes.TrimLeft(v[i+2:], " ")
		if len(v) == 0 || (v[0] != '"' && v[0] != '\'' && v[0] != '[' && v[0] != '{' && v[0] != '-') {
			return true
		}
	}
}

// quotedEnd returns the offset just past the quoted scalar v starts with, or -1 when it does not
// end on this line.
func quotedEnd(v []byte) int {
	q := v[0]
	for i := 1; i < len(v); i++ {
		switch {
		case q == '"' && v[i] == '\\':
			i++
		case v[i] == q && q == '\'' && i+1 < len(v) && v[i+1] == '\'':
			i++
		case v[i] == q:
			return i + 1
		}
	}
	return -1
}
