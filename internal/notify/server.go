package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/helmops/helmops/api/v1alpha1"
)

// Defaults of Options.
const (
	DefaultWindow       = time.Second
	DefaultMaxBodyBytes = 1 << 20
	maxConcurrent       = 64
)

var notificationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "helmops_notifications_total",
	Help: "Notifications received, by sender and result (accepted, ignored, unauthorized, invalid, rate_limited, error).",
}, []string{"sender", "result"})

func init() { metrics.Registry.MustRegister(notificationsTotal) }

// Options configure the notification endpoint.
type Options struct {
	// Addr is the listen address, e.g. ":8082".
	Addr string
	// Secret holds the shared token under the key "token".
	Secret client.ObjectKey
	// ShardID is the shard whose HelmOps notifications may select.
	ShardID string
	// Window is how often one repository's notifications are acted on; more within it are
	// answered 429. Default 1 second.
	Window time.Duration
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64
	// Clock is the clock of the rate limiter; default the real clock.
	Clock clock.PassiveClock
}

// Server is the notification endpoint. Every replica serves it, leader or not: it reads HelmOps
// from the shared cache and writes only their reconcile-requested annotation.
type Server struct {
	opts    Options
	client  client.Client
	tokens  *tokenSource
	limiter *limiter
	sem     chan struct{}
	log     logr.Logger
	// bound is closed once the listener is open; Addr is then its address.
	bound chan struct{}
	addr  string
}

// Setup registers the HelmOp repository index with the manager and adds the endpoint to it.
func Setup(mgr ctrl.Manager, opts Options) (*Server, error) {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.HelmOp{}, RepositoryIndex, indexRepositories); err != nil {
		return nil, err
	}
	s := New(mgr.GetClient(), mgr.GetAPIReader(), opts)
	s.log = mgr.GetLogger().WithName("notify")
	s.tokens.log = s.log
	return s, mgr.Add(s)
}

// New returns an endpoint that lists HelmOps through c (which must have RepositoryIndex) and
// reads the Secret through secrets.
func New(c client.Client, secrets client.Reader, opts Options) *Server {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Server{
		opts:    opts,
		client:  c,
		tokens:  &tokenSource{reader: secrets, key: opts.Secret, now: opts.Clock.Now, log: ctrl.Log.WithName("notify")},
		limiter: newLimiter(opts.Window),
		sem:     make(chan struct{}, maxConcurrent),
		log:     ctrl.Log.WithName("notify"),
		bound:   make(chan struct{}),
	}
}

// NeedLeaderElection is false: standby replicas take notifications too.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr is the address the endpoint listens on, once it does.
func (s *Server) Addr() string {
	<-s.bound
	return s.addr
}

// Handler is the endpoint's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /notify", s.serve)
	mux.HandleFunc("POST /notify/{token}", s.serve)
	return mux
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listening for notifications on %s (--webhook-bind-address): %w", s.opts.Addr, err)
	}
	s.addr = ln.Addr().String()
	close(s.bound)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("Serving notifications", "address", s.addr, "secret", s.opts.Secret.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errc:
		return err
	}
}

type reply struct {
	Sender  Sender `json:"sender,omitempty"`
	HelmOps int    `json:"helmOps"`
	Error   string `json:"error,omitempty"`
}

func (s *Server) answer(w http.ResponseWriter, code int, sender Sender, result string, body reply) {
	if sender == "" {
		sender = "unknown"
	}
	notificationsTotal.WithLabelValues(string(sender), result).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body.Sender = sender
	_ = json.NewEncoder(w).Encode(body)
}

// serve answers one notification: admitted, authenticated and parsed (read), then the
// reconciles of the HelmOps following its repositories requested (fanOut).
func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", "1")
		s.answer(w, http.StatusServiceUnavailable, "", "error", reply{Error: "too many notifications at once; retry"})
		return
	}
	n, refused := s.read(w, req)
	if refused != nil {
		s.answer(w, refused.code, "", refused.result, reply{Error: refused.message})
		return
	}
	if len(n.Targets) == 0 {
		s.log.V(1).Info("Ignoring a notification that publishes nothing", "sender", n.Sender)
		s.answer(w, http.StatusAccepted, n.Sender, "ignored", reply{})
		return
	}
	s.fanOut(req.Context(), w, n)
}

// refusal is an answer that ends a notification before any HelmOp is touched.
type refusal struct {
	code            int
	result, message string
}

func unauthorized(message string) *refusal {
	return &refusal{code: http.StatusUnauthorized, result: "unauthorized", message: message}
}

