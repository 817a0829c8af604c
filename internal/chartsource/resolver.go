package chartsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/helmops/helmops/internal/redact"
)

// Defaults of Options.
const (
	DefaultCacheBytes    int64 = 256 << 20
	DefaultMaxIndexBytes int64 = 100 << 20
	DefaultTimeout             = 2 * time.Minute
	// DefaultMaxFullParseBytes bounds indexes that the fast scanner cannot read (flow style,
	// anchors, unusual layouts) and that need a full YAML decode, which holds many times the
	// index in memory.
	DefaultMaxFullParseBytes int64 = 8 << 20
	DefaultMaxFetchesPerHost       = 2
	// DefaultMaxSlowFetches is what the controller allows (--max-slow-fetches): fewer than its
	// 10 workers, so that slow hosts, however many, leave workers free.
	DefaultMaxSlowFetches = 4
	DefaultMaxTags        = 10000
	DefaultMaxTagPages    = 100
)

// Options configure a Resolver.
type Options struct {
	// CacheBytes bounds the index cache (index bodies plus the entries parsed from them); least
	// recently used indexes are evicted first. Default 256 MiB.
	CacheBytes int64
	// MaxIndexBytes refuses larger index downloads. Default 100 MiB.
	MaxIndexBytes int64
	// Timeout bounds one request (an index download, a tag listing page, an archive download).
	// Default 2 minutes.
	Timeout time.Duration
	// MinRevalidate is how long a fetched or revalidated index is used without asking the
	// server again. Default 0: every resolution revalidates (cheaply: a conditional request that
	// the server answers 304 costs no parsing), and concurrent resolutions share one request.
	MinRevalidate time.Duration
	// TagPageSize is the page size asked of OCI registries when listing tags. Default 1000.
	TagPageSize int
	// MaxRetryWait bounds how long a 429 or 503 answer's Retry-After is honoured before giving
	// up. Default 30 seconds.
	MaxRetryWait time.Duration
	// Network says which addresses may be connected to; the zero value denies link-local,
	// metadata, loopback and private addresses (see NetworkPolicy).
	Network NetworkPolicy
	// MaxFullParseBytes refuses larger indexes that need the full YAML parse. Default 8 MiB.
	MaxFullParseBytes int64
	// MaxFetchesPerHost is how many callers may wait on one host at a time (callers sharing
	// one request count one each); the next get an error wrapping ErrHostBusy at once, so that
	// a slow host holds at most this many of a controller's workers. Default 2.
	MaxFetchesPerHost int
	// MaxTags and MaxTagPages bound an OCI tag listing. Defaults 10000 tags, 100 pages.
	MaxTags, MaxTagPages int
	// MaxSlowFetches bounds the callers that wait on a host for longer than one second at a
	// time, whatever the host: past that second, a caller keeps waiting only with one of these
	// slots; without one its request is cancelled and it gets an error wrapping ErrHostBusy (try
	// again shortly). MaxFetchesPerHost bounds what one slow host holds; this bounds what many
	// slow hosts hold together. Default 0: no bound (the agent, whose workers each wait on one
	// download at a time); the controller sets it below its number of workers.
	MaxSlowFetches int
	// StreamIndexes makes the Resolver keep no index bodies: each Helm repository index is read
	// as it arrives, keeping only the entries of the chart asked for (an index the fast path
	// does not read is fetched again whole). For one-shot resolutions, such as the CLI's, where
	// a cache would never be used again.
	StreamIndexes bool
}

// Resolver resolves chart versions and downloads chart archives. Use one per process: its index
// cache, request sharing and connection pools are what keep repositories from being asked the
// same question many times.
type Resolver struct {
	opts  Options
	cache *indexCache

	flightMu sync.Mutex
	flights  map[string]*flight

	transportMu sync.Mutex
	transports  map[string]*http.Transport

	ociMu      sync.Mutex
	ociClients map[string]*auth.Client

	hostMu    sync.Mutex
	hostSlots map[string]int

	// slow holds a token per caller waiting longer than busyWait; nil when unbounded.
	slow chan struct{}

	parses atomic.Int64
}

