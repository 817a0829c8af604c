package chartsource

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Auth is how to reach a repository or registry: credentials, TLS and transport settings.
type Auth struct {
	// Username and Password for HTTP basic auth (Helm repositories) or registry login (OCI).
	Username, Password string
	// CAFile is PEM: certificate authorities trusted besides the system's.
	CAFile []byte
	// CertPEM and KeyPEM are a client certificate for mutual TLS.
	CertPEM, KeyPEM []byte
	// InsecureSkipTLSVerify accepts any server certificate.
	InsecureSkipTLSVerify bool
	// PlainHTTP talks to an OCI registry over http://.
	PlainHTTP bool
	// DockerConfigJSON is a ~/.docker/config.json document whose "auths" give registry
	// credentials by host.
	DockerConfigJSON []byte

	// boundTo is the origin (scheme://host:port) the credentials were given for; "" means any.
	boundTo string
}

// BoundTo returns a with its credentials bound to the origin (scheme, host and port) of rawURL,
// an http(s) URL or an oci:// reference: Resolve and FetchArchive use them only for references
// on that origin, and send none (no password, docker config or client certificate) elsewhere.
// TLS trust settings (CA certificates, insecureSkipVerify) apply everywhere.
func (a Auth) BoundTo(rawURL string) Auth {
	a.boundTo = originOf(rawURL)
	if a.boundTo == "" {
		a.boundTo = "invalid" // matches nothing
	}
	return a
}

// forRef returns a as is when it may be used for rawURL, else without its credentials.
func (a Auth) forRef(rawURL string) Auth {
	if a.boundTo == "" || originOf(rawURL) == a.boundTo {
		return a
	}
	return Auth{CAFile: a.CAFile, InsecureSkipTLSVerify: a.InsecureSkipTLSVerify, PlainHTTP: a.PlainHTTP}
}

// SameOrigin reports whether two references (http(s) URLs or oci:// references) are on the same
// scheme, host and port: whether credentials bound to one may be used for the other.
func SameOrigin(a, b string) bool {
	oa := originOf(a)
	return oa != "" && oa == originOf(b)
}

// originOf is scheme://host:port of an http(s) URL or an oci:// reference (which speaks https,
// or http with basicHTTP: the host and port decide), "" when it is neither.
func originOf(rawURL string) string {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "oci":
		host := strings.ToLower(u.Host)
		if u.Port() == "" {
			host += ":443"
		}
		return "oci://" + host
	case "http", "https":
		return scheme + "://" + strings.ToLower(hostPort(u))
	}
	return ""
}

// Secret keys read by AuthFromSecret (Fleet's names; the standard Secret types add theirs).
const (
	SecretKeyUsername           = "username"
	SecretKeyPassword           = "password"
	SecretKeyCACerts            = "cacerts"
	SecretKeyInsecureSkipVerify = "insecureSkipVerify"
	SecretKeyBasicHTTP          = "basicHTTP"
)

// SecretKeys are every key AuthFromSecret reads: the only keys of a helmSecretName secret that
// are copied into cluster namespaces for the agents.
var SecretKeys = []string{
	SecretKeyUsername, SecretKeyPassword, SecretKeyCACerts, SecretKeyInsecureSkipVerify, SecretKeyBasicHTTP,
	corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt", corev1.DockerConfigJsonKey,
}

// RefusedSecretError is a secret helmops never uses as repository credentials.
type RefusedSecretError struct{ Namespace, Name string }

func (e *RefusedSecretError) Error() string {
	return fmt.Sprintf("secret %s/%s is a service account token (type %s): helmops never sends or copies such secrets; name a secret that holds the repository's credentials", e.Namespace, e.Name, corev1.SecretTypeServiceAccountToken)
}

