package helmindex

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/helmops/helmops/internal/chartversion"
)

// scan is the fast path: a line scanner over the block-style YAML that Helm writes. It skips the
// other charts without allocating (block scalars, plain scalars wrapped over several lines and
// quoted scalars wrapped over several lines are skipped whatever they contain) and decodes only
// what a version choice needs from the chart asked for: version, created, digest, urls and
// deprecated, plus name and type and the null items and aliases that decide whether Helm's
// validation keeps an entry. Quoted values of those fields are decoded as YAML does, folded lines
// and escapes included. It refuses anything it does not handle exactly (JSON, flow style, anchors
// and aliases, tags, plain scalars YAML 1.1 reads as numbers, booleans or null, block scalars or
// wrapped plain scalars in the fields it reads, keys that Helm's JSON decoding matches
// regardless of case, CR, tabs and Unicode line breaks, duplicate keys, dependency aliases) and
// says why; the caller then parses the whole document instead: never a silently wrong answer.
func scan(data []byte, chart string) (Entries, Refusal) {
	s := newScanner(chart)
	if _, r := s.feed(data, true); r != "" {
		return Entries{}, r
	}
	return s.finish()
}

// scanner holds the fast path's state between the pieces of an index it is fed, so that an
// index can be scanned as it arrives (see Scan) as well as in one buffer.
type scanner struct {
	chart       string
	out         Entries
	sawAPI      bool
	inEntries   bool
	chartIndent int
	inChart     bool
	seqIndent   int  // column of the dashes of the chart's sequence
	itemIndent  int  // column of the keys of the current entry
	urlIndent   int  // column of the dashes of the current entry's urls
	readScalar  bool // the last key of the entry is one we read, with its value on its line
	cur         *chartversion.Candidate
	curHasVer   bool
	inURLs      bool
	keysSeen    map[string]bool
	foundCharts int
	// Lines indented more than skipIndent continue the scalar of the line before: the content
	// of a block scalar ("description: |") or the rest of a wrapped plain scalar.
	skipIndent int
	skipRead   bool // that scalar is one the fast path reads: its continuation is refused
	curName    string
	curType    string
	// checked is how many bytes at the start of the piece being fed were already looked at for
	// CR, tabs and Unicode line breaks.
	checked int
}

func newScanner(chart string) *scanner {
	return &scanner{chart: chart, chartIndent: -1, seqIndent: -1, itemIndent: -1, urlIndent: -1, skipIndent: -1}
}

// flush ends the current entry. Helm drops entries without a valid name, version or type (see
// helmKeeps).
func (s *scanner) flush() {
	if s.cur != nil && s.curHasVer && validName(s.curName) && validType(s.curType) {
		s.out.Candidates = append(s.out.Candidates, *s.cur)
	}
	s.cur, s.curHasVer, s.inURLs, s.keysSeen, s.curName, s.curType, s.urlIndent, s.readScalar = nil, false, false, nil, "", "", -1, false
}

// finish ends the document.
func (s *scanner) finish() (Entries, Refusal) {
	if s.inChart {
		s.flush()
	}
	if !s.sawAPI {
		return Entries{}, RefuseNoAPIVersion
	}
	return s.out, ""
}

