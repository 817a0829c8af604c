package localenv

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// RepoOptions configure a ChartRepo.
type RepoOptions struct {
	// TLS serves HTTPS with a certificate of a throwaway CA (see CAPEM).
	TLS bool
	// Username and Password, when set, require HTTP basic auth on every request.
	Username, Password string
	// ChartBaseURL, when set, makes the index point at archives on another server (the archives
	// are still served here too).
	ChartBaseURL string
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// AllowUpload accepts chart archives on POST /api/charts (as ChartMuseum does), so another
	// process, such as `helmops dev publish`, can publish to a running repository.
	AllowUpload bool
}

// ChartRepo is a Helm chart repository served over HTTP(S): index.yaml written with Helm's own
// index code, chart archives packaged with the Helm SDK, ETag and Last-Modified with conditional
// requests, optional basic auth and TLS, and a request counter.
type ChartRepo struct {
	// URL is the repository URL, e.g. http://127.0.0.1:PORT
	URL string

	opts   RepoOptions
	ca     *selfSignedCA
	addr   string
	server *http.Server

	mu           sync.Mutex
	archives     map[string][]byte // path ("/charts/x-1.0.0.tgz") -> archive
	index        *repo.IndexFile
	indexYAML    []byte
	etag         string
	lastModified time.Time
	requests     map[string]int
	authorized   map[string]int
}

