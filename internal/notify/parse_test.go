package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://Charts.Example.com/stable/":         "helm://charts.example.com/stable",
		"http://charts.example.com:80/stable":        "helm://charts.example.com/stable",
		"https://user:pw@charts.example.com:443/x?y": "helm://charts.example.com/x",
		"https://charts.example.com:8443":            "helm://charts.example.com:8443",
		"oci://Registry.example.com/charts/alpine":   "oci://registry.example.com/charts/alpine",
		"oci://registry.example.com:443/c/a:1.0.0":   "oci://registry.example.com/c/a",
		"OCI://127.0.0.1:5000/charts/alpine/":        "oci://127.0.0.1:5000/charts/alpine",
		"oci://registry-1.docker.io/user/chart":      "oci://docker.io/user/chart",
		"oci://index.docker.io/user/chart":           "oci://docker.io/user/chart",
	} {
		got, ok := Key(in)
		if !ok || got != want {
			t.Errorf("Key(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "ftp://x/y", "file:///etc", "oci://", "oci://UPPER/Case", "charts/alpine", "https://", strings.Repeat("a", 3000)} {
		if got, ok := Key(in); ok {
			t.Errorf("Key(%q) = %q; want no key", in, got)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  http.Header
		body    string
		sender  Sender
		targets []Target
	}{{
		name:   "distribution push by tag, keyed by both host names",
		sender: SenderDistribution,
		body: `{"events":[{"id":"1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"charts/alpine","tag":"0.3.0","url":"http://10.0.0.5:5000/v2/charts/alpine/manifests/sha256:ab"},"request":{"host":"registry.example.com:5000"}},
			{"action":"push","target":{"repository":"charts/alpine","digest":"sha256:cd"},"request":{"host":"registry.example.com:5000"}},
			{"action":"pull","target":{"repository":"charts/nginx","tag":"1.0.0"},"request":{"host":"registry.example.com:5000"}}]}`,
		targets: []Target{{Key: "oci://registry.example.com:5000/charts/alpine"}, {Key: "oci://10.0.0.5:5000/charts/alpine"}},
	}, {
		name:    "distribution pull only",
		sender:  SenderDistribution,
		body:    `{"events":[{"action":"pull","target":{"repository":"charts/alpine","tag":"0.3.0"},"request":{"host":"r:5000"}}]}`,
		targets: nil,
	}, {
		name:    "harbor",
		sender:  SenderHarbor,
		body:    `{"type":"PUSH_ARTIFACT","occur_at":1700000000,"operator":"ci","event_data":{"resources":[{"digest":"sha256:ab","tag":"1.4.2","resource_url":"harbor.example.com/library/alpine:1.4.2"}],"repository":{"name":"alpine","namespace":"library","repo_full_name":"library/alpine","repo_type":"private"}}}`,
		targets: []Target{{Key: "oci://harbor.example.com/library/alpine"}},
	}, {
		name:   "harbor deletion",
		sender: SenderHarbor,
		body:   `{"type":"DELETE_ARTIFACT","event_data":{"resources":[{"resource_url":"harbor.example.com/library/alpine:1.4.2"}],"repository":{"repo_full_name":"library/alpine"}}}`,
	}, {
		name:    "docker hub",
		sender:  SenderDockerHub,
		body:    `{"callback_url":"https://registry.hub.docker.com/u/acme/alpine/hook/1/","push_data":{"pushed_at":1700000000,"pusher":"acme","tag":"1.4.2"},"repository":{"repo_name":"acme/alpine","namespace":"acme","name":"alpine"}}`,
		targets: []Target{{Key: "oci://docker.io/acme/alpine"}},
	}, {
		name:    "github registry_package",
		sender:  SenderGitHub,
		header:  http.Header{"X-Github-Event": {"registry_package"}},
		body:    `{"action":"published","registry_package":{"name":"charts/alpine","namespace":"Acme","package_type":"CONTAINER","package_version":{"version":"sha256:ab","package_url":"ghcr.io/acme/charts/alpine:1.4.2"},"registry":{"url":"https://ghcr.io/acme"}}}`,
		targets: []Target{{Key: "oci://ghcr.io/acme/charts/alpine"}},
	}, {
		name:    "github package",
		sender:  SenderGitHub,
		header:  http.Header{"X-Github-Event": {"package"}},
		body:    `{"action":"published","package":{"name":"alpine","namespace":"acme","package_type":"container","package_version":{"container_metadata":{"tag":{"name":"1.4.2"}}},"registry":{"url":"https://ghcr.io"}}}`,
		targets: []Target{{Key: "oci://ghcr.io/acme/alpine"}},
	}, {
		name:   "github ping",
		sender: SenderGitHub,
		header: http.Header{"X-Github-Event": {"ping"}},
		body:   `{"zen":"Design for failure."}`,
	}, {
		name:   "github npm package",
		sender: SenderGitHub,
		header: http.Header{"X-Github-Event": {"package"}},
		body:   `{"action":"published","package":{"name":"x","namespace":"acme","package_type":"npm"}}`,
	}, {
		name:    "generic helm repository and chart",
		sender:  SenderGeneric,
		body:    `{"repo":"https://charts.example.com/stable/","chart":"alpine"}`,
		targets: []Target{{Key: "helm://charts.example.com/stable", Chart: "alpine"}},
	}, {
		name:    "generic oci with chart",
		sender:  SenderGeneric,
		body:    `{"repo":"oci://registry.example.com/charts","chart":"alpine"}`,
		targets: []Target{{Key: "oci://registry.example.com/charts/alpine"}},
	}, {
		name:    "generic oci reference",
		sender:  SenderGeneric,
		body:    `{"repo":"oci://registry.example.com/charts/alpine:1.4.2"}`,
		targets: []Target{{Key: "oci://registry.example.com/charts/alpine"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			n, err := Parse(tc.header, []byte(tc.body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Sender).To(Equal(tc.sender))
			g.Expect(n.Targets).To(Equal(tc.targets))
		})
	}
}

func TestParseRefusesWhatIsNotANotification(t *testing.T) {
	many := `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"action":"push","target":{"repository":"c/x`+`","tag":"1"},"request":{"host":"h"}},`, 1), ",")
	for i := range 40 {
		many += `,{"action":"push","target":{"repository":"c/x` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `","tag":"1"},"request":{"host":"h"}}`
	}
	many += `]}`
	for name, body := range map[string]string{
		"not json":                `repo=https://x`,
		"unknown shape":           `{"hello":"world"}`,
		"generic file url":        `{"repo":"file:///etc/passwd"}`,
		"generic bad chart":       `{"repo":"https://charts.example.com","chart":"../x"}`,
		"generic empty repo":      `{"repo":""}`,
		"too many repositories":   many,
		"generic internal scheme": `{"repo":"gopher://10.0.0.1/x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(http.Header{}, []byte(body))
			if !errors.Is(err, errInvalid) {
				t.Fatalf("Parse = %v; want an invalid notification", err)
			}
		})
	}
}
