package chartsource

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/cert"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

func TestResolveTLSAndCredentials(t *testing.T) {
	good := Auth{Username: testUser, Password: testPassword}
	withCA := func(a Auth, ca []byte) Auth { a.CAFile = ca; return a }
	insecure := func(a Auth) Auth { a.InsecureSkipTLSVerify = true; return a }
	wrong := "wrong-password-zebra"
	sources := []struct {
		name string
		ref  Ref
		ca   []byte
	}{
		{"helm repository", Ref{Repo: secureRepo.URL, Chart: "alpine"}, secureRepo.CAPEM()},
		{"oci registry", Ref{Repo: "oci://" + secureReg.Host + "/charts/alpine"}, secureReg.CAPEM()},
	}
	for _, src := range sources {
		cases := []struct {
			name         string
			auth         Auth
			err          string
			unauthorized bool
		}{
			{name: "an unknown CA fails with the x509 error", auth: good, err: "x509: certificate signed by unknown authority"},
			{name: "the CA given", auth: withCA(good, src.ca)},
			{name: "insecure skips verification", auth: insecure(good)},
			{name: "no credentials", auth: withCA(Auth{}, src.ca), err: "401 Unauthorized", unauthorized: true},
			{name: "wrong password", auth: withCA(Auth{Username: testUser, Password: wrong}, src.ca), err: "401 Unauthorized", unauthorized: true},
		}
		for _, tc := range cases {
			t.Run(src.name+"/"+tc.name, func(t *testing.T) {
				g := NewWithT(t)
				r := NewResolver(Options{Network: testNetwork})
				for _, version := range []string{"", "0.1.0"} {
					ref := src.ref
					ref.Version = version
					res, err := r.Resolve(context.Background(), ref, tc.auth)
					if tc.err == "" {
						g.Expect(err).NotTo(HaveOccurred())
						g.Expect(res.Version).To(Equal(map[string]string{"": "0.2.0", "0.1.0": "0.1.0"}[version]))
						continue
					}
					g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
					g.Expect(errors.Is(err, ErrUnauthorized)).To(Equal(tc.unauthorized))
					g.Expect(err.Error()).NotTo(ContainSubstring(wrong))
					g.Expect(err.Error()).NotTo(ContainSubstring(testPassword))
				}
			})
		}
	}
}

