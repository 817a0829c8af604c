package redact

import (
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"fetching https://alice:s3cret@charts.example.com/index.yaml: 401", "fetching https://charts.example.com/index.yaml: 401"},
		{"GET https://charts.example.com/a.tgz?token=abc123&x=1 failed", "GET https://charts.example.com/a.tgz?token=REDACTED&x=REDACTED failed"},
		{`head "https://bob:pw@reg.example.com:5000/v2/x/manifests/1.0": unauthorized`, `head "https://reg.example.com:5000/v2/x/manifests/1.0": unauthorized`},
		{"failed to resolve bob:hunter2@reg.example.com/charts/x: denied", "failed to resolve reg.example.com/charts/x: denied"},
		{"repo https://u:p@host/a%zz?t=1 is not a URL", "repo https://host/<invalid URL> is not a URL"},
		{"sent Authorization: Basic YWxpY2U6czNjcmV0", "sent Authorization: Basic REDACTED"},
		{"see https://example.com/docs.", "see https://example.com/docs."},
		{"version sha256:abcdef and user@example.com stay", "version sha256:abcdef and user@example.com stay"},
		{"", ""},
	} {
		g := NewWithT(t)
		got := String(tc.in)
		g.Expect(got).To(Equal(tc.want), tc.in)
		for _, secret := range []string{"s3cret", "abc123", "hunter2", "YWxpY2U6czNjcmV0", ":pw@", "u:p@"} {
			g.Expect(got).NotTo(ContainSubstring(secret))
		}
	}
}

func TestUnparseableURLKeepsNoPath(t *testing.T) {
	g := NewWithT(t)
	got := URL("https://alice:pw@host:99999999/path?token=x%zz")
	g.Expect(got).NotTo(ContainSubstring("pw"))
	g.Expect(got).NotTo(ContainSubstring("token"))
}

func TestTruncate(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Truncate("short", 10)).To(Equal("short"))
	long := strings.Repeat("é", MaxConditionMessage) // 2 bytes each
	got := Message(long)
	g.Expect(len(got)).To(BeNumerically("<=", MaxConditionMessage))
	g.Expect(utf8.ValidString(got)).To(BeTrue())
	g.Expect(got).To(HaveSuffix("..."))
}
