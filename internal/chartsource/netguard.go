package chartsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// NetworkPolicy says which addresses the Resolver may connect to. It is checked on the address
// each connection is actually made to, after name resolution, for every request including each
// redirect, so a name that resolves to a denied address (or a redirect to one) is refused too.
//
// The zero value denies link-local addresses (which include the cloud metadata endpoints),
// loopback, private ranges (RFC 1918, RFC 4193, carrier-grade NAT, where other pods and
// cluster services live) and the unspecified address: URLs in HelmOps are tenant input, and
// reaching those addresses needs an opt-in.
type NetworkPolicy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1 (helmops dev and tests serve charts there).
	AllowLoopback bool
	// AllowPrivate allows the private ranges: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
	// 100.64.0.0/10 and fc00::/7 (repositories inside the cluster or the company network).
	AllowPrivate bool
	// Deny adds ranges to refuse whatever the two switches above say.
	Deny []netip.Prefix
}

// AllowAll is the policy of a user's own command line: every address.
var AllowAll = NetworkPolicy{AllowLoopback: true, AllowPrivate: true}

// Ranges always refused unless a policy allows them explicitly through AllowAll's switches:
// link-local and the cloud metadata addresses outside it.
var (
	linkLocalRanges = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"), // includes 169.254.169.254, the usual metadata endpoint
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6
	}
	loopbackRanges = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	privateRanges  = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
)

// ErrDeniedAddress is wrapped by every error of a connection the NetworkPolicy refused.
var ErrDeniedAddress = errors.New("address denied")

// deniedError is a refused connection. It names the range's kind, never the address: the host
// name a tenant wrote is theirs to see, what it resolves to inside the cluster is not.
type deniedError struct{ kind string }

func (e *deniedError) Error() string {
	return "the address it resolves to is in a range the controller does not connect to (" + e.kind + ")"
}
func (e *deniedError) Unwrap() error { return ErrDeniedAddress }

// check returns a *deniedError when addr may not be connected to.
func (p NetworkPolicy) check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, r := range p.Deny {
		if r.Contains(addr) {
			return &deniedError{kind: "denied by the operator"}
		}
	}
	if addr.IsUnspecified() {
		return &deniedError{kind: "unspecified address"}
	}
	for _, r := range linkLocalRanges {
		if r.Contains(addr) {
			return &deniedError{kind: "link-local or cloud metadata"}
		}
	}
	if !p.AllowLoopback {
		for _, r := range loopbackRanges {
			if r.Contains(addr) {
				return &deniedError{kind: "loopback"}
			}
		}
	}
	if !p.AllowPrivate {
		for _, r := range privateRanges {
			if r.Contains(addr) {
				return &deniedError{kind: "private network"}
			}
		}
	}
	if addr.IsMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsLinkLocalMulticast() {
		return &deniedError{kind: "multicast"}
	}
	return nil
}

// control is a net.Dialer Control hook: it runs after name resolution, on the address about to
// be connected to.
func (p NetworkPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &deniedError{kind: "not an IP address"}
	}
	return p.check(ap.Addr())
}

// ParseCIDRs reads a list of CIDR ranges (or single addresses) for NetworkPolicy.Deny.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR range or an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// checkRedirect keeps credentials only on redirects to the same scheme, host and port as the
// first request, and refuses https → http. Go's client keeps Authorization on redirects to the
// same host name whatever the scheme or port, and to its subdomains.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0]
	prev := via[len(via)-1]
	if strings.EqualFold(prev.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
		return fmt.Errorf("refusing the redirect from %s to %s: https to %s", hostOf(prev.URL), hostOf(req.URL), req.URL.Scheme)
	}
	if !sameOrigin(req.URL.String(), first.URL.String()) {
		req.Header.Del("Authorization")
		req.Header.Del("Cookie")
		req.Header.Del("Proxy-Authorization")
	}
	return nil
}

func hostOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

// cleanNetError rewrites a connection error so that it names the URL's host as written and
// never the address it resolved to (Go's dial errors quote "dial tcp 10.0.0.7:443").
func cleanNetError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Host
	}
	var de *deniedError
	if errors.As(err, &de) {
		return fmt.Errorf("connecting to %s: %w", host, de)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("connecting to %s: timed out: %w", host, context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	if what, ok := dialFailure(err); ok {
		return fmt.Errorf("connecting to %s: %s", host, what)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Redirect refusals, TLS errors: the inner error names hosts as written, not addresses.
		return fmt.Errorf("requesting %s: %w", host, ue.Err)
	}
	return err
}

// dialFailure says what failed in a name resolution or dial error, without the address it
// resolved to; ok is false for other errors.
func dialFailure(err error) (what string, ok bool) {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "no such host", true
		}
		return "name resolution failed", true
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		return "", false
	}
	// The inner error says what happened ("connect: connection refused", "tls: certificate
	// required"); the OpError around it names the resolved address.
	switch {
	case opErr.Timeout():
		return "timed out", true
	case opErr.Err != nil:
		return opErr.Err.Error(), true
	}
	return "connection failed", true
}
