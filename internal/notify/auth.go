package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// TokenKey is the key of the Secret that holds the shared token.
	TokenKey = "token"
	// minTokenBytes refuses tokens short enough to guess.
	minTokenBytes = 16
	// secretTTL is how long a read of the Secret is used: a rotated token takes effect within it,
	// and a flood of requests costs at most one read of the Secret per TTL.
	secretTTL = 10 * time.Second
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body, as GitHub sends it.
	SignatureHeader = "X-Hub-Signature-256"
)

// tokenSource reads the shared token from a Secret, at most once per secretTTL.
type tokenSource struct {
	reader client.Reader
	key    client.ObjectKey
	now    func() time.Time
	log    logr.Logger

	mu      sync.Mutex
	read    time.Time
	token   []byte
	problem string // why there is no usable token, for the log
}

// get returns the token, or nil when there is none (the reason is logged at each read).
func (s *tokenSource) get(ctx context.Context) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); s.read.IsZero() || now.Sub(s.read) >= secretTTL {
		s.read = now
		s.token, s.problem = s.load(ctx)
		if s.token == nil {
			s.log.Error(errors.New(s.problem), "Refusing every notification: no usable token")
		}
	}
	return s.token
}

func (s *tokenSource) load(ctx context.Context) ([]byte, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, s.key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("secret %s named by --webhook-secret does not exist: create it with a %q key", s.key, TokenKey)
		}
		return nil, fmt.Sprintf("reading secret %s named by --webhook-secret: %v", s.key, err)
	}
	token := []byte(strings.TrimSpace(string(secret.Data[TokenKey])))
	if len(token) < minTokenBytes {
		return nil, fmt.Sprintf("secret %s named by --webhook-secret has no %q key of at least %d bytes", s.key, TokenKey, minTokenBytes)
	}
	return token, ""
}

// equalSecret compares a presented secret with the token in constant time, whatever their lengths.
func equalSecret(presented string, token []byte) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256(token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// validSignature checks an X-Hub-Signature-256 header against the body.
func validSignature(header string, body, token []byte) bool {
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, token)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign is the X-Hub-Signature-256 value of body under token, for senders and tests.
func Sign(body, token []byte) string {
	mac := hmac.New(sha256.New, token)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