// NewResolver returns a Resolver; zero options take their defaults.
func NewResolver(o Options) *Resolver {
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MaxIndexBytes <= 0 {
		o.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TagPageSize <= 0 {
		o.TagPageSize = 1000
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = 30 * time.Second
	}
	if o.MaxFullParseBytes <= 0 {
		o.MaxFullParseBytes = DefaultMaxFullParseBytes
	}
	if o.MaxFetchesPerHost <= 0 {
		o.MaxFetchesPerHost = DefaultMaxFetchesPerHost
	}
	if o.MaxTags <= 0 {
		o.MaxTags = DefaultMaxTags
	}
	if o.MaxTagPages <= 0 {
		o.MaxTagPages = DefaultMaxTagPages
	}
	var slow chan struct{}
	if o.MaxSlowFetches > 0 {
		slow = make(chan struct{}, o.MaxSlowFetches)
	}
	return &Resolver{
		slow:       slow,
		opts:       o,
		cache:      newIndexCache(o.CacheBytes),
		flights:    map[string]*flight{},
		transports: map[string]*http.Transport{},
		ociClients: map[string]*auth.Client{},
		hostSlots:  map[string]int{},
	}
}

// ErrHostBusy is wrapped by the error of a request refused because MaxFetchesPerHost callers
// already wait on that host. It is not the host's fault: try again shortly.
var ErrHostBusy = errors.New("host busy")

// busyWait is how long a caller without one of its host's slots waits for one, or for the
// answer of a request in flight that it can share, before giving up with ErrHostBusy. A fast
// host answers well within it; a slow one holds no more than MaxFetchesPerHost callers longer.
const busyWait = time.Second

func (r *Resolver) busyError(host string) error {
	return fmt.Errorf("%d requests to %s are already waiting for answers; trying again shortly: %w", r.opts.MaxFetchesPerHost, host, ErrHostBusy)
}

// tryHost takes one of host's slots if one is free.
func (r *Resolver) tryHost(host string) (func(), bool) {
	host = strings.ToLower(host)
	r.hostMu.Lock()
	defer r.hostMu.Unlock()
	if r.hostSlots[host] >= r.opts.MaxFetchesPerHost {
		return nil, false
	}
	r.hostSlots[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			r.hostMu.Lock()
			defer r.hostMu.Unlock()
			if r.hostSlots[host]--; r.hostSlots[host] <= 0 {
				delete(r.hostSlots, host)
			}
		})
	}, true
}

// acquireSlot takes one of host's slots (host:port), waiting up to busyWait for one; the
// returned function gives it back.
func (r *Resolver) acquireSlot(ctx context.Context, host string) (func(), error) {
	if release, ok := r.tryHost(host); ok {
		return release, nil
	}
	deadline := time.NewTimer(busyWait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, r.busyError(host)
		case <-tick.C:
			if release, ok := r.tryHost(host); ok {
				return release, nil
			}
		}
	}
}

// acquireHost takes one of host's slots (see acquireSlot) for requests made on the returned
// context, which is patient (see patient). done gives the slot back and returns the error the
// requests ended with, or the busy error when patience ran out.
func (r *Resolver) acquireHost(ctx context.Context, host string) (_ context.Context, done func(error) error, _ error) {
	release, err := r.acquireSlot(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	pctx, stop := r.patient(ctx, host)
	return pctx, func(err error) error {
		defer release()
		return stop(err)
	}, nil
}

// acquireURL is acquireHost for the host of a URL.
func (r *Resolver) acquireURL(ctx context.Context, rawURL string) (context.Context, func(error) error, error) {
	return r.acquireHost(ctx, urlHost(rawURL))
}

// errImpatient is the cause of a context patient cancelled.
var errImpatient = errors.New("no slow-fetch slot")

// patient returns a context that, busyWait from now, is cancelled unless one of the
// MaxSlowFetches slots is free (the slot is then held until stop). stop ends it and returns err,
// or an error wrapping ErrHostBusy when the context was cancelled for want of a slot.
func (r *Resolver) patient(ctx context.Context, host string) (_ context.Context, stop func(error) error) {
	if r.slow == nil {
		return ctx, func(err error) error { return err }
	}
	pctx, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	stopped, held := false, false
	t := time.AfterFunc(busyWait, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		select {
		case r.slow <- struct{}{}:
			held = true
		default:
			slowFetchesCut.Inc()
			cancel(errImpatient)
		}
	})
	return pctx, func(err error) error {
		t.Stop()
		mu.Lock()
		stopped = true
		if held {
			<-r.slow
			held = false
		}
		mu.Unlock()
		impatient := errors.Is(context.Cause(pctx), errImpatient)
		cancel(nil)
		if impatient {
			return fmt.Errorf("%s has not answered within %v and %d requests to slow hosts are already waiting (--max-slow-fetches); trying again shortly: %w",
				host, busyWait, r.opts.MaxSlowFetches, ErrHostBusy)
		}
		return err
	}
}

