package helmindex

import (
	"bytes"
	"strconv"
	"time"

	"github.com/helmops/helmops/internal/chartversion"
)

// scan is the fast path: a line scanner over the block-style YAML that Helm writes. It skips the
// other charts without allocating and decodes only the fields a version choice needs. It reports
// ok=false for anything it does not handle exactly (JSON, flow style, anchors and aliases, tags,
// block or escaped scalars in the fields it reads, CRLF, tabs, duplicate keys), and the caller
// then parses the whole document instead: never a silently wrong answer.
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
		itemIndent  = -1 // column of the keys of the current entry
		cur         *chartversion.Candidate
		curHasVer   bool
		inURLs      bool
		keysSeen    map[string]bool
		foundCharts int
	)
	flush := func() {
		if cur != nil && curHasVer {
			out.Candidates = append(out.Candidates, *cur)
		}
		cur, curHasVer, inURLs, keysSeen = nil, false, false, nil
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
		if indent == 0 {
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
				if v, ok := scalar(body[len("apiVersion:"):]); !ok || v == "" {
					return Entries{}, false
				}
				sawAPI = true
			case body[0] == '{' || body[0] == '[' || body[0] == '-' || body[0] == '%' || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '&' || body[0] == '!':
				return Entries{}, false
			}
			continue
		}
		if !inEntries {
			continue
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
			if colon <= 0 {
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
				itemIndent = -1
			}
			continue
		}
		if !inChart {
			continue
		}
		// Inside our chart: a sequence of mappings.
		if isItem && (itemIndent < 0 || indent == itemIndent-2) {
			flush()
			cur = &chartversion.Candidate{}
			keysSeen = map[string]bool{}
			itemIndent = indent + 2
			body = bytes.TrimLeft(body[1:], " ")
			indent = itemIndent
			if len(body) == 0 {
				continue
			}
		}
		if cur == nil {
			return Entries{}, false
		}
		if body[0] == '-' && (len(body) == 1 || body[1] == ' ') && indent >= itemIndent {
			// An item of the last key's sequence, written at the key's column or deeper.
			if inURLs {
				u, ok := scalar(body[1:])
				if !ok {
					return Entries{}, false
				}
				cur.URLs = append(cur.URLs, u)
			}
			continue
		}
		if indent > itemIndent {
			if bytes.IndexByte(body, '*') >= 0 && (body[0] == '*' || bytes.Contains(body, []byte(": *")) || bytes.Contains(body, []byte("<<"))) {
				return Entries{}, false
			}
			continue // nested value of a field we do not need
		}
		if indent < itemIndent {
			return Entries{}, false
		}
		inURLs = false
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || body[0] == '"' || body[0] == '\'' || body[0] == '?' || body[0] == '<' || body[0] == '&' || body[0] == '*' {
			return Entries{}, false
		}
		key := string(body[:colon])
		if keysSeen[key] {
			return Entries{}, false
		}
		keysSeen[key] = true
		val := body[colon+1:]
		trimmed := bytes.TrimSpace(val)
		if len(trimmed) > 0 && (trimmed[0] == '&' || trimmed[0] == '*' || trimmed[0] == '!') {
			return Entries{}, false
		}
		switch key {
		case "version":
			v, ok := scalar(val)
			if !ok || looksNumeric(v) {
				return Entries{}, false
			}
			cur.Version, curHasVer = v, v != ""
		case "created":
			v, ok := scalar(val)
			if !ok {
				return Entries{}, false
			}
			if v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return Entries{}, false
				}
				cur.Created = t
			}
		case "digest":
			v, ok := scalar(val)
			if !ok || looksNumeric(v) {
				return Entries{}, false
			}
			cur.Digest = v
		case "deprecated":
			v, ok := scalar(val)
			if !ok || (v != "true" && v != "false") {
				return Entries{}, false
			}
			cur.Deprecated = v == "true"
		case "urls":
			if len(trimmed) != 0 {
				return Entries{}, false
			}
			inURLs = true
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

func hasKey(body []byte, key string) bool {
	return len(body) > len(key) && string(body[:len(key)]) == key && body[len(key)] == ':'
}

// scalar decodes a single-line scalar that follows "key:" — plain, or quoted without escapes.
func scalar(val []byte) (string, bool) {
	v := bytes.TrimSpace(val)
	if len(v) == 0 {
		return "", true
	}
	switch v[0] {
	case '"':
		if len(v) < 2 || v[len(v)-1] != '"' || bytes.IndexByte(v[1:len(v)-1], '"') >= 0 || bytes.IndexByte(v, '\\') >= 0 {
			return "", false
		}
		return string(v[1 : len(v)-1]), true
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || bytes.IndexByte(v[1:len(v)-1], '\'') >= 0 {
			return "", false
		}
		return string(v[1 : len(v)-1]), true
	case '|', '>', '&', '*', '!', '{', '[', '@', '`', '%':
		return "", false
	}
	if bytes.Contains(v, []byte(" #")) || bytes.Contains(v, []byte(": ")) {
		return "", false
	}
	s := string(v)
	switch s {
	case "~", "null", "Null", "NULL":
		return "", false
	}
	return s, true
}

// looksNumeric catches plain scalars YAML reads as numbers, which Helm's loader treats differently.
func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	return false
}