// read authenticates the request before anything else is read or believed, then reads and
// parses its body.
func (s *Server) read(w http.ResponseWriter, req *http.Request) (*Notification, *refusal) {
	token, signature, refused := s.authenticate(req)
	if refused != nil {
		return nil, refused
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &refusal{http.StatusRequestEntityTooLarge, "invalid", fmt.Sprintf("the body is larger than %d bytes", s.opts.MaxBodyBytes)}
		}
		return nil, &refusal{http.StatusBadRequest, "invalid", "reading the body failed"}
	}
	if signature != "" && !validSignature(signature, body, token) {
		return nil, unauthorized("unauthorized")
	}
	n, err := Parse(req.Header, body)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "invalid", err.Error()}
	}
	return n, nil
}

// authenticate checks a token presented in the path or as a bearer token, and otherwise returns
// the signature header for read to check against the body.
func (s *Server) authenticate(req *http.Request) (token []byte, signature string, _ *refusal) {
	t := s.tokens.get(req.Context())
	if t == nil {
		return nil, "", unauthorized("unauthorized")
	}
	presented := req.PathValue("token")
	if presented == "" {
		presented, _ = bearer(req.Header)
	}
	if presented != "" {
		if !equalSecret(presented, t) {
			return nil, "", unauthorized("unauthorized")
		}
		return t, "", nil
	}
	signature = req.Header.Get(SignatureHeader)
	if signature == "" {
		return nil, "", unauthorized("unauthorized: send Authorization: Bearer <token> or an " + SignatureHeader + " signature")
	}
	return t, signature, nil
}

// fanOut requests a reconcile of every HelmOp of this shard that follows a repository of n,
// at most once per repository per rate-limit window, and answers with what it did.
func (s *Server) fanOut(ctx context.Context, w http.ResponseWriter, n *Notification) {
	log := s.log.WithValues("sender", n.Sender)
	c, failed := s.requestTargets(ctx, log, n.Targets)
	switch {
	case failed != nil:
		s.answer(w, http.StatusServiceUnavailable, n.Sender, "error", *failed)
	case c.matched == 0:
		log.V(1).Info("Ignoring a notification for repositories no HelmOp of this shard follows", "repositories", len(n.Targets))
		s.answer(w, http.StatusAccepted, n.Sender, "ignored", reply{})
	case c.limited == c.matched:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(c.wait.Seconds()))))
		s.answer(w, http.StatusTooManyRequests, n.Sender, "rate_limited", reply{Error: "this repository was notified less than a rate-limit window ago; retry later"})
	default:
		s.answer(w, http.StatusAccepted, n.Sender, "accepted", reply{HelmOps: c.requested})
	}
}

// fanOutCounts is what requestTargets did: HelmOps requested, targets some HelmOp follows,
// targets of those rate-limited, and the longest wait until one of them is let through.
type fanOutCounts struct {
	requested, matched, limited int
	wait                        time.Duration
}

// requestTargets requests the reconciles of the HelmOps following each target that the rate
// limiter lets through. A failure ends it with the reply that tells the sender to retry.
func (s *Server) requestTargets(ctx context.Context, log logr.Logger, targets []Target) (fanOutCounts, *reply) {
	now := s.opts.Clock.Now()
	var c fanOutCounts
	for _, t := range targets {
		ops, err := helmOpsFollowing(ctx, s.client, s.opts.ShardID, t)
		if err != nil {
			log.Error(err, "Listing HelmOps for a notification")
			return c, &reply{Error: "the controller could not list HelmOps; retry"}
		}
		if len(ops) == 0 {
			continue // not a repository of this shard's HelmOps
		}
		c.matched++
		ok, after := s.limiter.allow(t.Key, now)
		if !ok {
			c.limited++
			c.wait = max(c.wait, after)
			continue
		}
		log.Info("Requesting reconciles of the HelmOps that use a notified repository", "repository", t.Key, "chart", t.Chart, "helmOps", len(ops))
		done, err := s.requestAll(ctx, t, ops, now)
		c.requested += done
		if err != nil {
			return c, &reply{HelmOps: c.requested, Error: "the controller could not annotate every HelmOp; retry"}
		}
	}
	return c, nil
}

// requestAll requests a reconcile of each of ops and returns how many it requested. On an error
// the repository's rate-limit window is given back, so the sender's retry is let through.
func (s *Server) requestAll(ctx context.Context, t Target, ops []*v1alpha1.HelmOp, now time.Time) (int, error) {
	for i, op := range ops {
		if err := requestReconcile(ctx, s.client, op, now); err != nil && !apierrors.IsNotFound(err) {
			s.limiter.forget(t.Key)
			s.log.Error(err, "Requesting a reconcile", "HelmOp", klog.KObj(op))
			return i, err
		}
	}
	return len(ops), nil
}