// urlHost is the lower-case host:port of a URL, what per-host limits count by.
func urlHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "invalid"
	}
	return strings.ToLower(hostPort(u))
}

// IndexParses is how many times an index body was parsed for a chart since the Resolver was
// made; a revalidation answered 304 adds nothing.
func (r *Resolver) IndexParses() int64 { return r.parses.Load() }

// Resolve turns a helm block into one exact chart version. Errors: *FieldError and
// *chartversion.InvalidConstraintError (bad spec), *chartversion.NoMatchError (wrapped with
// chart and repository), ErrUnauthorized, *NotFoundError, and network errors.
func (r *Resolver) Resolve(ctx context.Context, ref Ref, auth Auth) (*Resolution, error) {
	start := time.Now()
	kind, err := Classify(ref)
	if err != nil {
		return nil, err
	}
	ref = Ref{Repo: strings.TrimSpace(ref.Repo), Chart: strings.TrimSpace(ref.Chart), Version: strings.TrimSpace(ref.Version)}
	auth = auth.forRef(ref.Location())
	defer func() { resolveDuration.WithLabelValues(string(kind)).Observe(time.Since(start).Seconds()) }()
	switch kind {
	case KindTarball:
		return &Resolution{Kind: KindTarball, URL: ref.Chart}, nil
	case KindOCI:
		return r.resolveOCI(ctx, ref, auth)
	default:
		res, _, err := r.resolveHelm(ctx, ref, auth)
		return res, err
	}
}

// FetchArchive downloads the chart archive of ref (resolving its version first when it is a
// constraint): from a Helm repository through the cached index, verified against the index's
// digest; from an OCI registry by exact tag; a tarball from its URL. Credentials go only to the
// host they belong to; more than maxBytes (default 20 MiB) is refused.
func (r *Resolver) FetchArchive(ctx context.Context, ref Ref, auth Auth, maxBytes int64) ([]byte, *Resolution, error) {
	if maxBytes <= 0 {
		maxBytes = 20 << 20
	}
	kind, err := Classify(ref)
	if err != nil {
		return nil, nil, err
	}
	ref = Ref{Repo: strings.TrimSpace(ref.Repo), Chart: strings.TrimSpace(ref.Chart), Version: strings.TrimSpace(ref.Version), Digest: strings.TrimSpace(ref.Digest)}
	auth = auth.forRef(ref.Location())
	switch kind {
	case KindTarball:
		data, err := r.download(ctx, ref.Chart, ref.Chart, auth, maxBytes)
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(data)
		return data, &Resolution{Kind: KindTarball, URL: ref.Chart, Digest: "sha256:" + hex.EncodeToString(sum[:])}, nil
	case KindOCI:
		return r.fetchOCI(ctx, ref, auth, maxBytes)
	default:
		res, repoURL, err := r.resolveHelm(ctx, ref, auth)
		if err != nil {
			return nil, nil, err
		}
		data, err := r.download(ctx, res.URL, repoURL, auth, maxBytes)
		if err != nil {
			return nil, nil, err
		}
		if want, ok := strings.CutPrefix(res.Digest, "sha256:"); ok {
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want) {
				return nil, nil, fmt.Errorf("chart archive %s has digest sha256:%s but the index of %s says %s: the repository is inconsistent or the download was altered", redact.URL(res.URL), got, redact.URL(repoURL), res.Digest)
			}
		}
		return data, res, nil
	}
}

// httpClient returns a client for the TLS settings of auth; clients with equal settings share a
// connection pool.
func (r *Resolver) httpClient(auth Auth) (*http.Client, error) {
	key := auth.tlsFingerprint()
	r.transportMu.Lock()
	defer r.transportMu.Unlock()
	t, ok := r.transports[key]
	if !ok {
		cfg, err := auth.tlsConfig()
		if err != nil {
			return nil, err
		}
		if len(r.transports) >= 64 {
			for k, old := range r.transports {
				old.CloseIdleConnections()
				delete(r.transports, k)
			}
		}
		t = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
				Control: r.opts.Network.control}).DialContext,
			TLSClientConfig:       cfg,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: r.opts.Timeout,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
		r.transports[key] = t
	}
	return &http.Client{Transport: t, Timeout: r.opts.Timeout, CheckRedirect: checkRedirect}, nil
}