// feed scans the logical lines of doc and returns how many bytes of it were consumed. Unless
// final, it stops before a line that does not end in doc (a quoted scalar may run on over the
// next lines): the caller feeds those bytes again, followed by more.
func (s *scanner) feed(doc []byte, final bool) (int, Refusal) {
	complete := len(doc)
	if !final {
		complete = bytes.LastIndexByte(doc, '\n') + 1
	}
	if complete > s.checked {
		if r := lineBreaks(doc[s.checked:complete]); r != "" {
			return 0, r
		}
		s.checked = complete
	}
	data := doc
	sp := newSpecials(doc)
	for len(data) > 0 {
		start := len(doc) - len(data)
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else if !final {
			s.checked -= start
			return start, ""
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
		if s.skipIndent >= 0 && indent > s.skipIndent {
			if s.skipRead {
				return 0, RefuseWrappedReadField // a plain scalar we read continues on this line
			}
			continue
		}
		s.skipIndent, s.skipRead = -1, false
		// A quoted scalar that does not end on its line: the logical line runs to the line where
		// it ends, whatever the lines in between look like.
		extended := 0
		for ; ; extended++ {
			q := -1
			if extended > 0 || sp.has(start+indent, start+len(line), quoteOrFlow) {
				q = openQuote(body)
			}
			if q == -1 {
				break
			}
			if q == -2 || extended > 8 {
				return 0, RefuseFlowStyle
			}
			from := start + indent + q
			end := quotedEnd(doc[from:])
			lineEnd := -1
			if end >= 0 {
				end += from
				if i := bytes.IndexByte(doc[end:], '\n'); i >= 0 {
					lineEnd = end + i
				}
			}
			if lineEnd < 0 && !final {
				// The scalar or its line ends beyond this piece: skipIndent was reset above,
				// and this line comes again with the next piece.
				s.checked -= start
				return start, ""
			}
			if end < 0 {
				return 0, RefuseUnclosedQuote
			}
			if documentMarker(doc[from:end]) {
				return 0, RefuseDocumentMarker
			}
			if lineEnd < 0 {
				lineEnd = len(doc)
			}
			body = doc[start+indent : lineEnd]
			if lineEnd < len(doc) {
				data = doc[lineEnd+1:]
			} else {
				data = nil
			}
		}
		// The scalar that ends the line matters only to the lines after it that are indented
		// more: when the next line is not, its columns need not be found.
		owner := ownerAny
		if next := nextIndent(data); next >= 0 && next <= indent {
			owner = ownerNone
		} else if extended == 0 && !sp.has(start+indent, start+len(line), blockIndicator) {
			owner = ownerPlain
		}
		if r := s.logicalLine(indent, body, extended > 0, owner); r != "" {
			return 0, r
		}
	}
	s.checked = 0
	return len(doc), ""
}

// scalarOwner says which scalars ending a line the lines after it may continue.
type scalarOwner int

const (
	ownerAny   scalarOwner = iota // block or plain scalars
	ownerPlain                    // plain scalars only: the line has no block scalar indicator
	ownerNone                     // none: the next line is not indented more
)

// specialBytes are the bytes that make a line worth a closer look: quotes and flow collections
// (openQuote), block scalar indicators (blockScalarColumn). Most lines of an index have none.
var specialBytes = [...]byte{'"', '\'', '[', '{', '|', '>'}

// The ranges of specialBytes that has looks for.
var (
	quoteOrFlow    = specialRange{0, 4, 0}
	blockIndicator = specialRange{4, 6, 1}
)

type specialRange struct{ first, last, group int }

// specials finds the specialBytes in the bytes of one feed with one search per occurrence
// instead of several searches per line.
type specials struct {
	doc []byte
	// next holds, for each of specialBytes, the offset in doc of its next occurrence at or after
	// the last line asked about (len(doc): none), or -1 before the first search.
	next [len(specialBytes)]int
	// nearest is, for each range, the smallest of its next.
	nearest [2]int
}

func newSpecials(doc []byte) specials {
	return specials{doc: doc, next: [len(specialBytes)]int{-1, -1, -1, -1, -1, -1}, nearest: [2]int{-1, -1}}
}

// has reports whether doc[from:to] holds one of the specialBytes of the range r. Calls must come
// with from never decreasing.
func (sp *specials) has(from, to int, r specialRange) bool {
	if n := sp.nearest[r.group]; n >= from {
		return n < to
	}
	return sp.search(from, to, r)
}

func (sp *specials) search(from, to int, r specialRange) bool {
	nearest := len(sp.doc)
	for k := r.first; k < r.last; k++ {
		if sp.next[k] < from {
			if i := bytes.IndexByte(sp.doc[from:], specialBytes[k]); i >= 0 {
				sp.next[k] = from + i
			} else {
				sp.next[k] = len(sp.doc)
			}
		}
		nearest = min(nearest, sp.next[k])
	}
	sp.nearest[r.group] = nearest
	return nearest < to
}

// nextIndent is the indentation of the line data starts with, or -1 when it cannot tell here: an
// empty or comment line (the scanner passes over those), or leading spaces that run to the end of
// data.
func nextIndent(data []byte) int {
	i := 0
	for i < len(data) && data[i] == ' ' {
		i++
	}
	if i == len(data) || data[i] == '\n' || data[i] == '#' {
		return -1
	}
	return i
}

// lineBreaks refuses CR, tabs and the Unicode line breaks: the fast path splits lines at line
// feeds only and counts columns in spaces.
func lineBreaks(data []byte) Refusal {
	if bytes.IndexByte(data, '\r') >= 0 || bytes.IndexByte(data, '\t') >= 0 || unicodeBreak(data) {
		return RefuseLineBreaks
	}
	return ""
}

// logicalLine reads one logical line (a physical line, or a quoted scalar's lines joined when
// multiLine) that starts at column indent and leaves no quoted scalar open. owner says which
// scalars the line may end with that the lines after it continue.
func (s *scanner) logicalLine(indent int, body []byte, multiLine bool, owner scalarOwner) Refusal {
	c := -1
	if owner == ownerAny {
		c = blockScalarColumn(body)
	}
	if c < 0 && owner != ownerNone {
		c = plainValueColumn(body)
	}
	if c >= 0 {
		s.skipIndent = indent + c
	}
	if indent == 0 {
		return s.topLevel(body, multiLine)
	}
	if !s.inEntries {
		return ""
	}
	if s.chartIndent < 0 {
		s.chartIndent = indent
	}
	if indent < s.chartIndent {
		return RefuseStructure
	}
	isItem := body[0] == '-' && (len(body) == 1 || body[1] == ' ' || body[1] == '\n')
	if indent == s.chartIndent && !isItem {
		return s.chartKey(body, multiLine)
	}
	if !s.inChart {
		return ""
	}
	return s.chartLine(indent, body, isItem)
}

// topLevel reads a line at column 0: apiVersion, entries, or a key the fast path skips.
func (s *scanner) topLevel(body []byte, multiLine bool) Refusal {
	if multiLine || !plainKey(body) {
		return RefuseTopLevel
	}
	if s.inChart {
		s.flush()
		s.inChart = false
	}
	s.inEntries = false
	switch {
	case hasKey(body, "entries"):
		if len(bytes.TrimSpace(body[len("entries:"):])) != 0 {
			return RefuseFlowStyle // flow style or inline value
		}
		s.inEntries = true
	case hasKey(body, "apiVersion"):
		if v, _, ok := scalarSpan(body[len("apiVersion:"):]); !ok || len(v) == 0 {
			return RefuseTopLevel
		}
		s.sawAPI = true
	case body[0] == '{' || body[0] == '[' || body[0] == '-' || body[0] == '%' || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '&' || body[0] == '!' || body[0] == '.':
		return RefuseTopLevel
	case foldsTo(body, "entries") || foldsTo(body, "apiVersion"):
		return RefuseCaseFoldedKey // Helm's JSON decoding matches keys regardless of case
	}
	return ""
}

// chartKey reads a chart name key of entries.
func (s *scanner) chartKey(body []byte, multiLine bool) Refusal {
	if s.inChart {
		s.flush()
		s.inChart = false
	}
	// A chart name key: plain "name:" only; anything else might hide our chart.
	c := body[0]
	if multiLine || c == '"' || c == '\'' || c == '?' || c == '{' || c == '[' || c == '&' || c == '*' || c == '!' || c == '-' {
		return RefuseChartKey
	}
	colon := bytes.IndexByte(body, ':')
	if colon <= 0 || !plainKey(body) {
		return RefuseChartKey
	}
	rest := bytes.TrimSpace(body[colon+1:])
	if len(rest) != 0 && rest[0] != '#' {
		return RefuseChartKey // inline value such as [] or an anchor
	}
	if string(body[:colon]) == s.chart {
		s.foundCharts++
		if s.foundCharts > 1 {
			return RefuseDuplicateKey
		}
		s.out.Found = true
		s.inChart = true
		s.itemIndent, s.seqIndent = -1, -1
	}
	return ""
}

// chartLine reads a line inside the chart asked for: a sequence of mappings, one per version.
func (s *scanner) chartLine(indent int, body []byte, isItem bool) Refusal {
	prevRead := s.readScalar
	s.readScalar = false
	if isItem && (s.seqIndent < 0 || indent == s.seqIndent) {
		if s.seqIndent < 0 {
			s.seqIndent = indent
		}
		s.flush()
		s.cur = &chartversion.Candidate{}
		s.keysSeen = map[string]bool{}
		rest := body[1:]
		spaces := 0
		for spaces < len(rest) && rest[spaces] == ' ' {
			spaces++
		}
		body = rest[spaces:]
		if len(body) == 0 || body[0] == '#' {
			s.itemIndent = -1 // the keys start on the next line
			return ""
		}
		if body[0] == '\n' {
			return RefuseStructure
		}
		s.itemIndent = indent + 1 + spaces
		indent, isItem = s.itemIndent, body[0] == '-' && (len(body) == 1 || body[1] == ' ')
	}
	if s.cur == nil || indent <= s.seqIndent {
		return RefuseStructure
	}
	if s.itemIndent < 0 {
		s.itemIndent = indent
	}
	if prevRead && indent > s.itemIndent {
		return RefuseWrappedReadField // a scalar we read continues on this line
	}
	if s.inURLs && indent > s.itemIndent || s.inURLs && isItem && indent == s.itemIndent {
		return s.urlItem(indent, body, isItem)
	}
	if isItem && indent >= s.itemIndent || indent > s.itemIndent {
		// An item of a sequence we do not need, written at its key's column or deeper, or a
		// nested value of a field we do not need, unless it can change what Helm keeps: a null
		// item (in maintainers or dependencies), a dependency alias, an alias, a merge key or a
		// tag.
		return riskyNode(body)
	}
	if indent < s.itemIndent {
		return RefuseStructure
	}
	s.inURLs = false
	return s.entryKey(body)
}

// urlItem reads an item of the urls sequence: every item on one line, all at one column.
func (s *scanner) urlItem(indent int, body []byte, isItem bool) Refusal {
	if !isItem || (s.urlIndent >= 0 && indent != s.urlIndent) {
		return RefuseURLs
	}
	s.urlIndent = indent
	u, quoted, ok := scalar(body[1:])
	if !ok || nullItem(body[1:]) || !quoted && looksNonString(u) || u == "" || u[0] == '-' && !quoted {
		return RefuseURLs
	}
	s.cur.URLs = append(s.cur.URLs, u)
	s.skipRead = s.skipIndent >= 0
	return ""
}

// entryKey reads a "key: value" line of the current entry.
func (s *scanner) entryKey(body []byte) Refusal {
	colon := bytes.IndexByte(body, ':')
	if colon <= 0 || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '<' || body[0] == '&' || body[0] == '*' {
		return RefuseEntryKey
	}
	if !plainKey(body) {
		return RefuseEntryKey
	}
	key := string(body[:colon])
	if s.keysSeen[key] {
		return RefuseDuplicateKey
	}
	switch key {
	case "version", "created", "digest", "name", "type", "deprecated", "urls", "maintainers", "dependencies", "apiVersion":
	default:
		for _, k := range helmKeys {
			if foldsTo(body, k) {
				return RefuseCaseFoldedKey // "Version:" is version to Helm's JSON decoding
			}
		}
	}
	s.keysSeen[key] = true
	val := body[colon+1:]
	trimmed := bytes.TrimSpace(val)
	if len(trimmed) > 0 && (trimmed[0] == '&' || trimmed[0] == '*' || trimmed[0] == '!') {
		return RefuseAnchorAliasTag
	}
	switch key {
	case "version", "created", "digest", "name", "type", "deprecated":
		s.readScalar, s.skipRead = true, s.skipIndent >= 0
		return s.readField(key, val)
	case "maintainers", "dependencies":
		if len(trimmed) != 0 && trimmed[0] != '#' {
			return RefuseFlowStyle // inline value: leave it to the full parse
		}
	case "urls":
		if len(trimmed) != 0 && trimmed[0] != '#' {
			return RefuseURLs
		}
		s.inURLs, s.urlIndent = true, -1
	}
	return ""
}

// readField decodes the value of one of the scalar fields a version choice needs.
func (s *scanner) readField(key string, val []byte) Refusal {
	v, quoted, ok := scalar(val)
	if !ok {
		return refusedValue(ok)
	}
	switch key {
	case "version":
		if !quoted && looksNonString(v) {
			return refusedValue(ok)
		}
		s.cur.Version, s.curHasVer = v, v != ""
	case "created":
		if v != "" {
			// As encoding/json decodes a time, which is what Helm's loader ends up doing.
			if err := s.cur.Created.UnmarshalText([]byte(v)); err != nil {
				return RefuseValue
			}
		}
	case "digest":
		if !quoted && looksNonString(v) {
			return refusedValue(ok)
		}
		s.cur.Digest = v
	case "name":
		if !printableASCII(v) || !quoted && looksNonString(v) {
			return refusedValue(ok)
		}
		s.curName = v
	case "type":
		if !quoted && looksNonString(v) {
			return refusedValue(ok)
		}
		s.curType = v
	case "deprecated":
		if quoted || (v != "true" && v != "false") {
			return refusedValue(ok)
		}
		s.cur.Deprecated = v == "true"
	}
	return ""
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

// scalar decodes the scalar that follows "key:" or "-": null (nothing or a comment), plain on
// one line, or quoted on one or more lines, which it decodes as YAML does (folded line breaks,
// ” in single quotes, escapes in double quotes). quoted says which: only a plain scalar can be
// read by YAML as something else than a string.
func scalar(val []byte) (s string, quoted, ok bool) {
	raw, quoted, ok := scalarSpan(val)
	if !ok || len(raw) == 0 {
		return "", quoted, ok
	}
	if !quoted || bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\'') < 0 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), quoted, true
	}
	q := bytes.TrimLeft(val, " ")[0]
	return decodeQuoted(raw, q == '\'')
}

