package localenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
	"helm.sh/helm/v4/pkg/registry"

	// The registry's access controller and storage driver register themselves by import.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// RegistryOptions configure an OCIRegistry.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate of a throwaway CA (see CAPEM).
	TLS bool
	// Username and Password, when set, require htpasswd authentication.
	Username, Password string
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// Notifications is the registry's notifications configuration, as is: its endpoints are
	// sent an events envelope for every push, pull and deletion.
	Notifications configuration.Notifications
}

// OCIRegistry is the CNCF Distribution registry running in process with in-memory storage.
type OCIRegistry struct {
	// Host is 127.0.0.1:PORT; charts are pushed to oci://Host/charts/NAME.
	Host string

	opts   RegistryOptions
	ca     *selfSignedCA
	server *http.Server
	dir    string

	mu       sync.Mutex
	requests map[string]int
}

var quietRegistryLogs sync.Once

// StartOCIRegistry starts a registry on a free loopback port.
func StartOCIRegistry(opts RegistryOptions) (*OCIRegistry, error) {
	// The registry logs every 404 of Helm's push checks at error level; tests and `helmops dev`
	// read their own output, not the registry's.
	quietRegistryLogs.Do(func() { logrus.SetOutput(io.Discard) })
	r := &OCIRegistry{opts: opts, requests: map[string]int{}}
	cfg := registryConfig(opts)
	if opts.Username != "" || opts.Password != "" {
		if err := r.requireLogin(cfg); err != nil {
			return nil, err
		}
	}
	app := handlers.NewApp(context.Background(), cfg)
	ln, err := r.listen()
	if err != nil {
		return nil, err
	}
	r.server = &http.Server{Handler: r.counting(app), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.server.Serve(ln) }()
	r.Host = ln.Addr().String()
	return r, nil
}

// registryConfig configures the registry: in-memory storage that allows deletion, quiet logs
// and the notifications of opts.
func registryConfig(opts RegistryOptions) *configuration.Configuration {
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}, "delete": configuration.Parameters{"enabled": true}}
	cfg.Log.AccessLog.Disabled = true
	cfg.Log.Level = "error"
	cfg.HTTP.Secret = "helmops-test-registry"
	cfg.Notifications = opts.Notifications
	return cfg
}

// requireLogin writes an htpasswd file for the options' user into a directory of the
// registry's (removed by Stop) and makes cfg require it.
func (r *OCIRegistry) requireLogin(cfg *configuration.Configuration) error {
	dir, err := os.MkdirTemp("", "helmops-registry-")
	if err != nil {
		return err
	}
	r.dir = dir
	hash, err := bcrypt.GenerateFromPassword([]byte(r.opts.Password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(r.opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		return err
	}
	cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "helmops-test", "path": htpasswd}}
	return nil
}

// counting counts the requests for each path (see Requests) before next serves them.
func (r *OCIRegistry) counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

// listen listens on the options' address (default a free loopback port), with TLS by a CA of
// the registry's own when the options ask for it.
func (r *OCIRegistry) listen() (net.Listener, error) {
	addr := r.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if !r.opts.TLS {
		return ln, nil
	}
	ca, err := newSelfSignedCA("oci-registry")
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	r.ca = ca
	cfg, err := ca.serverTLS()
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// URL is the oci:// reference of a chart repository in this registry: oci://HOST/charts/NAME.
func (r *OCIRegistry) URL(name string) string { return "oci://" + r.Host + "/charts/" + name }

// Stop stops the registry.
func (r *OCIRegistry) Stop() {
	_ = r.server.Close()
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

// CAPEM is the PEM certificate of the CA that signed the server certificate (TLS only).
func (r *OCIRegistry) CAPEM() []byte {
	if r.ca == nil {
		return nil
	}
	return bytes.Clone(r.ca.caPEM)
}

// Requests is the number of requests received for a path, e.g. "/v2/charts/alpine/tags/list".
func (r *OCIRegistry) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// Client is a Helm registry client logged in to this registry.
func (r *OCIRegistry) Client() (*registry.Client, error) {
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: r.clientTLS()}}
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(httpClient), registry.ClientOptWriter(io.Discard)}
	if !r.opts.TLS {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if r.opts.Username != "" || r.opts.Password != "" {
		opts = append(opts, registry.ClientOptBasicAuth(r.opts.Username, r.opts.Password))
	}
	return registry.NewClient(opts...)
}

func (r *OCIRegistry) clientTLS() *tls.Config {
	if r.ca == nil {
		return nil
	}
	return r.ca.clientTLS()
}

// Publish packages a chart with BuildChart and pushes it with Helm's registry client, which
// stores a version with build metadata (0.2.0+up1.0) under the tag 0.2.0_up1.0. It returns the
// chart reference oci://HOST/charts/NAME.
func (r *OCIRegistry) Publish(ctx context.Context, name, version string, opts ...ChartOption) (string, error) {
	data, err := BuildChart(name, version, opts...)
	if err != nil {
		return "", err
	}
	return r.PublishArchive(ctx, data, name, version)
}

// PublishArchive pushes a packaged chart of the given name and version.
func (r *OCIRegistry) PublishArchive(_ context.Context, data []byte, name, version string) (string, error) {
	c, err := r.Client()
	if err != nil {
		return "", err
	}
	ref := fmt.Sprintf("%s/charts/%s:%s", r.Host, name, version)
	if _, err := c.Push(data, ref); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return strings.TrimSuffix(r.URL(name), "/"), nil
}