// get sends a GET to rawURL, with the credentials of auth only when rawURL is on the same scheme
// and host as ownerURL, honouring Retry-After on 429 and 503. The caller closes the body of a
// returned response; every status is returned as is.
func (r *Resolver) get(ctx context.Context, rawURL, ownerURL string, auth Auth, header http.Header) (*http.Response, error) {
	client, err := r.httpClient(auth)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(r.opts.MaxRetryWait)
	for attempt := 0; ; attempt++ {
		req, err := newGet(ctx, rawURL, ownerURL, auth, header)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, cleanNetError(err, rawURL)
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable || attempt >= 4 {
			return resp, nil
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Duration(1<<attempt)*time.Second)
		if time.Now().Add(wait).After(deadline) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// newGet is the GET request of rawURL with header, and with basic auth when rawURL is on the
// origin of ownerURL: the credentials of auth for the host, else those written into ownerURL,
// else those written into rawURL. Userinfo never stays in the URL.
func newGet(ctx context.Context, rawURL, ownerURL string, auth Auth, header http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid URL", redact.URL(rawURL))
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "helmops")
	if sameOrigin(rawURL, ownerURL) {
		if u, p, ok := auth.basicFor(req.URL.Host); ok {
			req.SetBasicAuth(u, p)
		} else if u, p, ok := urlCredentials(ownerURL); ok {
			req.SetBasicAuth(u, p)
		} else if u, p, ok := urlCredentials(rawURL); ok {
			req.SetBasicAuth(u, p)
		}
	}
	req.URL.User = nil // userinfo goes in the Authorization header, to its own host only
	return req, nil
}

// sleep waits d, or until ctx ends and returns its error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// urlCredentials returns the username and password written into a URL.
func urlCredentials(raw string) (user, pass string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return "", "", false
	}
	p, _ := u.User.Password()
	return u.User.Username(), p, true
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), else def.
func retryAfter(v string, def time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return def
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return def
}

// statusError explains an unexpected HTTP status of a request for what.
func statusError(resp *http.Response, what string) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: %s: check the username and password (helmSecretName or --username): %w", what, resp.Status, ErrUnauthorized)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%s: %s: the server asked to retry later (Retry-After %q)", what, resp.Status, resp.Header.Get("Retry-After"))
	}
	return fmt.Errorf("%s: %s", what, resp.Status)
}

