package chartsource

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/helmops/helmops/internal/chartsource/helmindex"
	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/redact"
)

// indexEntry is one index body as last fetched, with the entries parsed from it per chart.
// Everything but charts and validated is immutable.
type indexEntry struct {
	key          string
	body         []byte
	etag         string
	lastModified string

	mu        sync.Mutex
	validated time.Time
	charts    map[string]*chartEntries
	size      int64 // accounted bytes, guarded by the cache's lock
	elem      *list.Element
}

// chartEntries memoises helmindex.ParseBytes of the entry's body for one chart.
type chartEntries struct {
	once    sync.Once
	entries helmindex.Entries
	err     error
}

// indexCache holds index entries by key, bounded by bytes, least recently used evicted first.
type indexCache struct {
	mu       sync.Mutex
	max      int64
	bytes    int64
	inflight int64      // reserved by downloads in progress
	lru      *list.List // front: most recently used
	byKey    map[string]*indexEntry
}

func newIndexCache(maxBytes int64) *indexCache {
	return &indexCache{max: maxBytes, lru: list.New(), byKey: map[string]*indexEntry{}}
}

func (c *indexCache) get(key string) *indexEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[key]
	if e != nil {
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// put stores e under its key, replacing the entry there, and evicts until the cache fits.
func (c *indexCache) put(e *indexEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byKey[e.key]; old != nil && old != e {
		c.removeLocked(old)
	}
	if c.byKey[e.key] != e {
		e.size = int64(len(e.body)) + 512
		c.byKey[e.key] = e
		e.elem = c.lru.PushFront(e)
		c.bytes += e.size
	}
	c.evictLocked(e)
}

// grow accounts for n more bytes held by e (parsed entries).
func (c *indexCache) grow(e *indexEntry, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[e.key] != e {
		return
	}
	e.size += n
	c.bytes += n
	c.evictLocked(e)
}

// errCacheFull is a download that cannot be given memory: downloads in flight already hold the
// cache's whole bound.
var errCacheFull = errors.New("the index cache is full with downloads in progress; trying again later")

// reserve accounts n bytes of a download in flight, evicting cached indexes to make room; it
// fails when downloads in flight alone would exceed the bound.
func (c *indexCache) reserve(n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight+n > c.max {
		return fmt.Errorf("%w (%d bytes in flight, bound %d bytes)", errCacheFull, c.inflight, c.max)
	}
	c.inflight += n
	c.evictLocked(nil)
	return nil
}

// release gives back n reserved bytes.
func (c *indexCache) release(n int64) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight -= n
}

func (c *indexCache) evictLocked(keep *indexEntry) {
	for c.bytes+c.inflight > c.max && c.lru.Len() > 0 {
		last := c.lru.Back().Value.(*indexEntry)
		if last == keep && c.lru.Len() == 1 {
			// One index larger than the whole cache is not kept.
			c.removeLocked(last)
			return
		}
		if last == keep {
			c.lru.MoveToFront(last.elem)
			continue
		}
		c.removeLocked(last)
	}
}

func (c *indexCache) removeLocked(e *indexEntry) {
	c.lru.Remove(e.elem)
	delete(c.byKey, e.key)
	c.bytes -= e.size
}

// usage reports the bytes accounted and the number of indexes held.
func (c *indexCache) usage() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.byKey)
}

// normalizeRepoURL makes equal repository URLs equal strings: no trailing slash, lower-case
// scheme and host.
func normalizeRepoURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return strings.TrimRight(raw, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.Fragment = ""
	return u.String()
}

// indexURL is where the index of a repository is.
func indexURL(repoURL string) string {
	u, err := url.Parse(repoURL)
	if err != nil {
		return strings.TrimRight(repoURL, "/") + "/index.yaml"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/index.yaml"
	u.RawPath = ""
	return u.String()
}

// sameOrigin reports whether two URLs have the same scheme, host and port.
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(hostPort(ua), hostPort(ub))
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return u.Host + ":443"
	case "http":
		return u.Host + ":80"
	}
	return u.Host
}

