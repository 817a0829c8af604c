package helmindex

import (
	"fmt"
	"io"
)

// DefaultMaxWindow is how much of an index Scan holds at most: the longest logical line (a
// quoted scalar wrapped over many lines) it reads.
const DefaultMaxWindow = 1 << 20

// Scan reads an index from r as it arrives and returns the entries of chart, holding only a
// window of the document in memory (at most maxWindow bytes; <= 0: DefaultMaxWindow) instead of
// all of it. It answers exactly as ParseBytes does when the fast path reads the index. When the
// fast path does not (refusal != ""), it returns no entries and stops reading: Scan keeps no
// copy, so the caller reads the index again whole and parses it with ParseBytesExplained. n is
// the number of bytes read from r.
func Scan(r io.Reader, chart string, maxWindow int) (e Entries, refusal Refusal, n int64, err error) {
	if maxWindow <= 0 {
		maxWindow = DefaultMaxWindow
	}
	s := newScanner(chart)
	buf := make([]byte, 0, min(64<<10, maxWindow))
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxWindow {
				return Entries{}, RefuseLongLine, n, nil
			}
			buf = append(make([]byte, 0, min(2*cap(buf), maxWindow)), buf...)
		}
		m, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		n += int64(m)
		final := rerr == io.EOF
		if rerr != nil && !final {
			return Entries{}, "", n, fmt.Errorf("reading repository index: %w", rerr)
		}
		if m == 0 && !final {
			continue
		}
		consumed, refusal := s.feed(buf, final)
		if refusal != "" {
			return Entries{}, refusal, n, nil
		}
		if final {
			e, refusal := s.finish()
			return e, refusal, n, nil
		}
		buf = buf[:copy(buf, buf[consumed:])]
	}
}
