package chartsource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clientCert makes a self-signed client certificate, which the server trusts as its own CA.
func clientCert(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: "helmops client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), cert
}

func TestMutualTLSFromATLSSecret(t *testing.T) {
	g := NewWithT(t)
	certPEM, keyPEM, cert := clientCert(t)
	target, _ := url.Parse(plainRepo.URL)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	ref := Ref{Repo: srv.URL, Chart: "alpine"}

	_, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), ref, Auth{CAFile: serverCA})
	g.Expect(err).To(MatchError(ContainSubstring("certificate required")))

	a, err := AuthFromSecret(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fleet-local", Name: "mtls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": serverCA},
	})
	g.Expect(err).NotTo(HaveOccurred())
	res, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), ref, a)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.2.0"))
}

func TestDockerConfigCredentialsForARegistry(t *testing.T) {
	g := NewWithT(t)
	docker := []byte(`{"auths":{"` + secureReg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)) + `"}}}`)
	a, err := AuthFromSecret(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fleet-local", Name: "pull"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{".dockerconfigjson": docker, "cacerts": secureReg.CAPEM()},
	})
	g.Expect(err).NotTo(HaveOccurred())
	for _, v := range []string{"", "0.1.0"} {
		res, err := NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: "oci://" + secureReg.Host + "/charts/alpine", Version: v}, a)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal(map[string]string{"": "0.2.0", "0.1.0": "0.1.0"}[v]))
	}
	// Credentials for another registry are not used.
	other := []byte(`{"auths":{"elsewhere.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)) + `"}}}`)
	_, err = NewResolver(Options{Network: testNetwork}).Resolve(context.Background(), Ref{Repo: "oci://" + secureReg.Host + "/charts/alpine"}, Auth{DockerConfigJSON: other, CAFile: secureReg.CAPEM()})
	g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized")))
}