// resolveChartURL makes a chart URL of the index absolute against the repository URL, as Helm
// does: a relative URL is relative to the repository's directory.
func resolveChartURL(repoURL, chartURL string) (string, error) {
	c, err := url.Parse(chartURL)
	if err != nil {
		return "", fmt.Errorf("the index of %s lists chart URL %q, which is not a URL", redact.URL(repoURL), chartURL)
	}
	if c.IsAbs() {
		return chartURL, nil
	}
	base, err := url.Parse(repoURL)
	if err != nil {
		return "", err
	}
	base.Path = strings.TrimRight(base.Path, "/") + "/"
	base.RawPath = ""
	return base.ResolveReference(c).String(), nil
}

// resolveHelm resolves a chart of a Helm HTTP repository through the shared index cache and
// returns the resolution and the normalised repository URL.
func (r *Resolver) resolveHelm(ctx context.Context, ref Ref, auth Auth) (*Resolution, string, error) {
	repoURL := normalizeRepoURL(ref.Repo)
	entries, err := r.entries(ctx, repoURL, ref.Chart, auth)
	if err != nil {
		return nil, repoURL, err
	}
	if !entries.Found {
		return nil, repoURL, &NotFoundError{Object: "chart", Name: ref.Chart, Where: redact.URL(repoURL)}
	}
	choice, err := chartversion.Choose(entries.Candidates, ref.Version)
	if err != nil {
		return nil, repoURL, choiceError(err, ref.Chart, redact.URL(repoURL))
	}
	c := choice.Chosen
	res := &Resolution{Kind: KindHelmRepo, Version: c.Version, Created: c.Created, Rejected: choice.Rejected, Latest: choice.Latest}
	if c.Digest != "" {
		res.Digest = c.Digest
		if !strings.Contains(c.Digest, ":") {
			res.Digest = "sha256:" + strings.ToLower(c.Digest)
		}
	}
	if len(c.URLs) == 0 {
		return nil, repoURL, fmt.Errorf("the index of %s lists chart %q version %s without a download URL", redact.URL(repoURL), ref.Chart, c.Version)
	}
	if res.URL, err = resolveChartURL(repoURL, c.URLs[0]); err != nil {
		return nil, repoURL, err
	}
	res.URL = withoutUserinfo(res.URL) // a password in the repository URL never travels with the chart URL
	return res, repoURL, nil
}

// entries are the versions of chart in the index of repoURL: streamed when the Resolver keeps
// no indexes (Options.StreamIndexes) and the fast path reads the index, otherwise from the
// cached index body.
func (r *Resolver) entries(ctx context.Context, repoURL, chart string, auth Auth) (helmindex.Entries, error) {
	if r.opts.StreamIndexes {
		entries, refusal, err := r.streamEntries(ctx, repoURL, chart, auth)
		if err != nil || refusal == "" {
			return entries, err
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("Fetching the repository index again to parse it whole: the fast path does not read it",
			"repository", redact.URL(repoURL), "chart", chart, "reason", string(refusal))
	}
	e, err := r.index(ctx, repoURL, auth)
	if err != nil {
		return helmindex.Entries{}, err
	}
	entries, err := r.chartEntries(ctx, e, repoURL, chart)
	if err != nil {
		return entries, fmt.Errorf("reading the index of %s: %w", redact.URL(repoURL), err)
	}
	return entries, nil
}

// streamEntries reads the index of repoURL as it arrives and keeps only the entries of chart,
// never the body: a one-shot resolution of a large index then costs no more memory than a
// window of it. A refusal of the fast path is returned for the caller to fetch the index whole.
func (r *Resolver) streamEntries(ctx context.Context, repoURL, chart string, auth Auth) (helmindex.Entries, helmindex.Refusal, error) {
	hctx, done, err := r.acquireURL(ctx, repoURL)
	if err != nil {
		return helmindex.Entries{}, "", err
	}
	entries, refusal, err := r.streamOnHost(hctx, repoURL, chart, auth)
	if err = done(err); err != nil {
		return helmindex.Entries{}, "", err
	}
	return entries, refusal, nil
}

// streamOnHost is streamEntries holding a slot of the repository's host.
func (r *Resolver) streamOnHost(ctx context.Context, repoURL, chart string, auth Auth) (helmindex.Entries, helmindex.Refusal, error) {
	where := redact.URL(repoURL)
	header := http.Header{}
	header.Set("Accept", indexAccept)
	u := indexURL(repoURL)
	resp, err := r.get(ctx, u, repoURL, auth, header)
	if err != nil {
		return helmindex.Entries{}, "", fmt.Errorf("fetching the index of %s: %w", where, err)
	}
	defer resp.Body.Close()
	if err := indexStatus(resp, u, where); err != nil {
		return helmindex.Entries{}, "", err
	}
	max := r.opts.MaxIndexBytes
	if resp.ContentLength > max {
		return helmindex.Entries{}, "", indexTooLarge(where, max)
	}
	indexRequests.WithLabelValues("streamed").Inc()
	r.parses.Add(1)
	entries, refusal, n, err := helmindex.Scan(io.LimitReader(resp.Body, max+1), chart, 0)
	switch {
	case n > max:
		return helmindex.Entries{}, "", indexTooLarge(where, max)
	case err != nil:
		return helmindex.Entries{}, "", fmt.Errorf("fetching the index of %s: %w", where, cleanNetError(errors.Unwrap(err), where))
	}
	return entries, refusal, nil
}

// indexAccept is the Accept header of index requests.
const indexAccept = "application/x-yaml, application/yaml, application/json, text/yaml, */*"

// indexStatus turns an index response other than 200 into its error.
func indexStatus(resp *http.Response, u, where string) error {
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return &NotFoundError{Object: "index", Where: redact.URL(u)}
	case resp.StatusCode != http.StatusOK:
		return statusError(resp, "fetching the index of "+where)
	}
	return nil
}