// scalarSpan finds the scalar that follows "key:" or "-" without decoding it: the plain scalar, or
// what is between the quotes.
func scalarSpan(val []byte) (raw []byte, quoted, ok bool) {
	v := bytes.TrimLeft(val, " ")
	if len(v) == 0 || v[0] == '#' {
		return nil, false, true // null
	}
	switch v[0] {
	case '"', '\'':
		end := quotedEnd(v)
		if end < 0 {
			return nil, true, false
		}
		if rest := bytes.TrimLeft(v[end:], " "); len(rest) != 0 && (rest[0] != '#' || len(rest) == len(v[end:])) {
			return nil, true, false // text after the closing quote, or a comment without a space before it
		}
		return v[1 : end-1], true, true
	case '|', '>', '&', '*', '!', '{', '[', '@', '`', '%', '?', ',', ']', '}':
		return nil, false, false
	}
	v = bytes.TrimRight(v, " ")
	if bytes.IndexByte(v, '\n') >= 0 || bytes.Contains(v, []byte(" #")) || bytes.Contains(v, []byte(": ")) || v[len(v)-1] == ':' || v[0] == '-' && (len(v) == 1 || v[1] == ' ') {
		return nil, false, false
	}
	switch string(v) {
	case "~", "null", "Null", "NULL":
		return nil, false, false
	}
	return v, false, true
}