// CheckSecret refuses secrets that must never serve as repository credentials: service account
// tokens, whose key "token" would otherwise be copied into cluster namespaces.
func CheckSecret(s *corev1.Secret) error {
	if s != nil && s.Type == corev1.SecretTypeServiceAccountToken {
		return &RefusedSecretError{Namespace: s.Namespace, Name: s.Name}
	}
	return nil
}

// AuthFromSecret reads a helm access secret: Fleet's keys username, password (both or neither),
// cacerts, insecureSkipVerify and basicHTTP; the types kubernetes.io/basic-auth,
// kubernetes.io/tls (tls.crt and tls.key for mutual TLS, optional ca.crt) and
// kubernetes.io/dockerconfigjson (.dockerconfigjson). Errors name the secret and the key, never
// a value.
func AuthFromSecret(s *corev1.Secret) (Auth, error) {
	var a Auth
	if s == nil {
		return a, nil
	}
	if err := CheckSecret(s); err != nil {
		return Auth{}, err
	}
	d := secretKeys{s: s, name: s.Namespace + "/" + s.Name}
	if err := d.basicAuth(&a); err != nil {
		return Auth{}, err
	}
	a.CAFile = d.caBundle()
	if err := d.switches(&a); err != nil {
		return Auth{}, err
	}
	if err := d.certAndDockerConfig(&a); err != nil {
		return Auth{}, err
	}
	if _, err := a.tlsConfig(); err != nil {
		return Auth{}, fmt.Errorf("secret %s: %w", d.name, err)
	}
	return a, nil
}

// secretKeys reads the keys of a repository secret, named namespace/name in errors.
type secretKeys struct {
	s    *corev1.Secret
	name string
}

// get is the value of key k, from data or else from stringData.
func (d secretKeys) get(k string) ([]byte, bool) {
	if v, ok := d.s.Data[k]; ok {
		return v, true
	}
	if v, ok := d.s.StringData[k]; ok {
		return []byte(v), true
	}
	return nil, false
}

// basicAuth reads username and password, both or neither.
func (d secretKeys) basicAuth(a *Auth) error {
	user, hasUser := d.get(SecretKeyUsername)
	pass, hasPass := d.get(SecretKeyPassword)
	if hasUser != hasPass {
		missing := SecretKeyPassword
		if !hasUser {
			missing = SecretKeyUsername
		}
		return fmt.Errorf("secret %s: key %q is missing: set both %q and %q, or neither", d.name, missing, SecretKeyUsername, SecretKeyPassword)
	}
	a.Username, a.Password = string(user), string(pass)
	return nil
}

// caBundle is cacerts followed by ca.crt.
func (d secretKeys) caBundle() []byte {
	bundle, _ := d.get(SecretKeyCACerts)
	if ca, _ := d.get("ca.crt"); len(ca) > 0 {
		bundle = append(append(append([]byte{}, bundle...), '\n'), ca...)
	}
	return bundle
}

// switches reads the true/false keys: insecureSkipVerify and basicHTTP.
func (d secretKeys) switches(a *Auth) error {
	for _, k := range []struct {
		key string
		dst *bool
	}{{SecretKeyInsecureSkipVerify, &a.InsecureSkipTLSVerify}, {SecretKeyBasicHTTP, &a.PlainHTTP}} {
		raw, _ := d.get(k.key)
		v := strings.TrimSpace(string(raw))
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("secret %s: key %q must be true or false", d.name, k.key)
		}
		*k.dst = b
	}
	return nil
}