// download GETs an archive of at most maxBytes.
func (r *Resolver) download(ctx context.Context, rawURL, ownerURL string, auth Auth, maxBytes int64) ([]byte, error) {
	hctx, done, err := r.acquireURL(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	data, err := r.downloadOnHost(hctx, rawURL, ownerURL, auth, maxBytes)
	if err = done(err); err != nil {
		return nil, err
	}
	return data, nil
}

// downloadOnHost is download holding a slot of the archive's host.
func (r *Resolver) downloadOnHost(ctx context.Context, rawURL, ownerURL string, auth Auth, maxBytes int64) ([]byte, error) {
	resp, err := r.get(ctx, rawURL, ownerURL, auth, nil)
	if err != nil {
		return nil, fmt.Errorf("downloading chart archive %s: %w", redact.URL(rawURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, &NotFoundError{Object: "archive", Where: redact.URL(rawURL)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, "downloading chart archive "+redact.URL(rawURL))
	}
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("chart archive %s is %d bytes, more than the limit of %d bytes", redact.URL(rawURL), resp.ContentLength, maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("downloading chart archive %s: %w", redact.URL(rawURL), err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("chart archive %s is more than the limit of %d bytes", redact.URL(rawURL), maxBytes)
	}
	return data, nil
}

// flight is one request that concurrent callers share.
type flight struct {
	done    chan struct{}
	waiters int
	value   any
	err     error
}

// waiting is how many callers share the request for key in flight now (tests use it).
func (r *Resolver) waiting(key string) int {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	if f := r.flights[key]; f != nil {
		return f.waiters
	}
	return 0
}

// share runs fn once for all concurrent callers with the same key; fn returns its value and the
// result label it is counted under (counted is nil for requests that are not index requests).
// Callers hold one of host's slots while they wait: a caller that finds none free waits at most
// busyWait for a request in flight to answer (or for a slot to start one), then gets
// ErrHostBusy. The request runs on a context that ends at the first caller's deadline (or
// Options.Timeout) but is not cancelled with it, so that one caller giving up does not fail the
// others.
func (r *Resolver) share(ctx context.Context, key, host string, counted *prometheus.CounterVec, fn func(context.Context) (any, string, error)) (any, error) {
	release, haveSlot := r.tryHost(host)
	if haveSlot {
		defer release()
	}
	var giveUp <-chan time.Time
	if !haveSlot {
		t := time.NewTimer(busyWait)
		defer t.Stop()
		giveUp = t.C
	}
	if !haveSlot {
		if f := r.inFlight(key); f != nil {
			return r.join(ctx, f, host, false, giveUp, counted)
		}
		var err error
		if release, err = r.acquireSlot(ctx, host); err != nil {
			return nil, err
		}
		defer release()
	}
	// One look and one claim under one lock: a request that started meanwhile is shared, and two
	// callers never both start one.
	f, created := r.claim(key)
	if !created {
		return r.join(ctx, f, host, true, nil, counted)
	}
	return r.fly(ctx, f, key, host, counted, fn)
}

// claim is the request for key in flight, now with one more waiter, or else a new one that this
// caller is to make (created).
func (r *Resolver) claim(key string) (f *flight, created bool) {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	if f, ok := r.flights[key]; ok {
		f.waiters++
		return f, false
	}
	f = &flight{done: make(chan struct{}), waiters: 1}
	r.flights[key] = f
	return f, true
}

// inFlight is the request for key in flight, now with one more waiter; nil when there is none.
func (r *Resolver) inFlight(key string) *flight {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	f, ok := r.flights[key]
	if !ok {
		return nil
	}
	f.waiters++
	return f
}

// fly makes the request f claimed for key, for this caller and those who join it while it runs.
func (r *Resolver) fly(ctx context.Context, f *flight, key, host string, counted *prometheus.CounterVec, fn func(context.Context) (any, string, error)) (any, error) {
	timeout := r.opts.Timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	// The caller that makes the request is patient as a waiting one is; when it runs out of
	// patience the request ends, and every caller sharing it is told to try again shortly.
	pctx, stop := r.patient(fctx, host)
	result := f.run(pctx, fn)
	if f.err = stop(f.err); errors.Is(f.err, ErrHostBusy) {
		f.value = nil
	}
	if counted != nil {
		counted.WithLabelValues(result).Inc()
	}
	r.flightMu.Lock()
	delete(r.flights, key)
	r.flightMu.Unlock()
	close(f.done)
	return f.value, f.err
}

// run calls fn and keeps its value and error; a panic becomes an internal error. It returns
// the result label fn counted the request under.
func (f *flight) run(ctx context.Context, fn func(context.Context) (any, string, error)) (result string) {
	defer func() {
		if p := recover(); p != nil {
			f.err, result = fmt.Errorf("internal error: %v", p), "error"
		}
	}()
	f.value, result, f.err = fn(ctx)
	return result
}

// join waits for the answer of a request in flight. A caller without a slot of host gives up at
// giveUp; one with a slot waits as patiently as MaxSlowFetches allows.
func (r *Resolver) join(ctx context.Context, f *flight, host string, haveSlot bool, giveUp <-chan time.Time, counted *prometheus.CounterVec) (any, error) {
	wctx, stop := ctx, func(err error) error { return err }
	if haveSlot {
		wctx, stop = r.patient(ctx, host)
	}
	select {
	case <-f.done:
		_ = stop(nil)
	case <-wctx.Done():
		return nil, stop(ctx.Err())
	case <-giveUp:
		_ = stop(nil)
		return nil, r.busyError(host)
	}
	if counted != nil {
		counted.WithLabelValues("shared").Inc()
	}
	return f.value, f.err
}

var errIndexTooLarge = errors.New("index too large")

type revalidateKey struct{}

// WithRevalidate makes resolutions under ctx ask the server again even when the cached index is
// younger than Options.MinRevalidate: for a user's explicit request to look now.
func WithRevalidate(ctx context.Context) context.Context {
	return context.WithValue(ctx, revalidateKey{}, true)
}

func mustRevalidate(ctx context.Context) bool {
	v, _ := ctx.Value(revalidateKey{}).(bool)
	return v
}