func TestFetchArchive(t *testing.T) {
	ctx := context.Background()
	r := NewResolver(Options{Network: testNetwork})
	good := Auth{Username: testUser, Password: testPassword, CAFile: secureRepo.CAPEM()}

	t.Run("from a helm repository, verified against the index", func(t *testing.T) {
		g := NewWithT(t)
		data, res, err := r.FetchArchive(ctx, Ref{Repo: secureRepo.URL, Chart: "alpine", Version: "0.1.x"}, good, 0)
		g.Expect(err).NotTo(HaveOccurred())
		want, _ := secureRepo.Archive("alpine", "0.1.0")
		g.Expect(data).To(Equal(want))
		g.Expect(res.Version).To(Equal("0.1.0"))
	})
	t.Run("from an oci registry", func(t *testing.T) {
		g := NewWithT(t)
		a := Auth{Username: testUser, Password: testPassword, CAFile: secureReg.CAPEM()}
		data, res, err := r.FetchArchive(ctx, Ref{Repo: "oci://" + secureReg.Host + "/charts/alpine", Version: "0.2.0"}, a, 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Version).To(Equal("0.2.0"))
		g.Expect(chartVersionOf(t, data)).To(Equal("0.2.0"))

		_, _, err = r.FetchArchive(ctx, Ref{Repo: "oci://" + secureReg.Host + "/charts/alpine", Version: "0.2.0"}, a, 100)
		g.Expect(err).To(MatchError(ContainSubstring("more than the limit of 100")))
	})
	t.Run("a tarball", func(t *testing.T) {
		g := NewWithT(t)
		u := plainRepo.URL + "/charts/nginx-1.1.0.tgz"
		data, res, err := r.FetchArchive(ctx, Ref{Chart: u}, Auth{}, 0)
		g.Expect(err).NotTo(HaveOccurred())
		want, _ := plainRepo.Archive("nginx", "1.1.0")
		g.Expect(data).To(Equal(want))
		g.Expect(res.URL).To(Equal(u))
		g.Expect(res.Digest).To(HavePrefix("sha256:"))

		_, _, err = r.FetchArchive(ctx, Ref{Chart: plainRepo.URL + "/charts/nope-1.0.0.tgz"}, Auth{}, 0)
		var nf *NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
		_, _, err = r.FetchArchive(ctx, Ref{Chart: u}, Auth{}, 10)
		g.Expect(err).To(MatchError(ContainSubstring("more than the limit of 10 bytes")))
	})
	t.Run("credentials are not sent to a chart URL on another host", func(t *testing.T) {
		g := NewWithT(t)
		other, err := testenv.StartChartRepo(testenv.RepoOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		defer other.Stop()
		owner, err := testenv.StartChartRepo(testenv.RepoOptions{Username: testUser, Password: testPassword, ChartBaseURL: other.URL})
		g.Expect(err).NotTo(HaveOccurred())
		defer owner.Stop()
		archive, err := testenv.BuildChart("alpine", "0.1.0")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(owner.PublishArchive(archive)).To(Succeed())
		g.Expect(other.PublishArchive(archive)).To(Succeed())

		data, res, err := r.FetchArchive(ctx, Ref{Repo: owner.URL, Chart: "alpine"}, Auth{Username: testUser, Password: testPassword}, 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(data).To(Equal(archive))
		g.Expect(res.URL).To(Equal(other.URL + "/charts/alpine-0.1.0.tgz"))
		g.Expect(owner.AuthorizedRequests("/index.yaml")).To(Equal(1))
		g.Expect(other.Requests("/charts/alpine-0.1.0.tgz")).To(Equal(1))
		g.Expect(other.AuthorizedRequests("/charts/alpine-0.1.0.tgz")).To(Equal(0))
	})
}

func TestAuthFromSecret(t *testing.T) {
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("client.example.com", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	docker := []byte(`{"auths":{"https://registry.example.com:5000/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("robot:tok:en")) + `"},"other.example.com":{"username":"u2","password":"p2"}}}`)
	secret := func(typ corev1.SecretType, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet-local", Name: "helm"}, Type: typ, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	cases := []struct {
		name   string
		secret *corev1.Secret
		want   Auth
		err    string
	}{
		{name: "no secret", secret: nil, want: Auth{}},
		{name: "fleet keys", secret: secret(corev1.SecretTypeOpaque, map[string]string{"username": "u", "password": "p", "cacerts": string(certPEM), "insecureSkipVerify": "true", "basicHTTP": "true"}),
			want: Auth{Username: "u", Password: "p", CAFile: certPEM, InsecureSkipTLSVerify: true, PlainHTTP: true}},
		{name: "basic-auth type", secret: secret(corev1.SecretTypeBasicAuth, map[string]string{"username": "u", "password": "p"}), want: Auth{Username: "u", Password: "p"}},
		{name: "username without password", secret: secret(corev1.SecretTypeOpaque, map[string]string{"username": "u"}), err: `secret fleet-local/helm: key "password" is missing: set both "username" and "password", or neither`},
		{name: "password without username", secret: secret(corev1.SecretTypeOpaque, map[string]string{"password": "hunter2"}), err: `key "username" is missing`},
		{name: "bad boolean", secret: secret(corev1.SecretTypeOpaque, map[string]string{"insecureSkipVerify": "hunter2"}), err: `key "insecureSkipVerify" must be true or false`},
		{name: "bad CA", secret: secret(corev1.SecretTypeOpaque, map[string]string{"cacerts": "hunter2"}), err: "hold no PEM certificate"},
		{name: "tls type", secret: secret(corev1.SecretTypeTLS, map[string]string{"tls.crt": string(certPEM), "tls.key": string(keyPEM), "ca.crt": string(certPEM)}),
			want: Auth{CertPEM: certPEM, KeyPEM: keyPEM, CAFile: append([]byte{'\n'}, certPEM...)}},
		{name: "tls type without key", secret: secret(corev1.SecretTypeTLS, map[string]string{"tls.crt": string(certPEM)}), err: `needs both "tls.crt" and "tls.key"`},
		{name: "tls key not matching", secret: secret(corev1.SecretTypeTLS, map[string]string{"tls.crt": string(certPEM), "tls.key": "hunter2"}), err: "do not form a valid key pair"},
		{name: "dockerconfigjson", secret: secret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": string(docker)}), want: Auth{DockerConfigJSON: docker}},
		{name: "dockerconfigjson copied to a cluster namespace", secret: secret(v1alpha1.SecretTypeHelmOpsAccess, map[string]string{".dockerconfigjson": string(docker)}), want: Auth{DockerConfigJSON: docker}},
		{name: "dockerconfigjson not json", secret: secret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": "hunter2"}), err: "not a docker config JSON document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			a, err := AuthFromSecret(tc.secret)
			if tc.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
				g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a).To(Equal(tc.want))
		})
	}
	t.Run("docker config credentials go to their registry only", func(t *testing.T) {
		g := NewWithT(t)
		a := Auth{DockerConfigJSON: docker}
		u, p, ok := a.basicFor("registry.example.com:5000")
		g.Expect([]any{u, p, ok}).To(Equal([]any{"robot", "tok:en", true}))
		u, p, ok = a.basicFor("other.example.com")
		g.Expect([]any{u, p, ok}).To(Equal([]any{"u2", "p2", true}))
		_, _, ok = a.basicFor("evil.example.com")
		g.Expect(ok).To(BeFalse())
	})
	t.Run("fingerprints differ by every setting and reveal nothing", func(t *testing.T) {
		g := NewWithT(t)
		seen := map[string]bool{}
		for _, a := range []Auth{{}, {Username: "u"}, {Username: "u", Password: "hunter2"}, {Password: "u"}, {InsecureSkipTLSVerify: true}, {PlainHTTP: true}, {CAFile: certPEM}, {DockerConfigJSON: docker}} {
			f := a.Fingerprint()
			g.Expect(f).To(Equal(a.Fingerprint()))
			g.Expect(f).NotTo(ContainSubstring("hunter2"))
			g.Expect(seen).NotTo(HaveKey(f))
			seen[f] = true
		}
	})
}

func TestCredentialsInTheRepositoryURL(t *testing.T) {
	g := NewWithT(t)
	r := NewResolver(Options{Network: testNetwork})
	host := strings.TrimPrefix(secureRepo.URL, "https://")
	res, err := r.Resolve(context.Background(), Ref{Repo: "https://" + testUser + ":" + testPassword + "@" + host, Chart: "alpine"}, Auth{CAFile: secureRepo.CAPEM()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Version).To(Equal("0.2.0"))
	g.Expect(res.URL).NotTo(ContainSubstring(testPassword))

	for _, repo := range []string{"https://" + testUser + ":wrong-in-url@" + host, "http://" + testUser + ":wrong-in-url@127.0.0.1:1"} {
		_, err = r.Resolve(context.Background(), Ref{Repo: repo, Chart: "alpine"}, Auth{CAFile: secureRepo.CAPEM()})
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).NotTo(ContainSubstring("wrong-in-url"))
	}
}