// certAndDockerConfig reads the client certificate and the Docker config as the secret's type
// says: a TLS secret needs both halves of the certificate, a dockerconfigjson one a valid
// config; helmops' own type (copies in cluster namespaces) and Opaque take what their keys hold.
func (d secretKeys) certAndDockerConfig(a *Auth) error {
	cert, _ := d.get(corev1.TLSCertKey)
	key, _ := d.get(corev1.TLSPrivateKeyKey)
	switch d.s.Type {
	case corev1.SecretTypeTLS:
		if len(cert) == 0 || len(key) == 0 {
			return fmt.Errorf("secret %s of type %s needs both %q and %q", d.name, d.s.Type, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
		}
		a.CertPEM, a.KeyPEM = cert, key
	case corev1.SecretTypeDockerConfigJson:
		a.DockerConfigJSON, _ = d.get(corev1.DockerConfigJsonKey)
		if _, err := dockerAuths(a.DockerConfigJSON); err != nil {
			return fmt.Errorf("secret %s: key %q: %w", d.name, corev1.DockerConfigJsonKey, err)
		}
	default:
		if len(cert) > 0 && len(key) > 0 {
			a.CertPEM, a.KeyPEM = cert, key
		}
		if dc, _ := d.get(corev1.DockerConfigJsonKey); len(dc) > 0 {
			if _, err := dockerAuths(dc); err != nil {
				return fmt.Errorf("secret %s: key %q: %w", d.name, corev1.DockerConfigJsonKey, err)
			}
			a.DockerConfigJSON = dc
		}
	}
	return nil
}

// Fingerprint is a stable one-way digest of every setting, for cache keys and change detection.
// It reveals nothing of the credentials.
func (a Auth) Fingerprint() string {
	h := sha256.New()
	_, _ = h.Write([]byte("helmops-auth-v1\n"))
	for _, f := range [][]byte{[]byte(a.Username), []byte(a.Password), a.CAFile, a.CertPEM, a.KeyPEM, a.DockerConfigJSON,
		[]byte(strconv.FormatBool(a.InsecureSkipTLSVerify)), []byte(strconv.FormatBool(a.PlainHTTP))} {
		_, _ = fmt.Fprintf(h, "%d:", len(f))
		_, _ = h.Write(f)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// tlsFingerprint identifies the TLS settings alone (the transport they build is shared).
func (a Auth) tlsFingerprint() string {
	return Auth{CAFile: a.CAFile, CertPEM: a.CertPEM, KeyPEM: a.KeyPEM, InsecureSkipTLSVerify: a.InsecureSkipTLSVerify}.Fingerprint()
}

func (a Auth) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.InsecureSkipTLSVerify} //nolint:gosec // the user asked for it
	if len(a.CAFile) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(a.CAFile) {
			return nil, errors.New("the CA certificates (cacerts, ca.crt or --ca-file) hold no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(a.CertPEM) > 0 || len(a.KeyPEM) > 0 {
		cert, err := tls.X509KeyPair(a.CertPEM, a.KeyPEM)
		if err != nil {
			return nil, errors.New("the client certificate and key (tls.crt and tls.key, or --cert-file and --key-file) do not form a valid key pair")
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// basicFor returns the username and password to send to host (host[:port]): the explicit ones,
// else those of the docker config entry for that host.
func (a Auth) basicFor(host string) (user, pass string, ok bool) {
	if a.Username != "" || a.Password != "" {
		return a.Username, a.Password, true
	}
	auths, err := dockerAuths(a.DockerConfigJSON)
	if err != nil {
		return "", "", false
	}
	if c, found := auths[strings.ToLower(host)]; found {
		return c.user, c.pass, true
	}
	return "", "", false
}

type dockerCred struct{ user, pass string }

// dockerAuths reads the "auths" of a docker config, keyed by lower-case host[:port].
func dockerAuths(doc []byte) (map[string]dockerCred, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(doc, &cfg); err != nil {
		return nil, errors.New("not a docker config JSON document")
	}
	out := map[string]dockerCred{}
	for k, v := range cfg.Auths {
		host := strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		host, _, _ = strings.Cut(host, "/")
		c := dockerCred{user: v.Username, pass: v.Password}
		if v.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(v.Auth)
			if err != nil {
				return nil, errors.New("the auth entry of a registry is not base64")
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, errors.New("the auth entry of a registry is not user:password")
			}
			c = dockerCred{user: u, pass: p}
		}
		out[strings.ToLower(host)] = c
	}
	return out, nil
}