// indexTooLarge is the error of an index above the size limit.
func indexTooLarge(where string, max int64) error {
	return fmt.Errorf("fetching the index of %s: the index is larger than the limit of %d bytes (%d MiB); raise the index size limit if the repository is that large: %w", where, max, max>>20, errIndexTooLarge)
}

// chartEntries parses e for one chart, once per body. When the fast path leaves the index to the
// full parse, it counts why and says so in a debug log: the full parse of a large index costs
// hundreds of milliseconds and megabytes.
func (r *Resolver) chartEntries(ctx context.Context, e *indexEntry, repoURL, chart string) (helmindex.Entries, error) {
	e.mu.Lock()
	ce, ok := e.charts[chart]
	if !ok {
		ce = &chartEntries{}
		e.charts[chart] = ce
	}
	e.mu.Unlock()
	ce.once.Do(func() {
		r.parses.Add(1)
		var refusal helmindex.Refusal
		ce.entries, refusal, ce.err = helmindex.ParseBytesExplained(e.body, chart, r.opts.MaxFullParseBytes)
		if refusal != "" {
			indexFullParses.WithLabelValues(string(refusal)).Inc()
			logr.FromContextOrDiscard(ctx).V(1).Info("Parsing the whole repository index: the fast path does not read it",
				"repository", redact.URL(repoURL), "chart", chart, "reason", string(refusal), "bytes", len(e.body))
		}
		var n int64 = 64
		for _, c := range ce.entries.Candidates {
			n += int64(len(c.Version)+len(c.Digest)) + 96
			for _, u := range c.URLs {
				n += int64(len(u)) + 16
			}
		}
		r.cache.grow(e, n)
	})
	return ce.entries, ce.err
}

// index returns the current index entry of a repository: from the cache when it was validated
// within MinRevalidate (unless ctx asks to revalidate), otherwise by a (conditional) request
// shared by all concurrent callers.
func (r *Resolver) index(ctx context.Context, repoURL string, auth Auth) (*indexEntry, error) {
	key := repoURL + "\x00" + auth.Fingerprint()
	if cur := r.cache.get(key); cur != nil && r.opts.MinRevalidate > 0 && !mustRevalidate(ctx) {
		cur.mu.Lock()
		fresh := time.Since(cur.validated) < r.opts.MinRevalidate
		cur.mu.Unlock()
		if fresh {
			indexRequests.WithLabelValues("cached").Inc()
			return cur, nil
		}
	}
	v, err := r.share(ctx, key, urlHost(repoURL), indexRequests, func(ctx context.Context) (any, string, error) {
		return r.fetchIndex(ctx, key, repoURL, auth)
	})
	if err != nil {
		return nil, err
	}
	return v.(*indexEntry), nil
}