// decodeQuoted decodes the text between the quotes of a quoted scalar as YAML's scanner does: a
// line break and the spaces around it fold into one space, each further empty line into a line
// feed; in single quotes ” is one quote; in double quotes backslash escapes, an escaped line
// break joining the lines without a space. ok is false for what YAML rejects (an unknown escape)
// and for escapes whose result JSON would change (invalid UTF-8).
func decodeQuoted(raw []byte, single bool) (string, bool, bool) {
	var (
		s, whitespace, trailingBreaks []byte
		leadingBreak                  bool
	)
	i := 0
	for {
		leadingBlanks := false
		for i < len(raw) && raw[i] != ' ' && raw[i] != '\n' {
			c := raw[i]
			switch {
			case single && c == '\'' && i+1 < len(raw) && raw[i+1] == '\'':
				s = append(s, '\'')
				i += 2
			case !single && c == '\\' && i+1 < len(raw) && raw[i+1] == '\n':
				i += 2
				leadingBlanks = true
			case !single && c == '\\':
				if i+1 >= len(raw) {
					return "", true, false
				}
				var ok bool
				if s, i, ok = unescape(s, raw, i+1); !ok {
					return "", true, false
				}
			default:
				s = append(s, c)
				i++
			}
			if leadingBlanks {
				break
			}
		}
		if i >= len(raw) && !leadingBlanks {
			break
		}
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n') {
			if raw[i] == ' ' {
				if !leadingBlanks {
					whitespace = append(whitespace, ' ')
				}
			} else if !leadingBlanks {
				whitespace = whitespace[:0]
				leadingBreak, leadingBlanks = true, true
			} else {
				trailingBreaks = append(trailingBreaks, '\n')
			}
			i++
		}
		if leadingBlanks {
			if leadingBreak && len(trailingBreaks) == 0 {
				s = append(s, ' ')
			} else {
				s = append(s, trailingBreaks...)
			}
			leadingBreak, trailingBreaks = false, trailingBreaks[:0]
		} else {
			s = append(s, whitespace...)
			whitespace = whitespace[:0]
		}
		if i >= len(raw) {
			break
		}
	}
	if !utf8.Valid(s) {
		return "", true, false
	}
	return string(s), true, true
}

