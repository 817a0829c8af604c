package scale

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/helmops/helmops/internal/testenv"
)

// countingProxy stands between one process and its kube-apiserver and counts the process's
// requests by verb and resource, e.g. "patch helmops/status" or "create bundledeployments";
// a write the apiserver refused with a conflict counts as "conflict patch helmops/status".
// It forwards with the control plane's admin credentials; the process sees a plain HTTP server
// without authentication on 127.0.0.1.
type countingProxy struct {
	srv        *httptest.Server
	kubeconfig string

	mu     sync.Mutex
	counts map[string]int
	// perSecond counts the requests that are not watches, by second since start.
	perSecond []int
	start     time.Time
}

func newCountingProxy(t *testing.T, cp *testenv.ControlPlane, name string) *countingProxy {
	t.Helper()
	target, err := url.Parse(cp.TestConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cp.TestConfig)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}, start: time.Now()}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := requestKey(r)
		if strings.HasPrefix(key, "watch ") {
			p.count(key) // counted when it starts: a watch answers for as long as it runs
			rp.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if sw.code == http.StatusConflict {
			key = "conflict " + key
		}
		p.count(key)
	}))
	t.Cleanup(p.srv.Close)
	p.kubeconfig = filepath.Join(t.TempDir(), name+".kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxy
  cluster: {server: %q}
users:
- name: proxy
  user: {}
contexts:
- name: proxy
  context: {cluster: proxy, user: proxy}
current-context: proxy
`, p.srv.URL)
	if err := os.WriteFile(p.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// count counts one request by its key; requests that were not watches also by the second.
func (p *countingProxy) count(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[key]++
	if strings.HasPrefix(key, "watch ") {
		return
	}
	s := int(time.Since(p.start) / time.Second)
	for len(p.perSecond) <= s {
		p.perSecond = append(p.perSecond, 0)
	}
	p.perSecond[s]++
}

// requestKey is "verb resource[/subresource]" of a Kubernetes API request, or "GET path" for
// discovery and other paths.
func requestKey(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return r.Method + " " + r.URL.Path
	}
	var resource, name, sub string
	if parts[0] == "namespaces" && len(parts) > 1 {
		if len(parts) == 2 {
			resource, name = "namespaces", parts[1]
		} else {
			parts = parts[2:]
		}
	}
	if resource == "" {
		resource = parts[0]
		if len(parts) > 1 {
			name = parts[1]
		}
		if len(parts) > 2 {
			sub = parts[2]
		}
	}
	if sub != "" {
		resource += "/" + sub
	}
	q := r.URL.Query()
	verb := ""
	switch r.Method {
	case http.MethodGet:
		switch {
		case q.Get("watch") == "true" || q.Get("watch") == "1":
			verb = "watch"
		case name != "":
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if name == "" {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(r.Method)
	}
	return verb + " " + resource
}

// counts is a snapshot of the counts so far.
func (p *countingProxy) snapshot() requestCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// rate is the mean number of requests per second (watches excluded) over the whole seconds
// between from and to, and the highest count in one of those seconds.
func (p *countingProxy) rate(from, to time.Time) (mean float64, peak int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, b := int(from.Sub(p.start)/time.Second), int(to.Sub(p.start)/time.Second)
	total := 0
	for s := max(a, 0); s <= b && s < len(p.perSecond); s++ {
		total += p.perSecond[s]
		peak = max(peak, p.perSecond[s])
	}
	if b < a {
		return 0, 0
	}
	return float64(total) / float64(b-a+1), peak
}

type requestCounts map[string]int

// since is what was counted after earlier.
func (c requestCounts) since(earlier requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - earlier[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// writes keeps the create, update, patch and delete requests.
func (c requestCounts) writes() requestCounts {
	out := requestCounts{}
	for k, v := range c {
		verb, _, _ := strings.Cut(k, " ")
		switch verb {
		case "create", "update", "patch", "delete", "deletecollection":
			out[k] = v
		}
	}
	return out
}

// without drops the requests on the given resources (e.g. "events", "leases").
func (c requestCounts) without(resources ...string) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		_, res, _ := strings.Cut(k, " ")
		if !slices.Contains(resources, res) {
			out[k] = v
		}
	}
	return out
}

func (c requestCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c requestCounts) String() string {
	keys := slices.Sorted(maps.Keys(c))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, c[k])
	}
	return "{" + b.String() + "}"
}