// fetchIndex asks the server for the index, conditionally when a previous body is cached.
func (r *Resolver) fetchIndex(ctx context.Context, key, repoURL string, auth Auth) (*indexEntry, string, error) {
	cur := r.cache.get(key)
	where := redact.URL(repoURL)
	u := indexURL(repoURL)
	resp, err := r.get(ctx, u, repoURL, auth, conditionalHeader(cur))
	if err != nil {
		return nil, "error", fmt.Errorf("fetching the index of %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && cur != nil {
		return cur.revalidated(), "not_modified", nil
	}
	if err := indexStatus(resp, u, where); err != nil {
		return nil, "error", err
	}
	body, reserved, err := r.readIndex(resp, where)
	var once sync.Once
	release := func() { once.Do(func() { r.cache.release(reserved) }) }
	defer release()
	if err != nil {
		return nil, "error", err
	}
	if cur != nil && bytes.Equal(cur.body, body) {
		// Unchanged though the server does not answer conditional requests: keep what was parsed.
		return cur.revalidated(), "fetched", nil
	}
	e := &indexEntry{
		key:          key,
		body:         body,
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
		validated:    time.Now(),
		charts:       map[string]*chartEntries{},
	}
	release() // the body is now accounted as a cache entry
	r.cache.put(e)
	return e, "fetched", nil
}

// conditionalHeader asks for the index unless it is still the cached one (cur, nil when none).
func conditionalHeader(cur *indexEntry) http.Header {
	header := http.Header{}
	header.Set("Accept", indexAccept)
	if cur == nil {
		return header
	}
	if cur.etag != "" {
		header.Set("If-None-Match", cur.etag)
	}
	if cur.lastModified != "" {
		header.Set("If-Modified-Since", cur.lastModified)
	}
	return header
}

// revalidated marks a cached index as confirmed by the server now.
func (e *indexEntry) revalidated() *indexEntry {
	e.mu.Lock()
	e.validated = time.Now()
	e.mu.Unlock()
	return e
}

// readIndex reads an index body of at most MaxIndexBytes. The memory it takes is reserved in the
// index cache as it grows (evicting cached indexes to make room), so downloads in flight count
// against the cache's bound; the caller releases the returned reservation once the body is in
// the cache or dropped.
func (r *Resolver) readIndex(resp *http.Response, where string) ([]byte, int64, error) {
	max := r.opts.MaxIndexBytes
	tooLarge := func() error { return indexTooLarge(where, max) }
	if resp.ContentLength > max {
		return nil, 0, tooLarge()
	}
	res := &reservation{cache: r.cache, where: where}
	size := min(int64(64<<10), r.cache.max, max+1)
	if resp.ContentLength > 0 {
		size = resp.ContentLength + 1 // one more byte to see the end
	}
	if err := res.grow(size); err != nil {
		return nil, res.n, err
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, res.n, tooLarge()
			}
			next := min(2*int64(cap(buf)), max+1)
			if err := res.grow(next); err != nil {
				return nil, res.n, err
			}
			buf = append(make([]byte, 0, next), buf...)
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, res.n, fmt.Errorf("fetching the index of %s: %w", where, cleanNetError(err, where))
		}
	}
	if int64(len(buf)) > max {
		return nil, res.n, tooLarge()
	}
	return buf, res.n, nil
}

// reservation is the cache memory a download in flight holds (n bytes).
type reservation struct {
	cache *indexCache
	where string
	n     int64
}

// grow reserves up to n bytes in all, evicting cached indexes if need be.
func (v *reservation) grow(n int64) error {
	if n <= v.n {
		return nil
	}
	if n > v.cache.max {
		return fmt.Errorf("fetching the index of %s: the index needs more memory than the whole index cache holds (%d bytes): raise the index cache size (--index-cache-bytes)", v.where, v.cache.max)
	}
	if err := v.cache.reserve(n - v.n); err != nil {
		return fmt.Errorf("fetching the index of %s: %w", v.where, err)
	}
	v.n = n
	return nil
}

// withoutUserinfo drops user:password@ from a URL and keeps the rest, query included.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