// unescape appends the character of the escape sequence at raw[i:] (just after the backslash) to
// s, and returns the offset after it.
func unescape(s, raw []byte, i int) ([]byte, int, bool) {
	simple := map[byte]string{'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", 'n': "\n", 'v': "\v", 'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '\'': "'", '\\': "\\", 'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029"}
	c := raw[i]
	if r, ok := simple[c]; ok {
		return append(s, r...), i + 1, true
	}
	n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
	if n == 0 || i+1+n > len(raw) {
		return s, i, false
	}
	v, err := strconv.ParseUint(string(raw[i+1:i+1+n]), 16, 32)
	if err != nil || v >= 0xD800 && v <= 0xDFFF || v > 0x10FFFF {
		return s, i, false
	}
	if v < 0x80 {
		return append(s, byte(v)), i + 1 + n, true
	}
	return utf8.AppendRune(s, rune(v)), i + 1 + n, true
}

// refusedValue is the refusal for a value the fast path reads and could not: one YAML itself
// would reject, or one only the full parse reads exactly.
func refusedValue(ok bool) Refusal {
	if !ok {
		return RefuseValue
	}
	return RefuseYAML11Scalar
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

// openQuote looks at the nodes of a line of block YAML (sequence dashes, a key, its value) and
// returns the offset of a quoted scalar that does not end on the line; -1 when none is open; -2
// for what the fast path leaves to the full parse: a flow collection, or text after a closing
// quote.
func openQuote(body []byte) int {
	if bytes.IndexByte(body, '"') < 0 && bytes.IndexByte(body, '\'') < 0 && bytes.IndexByte(body, '[') < 0 && bytes.IndexByte(body, '{') < 0 {
		return -1
	}
	v := body
	for {
		for len(v) > 0 && v[0] == '-' && (len(v) == 1 || v[1] == ' ') {
			v = bytes.TrimLeft(v[1:], " ")
		}
		if len(v) == 0 {
			return -1
		}
		switch v[0] {
		case '[', '{':
			return -2 // flow collections: the full parse decides
		case '"', '\'':
			end := quotedEnd(v)
			if end < 0 {
				return len(body) - len(v)
			}
			rest := bytes.TrimLeft(v[end:], " ")
			if len(rest) == 0 || rest[0] == '#' && len(rest) < len(v[end:]) {
				return -1
			}
			if rest[0] != ':' {
				return -2
			}
			v = bytes.TrimLeft(rest[1:], " ")
			continue
		}
		// A plain key or scalar: look at the value after the first ": ".
		i := bytes.Index(v, []byte(": "))
		if i < 0 {
			return -1
		}
		v = bytes.TrimLeft(v[i+2:], " ")
		if len(v) == 0 || (v[0] != '"' && v[0] != '\'' && v[0] != '[' && v[0] != '{' && v[0] != '-') {
			return -1
		}
	}
}

// documentMarker reports whether a quoted scalar spanning lines has a line starting with a
// document marker, which ends the scalar to YAML's scanner with an error.
func documentMarker(span []byte) bool {
	for {
		i := bytes.IndexByte(span, '\n')
		if i < 0 {
			return false
		}
		span = span[i+1:]
		if len(span) >= 3 && (string(span[:3]) == "---" || string(span[:3]) == "...") {
			return true
		}
	}
}

// unicodeBreak reports whether data holds a character YAML reads as a line break besides the line
// feed (NEL, LS, PS): the fast path splits lines at line feeds only.
func unicodeBreak(data []byte) bool {
	for i := bytes.IndexByte(data, 0xC2); i >= 0; {
		if i+1 < len(data) && data[i+1] == 0x85 {
			return true
		}
		j := bytes.IndexByte(data[i+1:], 0xC2)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	// LS and PS are E2 80 A8 and E2 80 A9: one search for their first byte, rare in an index.
	for i := bytes.IndexByte(data, 0xE2); i >= 0; {
		if i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9) {
			return true
		}
		j := bytes.IndexByte(data[i+1:], 0xE2)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// plainValueColumn returns, for a line whose last node is a plain scalar ("key: some words",
// "- some words", "- key: words"), the column (within body) of the node that owns it: YAML
// continues the scalar on every following line indented more than that. Otherwise -1.
func plainValueColumn(body []byte) int {
	col := 0
	for col < len(body) && body[col] == '-' && (col+1 == len(body) || body[col+1] == ' ') {
		next := col + 1
		for next < len(body) && body[next] == ' ' {
			next++
		}
		if next == len(body) || body[next] == '#' {
			return -1
		}
		if plainStart(body[next:]) && bytes.Index(body[next:], []byte(": ")) < 0 && body[len(body)-1] != ':' {
			return col // "- words": the scalar belongs to the sequence item
		}
		col = next
	}
	rest := body[col:]
	var value []byte
	switch {
	case len(rest) > 0 && (rest[0] == '"' || rest[0] == '\''):
		end := quotedEnd(rest)
		if end < 0 {
			return -1
		}
		after := bytes.TrimLeft(rest[end:], " ")
		if len(after) < 2 || after[0] != ':' || after[1] != ' ' {
			return -1
		}
		value = bytes.TrimLeft(after[1:], " ")
	default:
		i := bytes.Index(rest, []byte(": "))
		if i < 0 {
			if plainStart(rest) && rest[len(rest)-1] != ':' {
				return col // a plain scalar alone on its line, continuing one above: already owned
			}
			return -1
		}
		value = bytes.TrimLeft(rest[i+2:], " ")
	}
	if !plainStart(value) {
		return -1
	}
	return col
}

// plainStart reports whether v starts a plain scalar.
func plainStart(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case '"', '\'', '|', '>', '#', '[', '{', '&', '*', '!', '%', '@', '`', ']', '}', ',':
		return false
	case '-', '?', ':':
		return len(v) > 1 && v[1] != ' '
	}
	return true
}

// riskyNode says why a line of a field the fast path skips might change what Helm keeps or reads,
// or "" when it cannot: a null sequence item (in maintainers or dependencies Helm drops the
// entry), a dependency alias (Helm validates it), an alias, anchor or tag, a merge key, a complex
// key. Quoted and plain scalar content is not looked into.
func riskyNode(body []byte) Refusal {
	v := body
	for len(v) > 0 && v[0] == '-' && (len(v) == 1 || v[1] == ' ') {
		if nullItem(v[1:]) {
			return RefuseNullItem
		}
		v = bytes.TrimLeft(v[1:], " ")
	}
	if len(v) == 0 {
		return RefuseNullItem
	}
	var value []byte
	switch v[0] {
	case '*', '&', '!', '?', '<', '[', '{', '%', '@', '`':
		return RefuseAnchorAliasTag
	case '"', '\'':
		end := quotedEnd(v)
		if end < 0 {
			return RefuseUnclosedQuote
		}
		after := bytes.TrimLeft(v[end:], " ")
		if len(after) == 0 || after[0] == '#' {
			return ""
		}
		if after[0] != ':' {
			return RefuseStructure
		}
		if strings.EqualFold(string(v[1:end-1]), "alias") {
			return RefuseDependencyAlias
		}
		value = after[1:]
	default:
		i := bytes.Index(v, []byte(": "))
		switch {
		case i >= 0:
			value = v[i+1:]
		case v[len(v)-1] == ':':
			i, value = len(v)-1, nil
		default:
			return "" // a plain scalar
		}
		key := v[:i]
		if strings.EqualFold(string(bytes.TrimRight(key, " ")), "alias") {
			return RefuseDependencyAlias
		}
	}
	value = bytes.TrimLeft(value, " ")
	if len(value) > 0 && (value[0] == '*' || value[0] == '&' || value[0] == '!') {
		return RefuseAnchorAliasTag
	}
	return ""
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