// StartChartRepo starts a chart repository on a free loopback port.
func StartChartRepo(opts RepoOptions) (*ChartRepo, error) {
	r := &ChartRepo{
		opts:       opts,
		archives:   map[string][]byte{},
		index:      repo.NewIndexFile(),
		requests:   map[string]int{},
		authorized: map[string]int{},
	}
	if opts.TLS {
		ca, err := newSelfSignedCA("chart-repo")
		if err != nil {
			return nil, err
		}
		r.ca = ca
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := r.listen(addr); err != nil {
		return nil, err
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	r.URL = scheme + "://" + r.addr
	if err := r.rebuildIndexLocked(); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

func (r *ChartRepo) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("chart repository: %w", err)
	}
	if r.ca != nil {
		cfg, err := r.ca.serverTLS()
		if err != nil {
			_ = ln.Close()
			return err
		}
		ln = tls.NewListener(ln, cfg)
	}
	r.addr = ln.Addr().String()
	r.server = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func(s *http.Server) { _ = s.Serve(ln) }(r.server)
	return nil
}

// Stop stops serving; the repository keeps its charts and can Restart on the same address.
func (r *ChartRepo) Stop() {
	if r.server != nil {
		_ = r.server.Close()
	}
}

// Restart serves again on the same address after Stop.
func (r *ChartRepo) Restart() error {
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after Close
		if err = r.listen(r.addr); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// CAPEM is the PEM certificate of the CA that signed the server certificate (TLS only).
func (r *ChartRepo) CAPEM() []byte {
	if r.ca == nil {
		return nil
	}
	return bytes.Clone(r.ca.caPEM)
}

// ClientTLS is a TLS configuration that trusts the repository (TLS only).
func (r *ChartRepo) ClientTLS() *tls.Config {
	if r.ca == nil {
		return nil
	}
	return r.ca.clientTLS()
}

// Publish packages a chart with BuildChart and adds it to the index.
func (r *ChartRepo) Publish(name, version string, opts ...ChartOption) error {
	data, err := BuildChart(name, version, opts...)
	if err != nil {
		return err
	}
	return r.PublishArchive(data)
}

// PublishArchive adds a packaged chart to the index.
func (r *ChartRepo) PublishArchive(data []byte) error {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("loading chart archive: %w", err)
	}
	md := ch.Metadata
	filename := fmt.Sprintf("%s-%s.tgz", md.Name, md.Version)
	sum := sha256.Sum256(data)
	base := r.URL + "/charts"
	if r.opts.ChartBaseURL != "" {
		base = strings.TrimSuffix(r.opts.ChartBaseURL, "/") + "/charts"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index.Has(md.Name, md.Version) {
		return fmt.Errorf("chart %s %s is already published", md.Name, md.Version)
	}
	if err := r.index.MustAdd(md, filename, base, hex.EncodeToString(sum[:])); err != nil {
		return err
	}
	r.archives["/charts/"+filename] = bytes.Clone(data)
	return r.rebuildIndexLocked()
}

// Republish replaces a published chart version with other content under the same name and
// version (what a repository that does not forbid it allows), updating the index's digest.
func (r *ChartRepo) Republish(name, version string, opts ...ChartOption) error {
	data, err := BuildChart(name, version, opts...)
	if err != nil {
		return err
	}
	return r.RepublishArchive(data)
}

// RepublishArchive publishes a packaged chart in place of the one of the same name and version.
func (r *ChartRepo) RepublishArchive(data []byte) error {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("loading chart archive: %w", err)
	}
	r.mu.Lock()
	versions := r.index.Entries[ch.Metadata.Name]
	for i, v := range versions {
		if v.Version == ch.Metadata.Version {
			r.index.Entries[ch.Metadata.Name] = append(versions[:i:i], versions[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	return r.PublishArchive(data)
}

// Archive returns the published archive of a chart version.
func (r *ChartRepo) Archive(name, version string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.archives[fmt.Sprintf("/charts/%s-%s.tgz", name, version)]
	return b, ok
}

func (r *ChartRepo) rebuildIndexLocked() error {
	r.index.SortEntries()
	r.index.Generated = time.Now()
	dir, err := os.MkdirTemp("", "helmops-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "index.yaml")
	if err := r.index.WriteFile(path, 0o644); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	r.indexYAML = b
	r.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	r.lastModified = time.Now().UTC().Truncate(time.Second)
	return nil
}

// Requests is the number of requests received for a path, e.g. "/index.yaml".
func (r *ChartRepo) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// AuthorizedRequests is the number of requests for a path that carried an Authorization header.
func (r *ChartRepo) AuthorizedRequests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.authorized[path]
}

// ResetCounters sets every request counter to zero.
func (r *ChartRepo) ResetCounters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = map[string]int{}
	r.authorized = map[string]int{}
}

func (r *ChartRepo) serveHTTP(w http.ResponseWriter, req *http.Request) {
	path := "/" + strings.TrimLeft(req.URL.Path, "/")
	r.mu.Lock()
	r.requests[path]++
	if req.Header.Get("Authorization") != "" {
		r.authorized[path]++
	}
	indexYAML, etag, lastModified := r.indexYAML, r.etag, r.lastModified
	archive, isArchive := r.archives[path]
	r.mu.Unlock()

	if !r.loggedIn(w, req) {
		return
	}
	if req.Method == http.MethodPost && path == "/api/charts" && r.opts.AllowUpload {
		r.upload(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case path == "/index.yaml":
		serveIndex(w, req, indexYAML, etag, lastModified)
	case isArchive:
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(archive)
	default:
		http.NotFound(w, req)
	}
}

// loggedIn says whether req carries the repository's user and password, when it has them;
// otherwise it answers 401 Unauthorized.
func (r *ChartRepo) loggedIn(w http.ResponseWriter, req *http.Request) bool {
	if r.opts.Username == "" && r.opts.Password == "" {
		return true
	}
	u, p, ok := req.BasicAuth()
	if !ok || u != r.opts.Username || p != r.opts.Password {
		w.Header().Set("WWW-Authenticate", `Basic realm="helmops test repository"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

// serveIndex serves index.yaml with its ETag and Last-Modified, answering 304 Not Modified to
// a request that names the same ETag or, naming none, a time not before Last-Modified.
func serveIndex(w http.ResponseWriter, req *http.Request, indexYAML []byte, etag string, lastModified time.Time) {
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", lastModified.Format(http.TimeFormat))
	if inm := req.Header.Get("If-None-Match"); inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if ims := req.Header.Get("If-Modified-Since"); ims != "" && req.Header.Get("If-None-Match") == "" {
		if t, err := http.ParseTime(ims); err == nil && !lastModified.After(t) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-yaml")
	_, _ = w.Write(indexYAML)
}

func (r *ChartRepo) upload(w http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(io.LimitReader(req.Body, 20<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.PublishArchive(data); err != nil {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), "already published") {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"saved":true}`))
}
