package policy

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestNormalURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://charts.example.com", "https://charts.example.com"},
		{"HTTPS://Charts.Example.COM/Stable/", "https://charts.example.com/Stable"},
		{"https://allowed.example@evil.example/", "https://evil.example"},
		{"https://user:pass@charts.example.com/x", "https://charts.example.com/x"},
		{"https://charts.example.com:443/x", "https://charts.example.com/x"},
		{"http://charts.example.com:80/x", "http://charts.example.com/x"},
		{"https://charts.example.com:8443/x", "https://charts.example.com:8443/x"},
		{"https://charts.example.com./x", "https://charts.example.com/x"},
		{"https://charts.example.com/stable/../../evil", "https://charts.example.com/evil"},
		{"https://charts.example.com/stable/%2e%2e/evil", "https://charts.example.com/evil"},
		{"https://charts.example.com/stable/./x//y", "https://charts.example.com/stable/x/y"},
		{"https://charts.example.com/x#frag", "https://charts.example.com/x"},
		{"https://charts.example.com/x?token=1", "https://charts.example.com/x?token=1"},
		{"oci://Registry.Example:443/charts/nginx", "oci://registry.example/charts/nginx"},
		{"https://[::1]:8080/x", "https://[::1]:8080/x"},
	} {
		got, err := NormalURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"charts.example.com/x", "https://evil.example\\@allowed.example/", "https://", "%%"} {
		if got, err := NormalURL(bad); err == nil {
			t.Errorf("NormalURL(%q) = %q, want an error", bad, got)
		}
	}
}

func helmPolicy(name string, h v1alpha1.HelmOpPolicySpec) v1alpha1.Policy {
	return v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}, HelmOp: &h}
}

func spec(repo, chart string, targets ...v1alpha1.BundleTarget) *v1alpha1.HelmOpSpec {
	s := &v1alpha1.HelmOpSpec{Targets: targets}
	s.Helm = &v1alpha1.HelmOptions{Repo: repo, Chart: chart}
	return s
}

func target(repo, chart string) v1alpha1.BundleTarget {
	return v1alpha1.BundleTarget{Name: "t", Helm: &v1alpha1.HelmOptions{Repo: repo, Chart: chart}}
}

// TestRepositoryPatternsAsAnAttackerTriesThem: each spec tries to fetch from somewhere the
// Policy does not allow; only the allowed ones pass.
func TestRepositoryPatternsAsAnAttackerTriesThem(t *testing.T) {
	set := Merge("team-a", []v1alpha1.Policy{helmPolicy("repos", v1alpha1.HelmOpPolicySpec{
		AllowedHelmRepoPatterns: []string{`https://charts\.example\.com/stable(/.*)?`, `oci://registry\.example/team-a/.*`},
	})})
	for _, tc := range []struct {
		name      string
		spec      *v1alpha1.HelmOpSpec
		wantField string // "" when allowed
	}{
		{"allowed", spec("https://charts.example.com/stable", "nginx"), ""},
		{"allowed with a trailing slash", spec("https://charts.example.com/stable/", "nginx"), ""},
		{"allowed below the path", spec("https://charts.example.com/stable/extra", "nginx"), ""},
		{"host in any case is the same host", spec("HTTPS://CHARTS.EXAMPLE.COM/stable", "nginx"), ""},
		{"allowed OCI", spec("oci://registry.example/team-a/nginx", ""), ""},
		{"another host", spec("https://evil.example/stable", "nginx"), "spec.helm.repo"},
		{"the allowed host as userinfo", spec("https://charts.example.com@evil.example/stable", "nginx"), "spec.helm.repo"},
		{"the allowed URL as userinfo", spec("https://charts.example.com/stable@evil.example/stable", "nginx"), "spec.helm.repo"},
		{"a longer host", spec("https://charts.example.com.evil.example/stable", "nginx"), "spec.helm.repo"},
		{"dot-dot out of the allowed path", spec("https://charts.example.com/stable/../incubator", "nginx"), "spec.helm.repo"},
		{"encoded dot-dot out of the allowed path", spec("https://charts.example.com/stable/%2e%2e/incubator", "nginx"), "spec.helm.repo"},
		{"a longer path element", spec("https://charts.example.com/stable-evil", "nginx"), "spec.helm.repo"},
		{"path case matters", spec("https://charts.example.com/STABLE", "nginx"), "spec.helm.repo"},
		{"http instead of https", spec("http://charts.example.com/stable", "nginx"), "spec.helm.repo"},
		{"another port", spec("https://charts.example.com:8443/stable", "nginx"), "spec.helm.repo"},
		{"backslash userinfo", spec(`https://evil.example\@charts.example.com/stable`, "nginx"), "spec.helm.repo"},
		{"chart archive URL elsewhere, no repo", spec("", "https://evil.example/nginx-1.0.0.tgz"), "spec.helm.chart"},
		{"chart archive URL on the allowed path", spec("", "https://charts.example.com/stable/nginx-1.0.0.tgz"), ""},
		{"OCI of another team", spec("oci://registry.example/team-b/nginx", ""), "spec.helm.repo"},
		{"per-target repository elsewhere", spec("https://charts.example.com/stable", "nginx",
			target("https://evil.example/stable", "")), "spec.targets[0].helm.repo"},
		{"per-target chart archive elsewhere", spec("https://charts.example.com/stable", "nginx",
			target("", "https://evil.example/nginx-1.0.0.tgz")), "spec.targets[0].helm.chart"},
		{"per-target userinfo trick", spec("https://charts.example.com/stable", "nginx",
			target("https://charts.example.com@evil.example/stable", "")), "spec.targets[0].helm.repo"},
		{"per-target allowed", spec("https://charts.example.com/stable", "nginx",
			target("https://charts.example.com/stable/other", "")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := set.Check(tc.spec)
			if tc.wantField == "" {
				g.Expect(v).To(BeNil())
				return
			}
			g.Expect(v).NotTo(BeNil())
			g.Expect(v.Field).To(Equal(tc.wantField))
			g.Expect(v.Rule).To(Equal(RuleAllowedHelmRepoPattern))
			g.Expect(v.Message).To(ContainSubstring("helmOp.allowedHelmRepoPatterns of Policy team-a/repos"))
		})
	}
}

func TestChartPatterns(t *testing.T) {
	set := Merge("team-a", []v1alpha1.Policy{helmPolicy("charts", v1alpha1.HelmOpPolicySpec{AllowedChartPatterns: []string{"nginx", "team-a-.*"}})})
	for _, tc := range []struct {
		name      string
		spec      *v1alpha1.HelmOpSpec
		wantField string
	}{
		{"allowed name", spec("https://charts.example.com", "nginx"), ""},
		{"allowed pattern", spec("https://charts.example.com", "team-a-web"), ""},
		{"another chart", spec("https://charts.example.com", "redis"), "spec.helm.chart"},
		{"whole value only", spec("https://charts.example.com", "nginx-evil"), "spec.helm.chart"},
		{"OCI chart name", spec("oci://registry.example/x/nginx:1.0.0", ""), ""},
		{"another OCI chart", spec("oci://registry.example/nginx/redis", ""), "spec.helm.repo"},
		{"archive URL is not a chart name", spec("", "https://charts.example.com/nginx-1.0.0.tgz"), "spec.helm.chart"},
		{"per-target chart", spec("https://charts.example.com", "nginx", target("", "redis")), "spec.targets[0].helm.chart"},
		{"per-target OCI", spec("https://charts.example.com", "nginx", target("oci://registry.example/x/redis", "")), "spec.targets[0].helm.repo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := set.Check(tc.spec)
			if tc.wantField == "" {
				g.Expect(v).To(BeNil())
				return
			}
			g.Expect(v).NotTo(BeNil())
			g.Expect(v.Field).To(Equal(tc.wantField))
			g.Expect(v.Rule).To(Equal(RuleAllowedChartPatterns))
		})
	}
}

func TestNamesAndDefaults(t *testing.T) {
	set := Merge("team-a", []v1alpha1.Policy{
		// Sorted by name: "a-defaults" gives the defaults, both lists add up.
		{ObjectMeta: metav1.ObjectMeta{Name: "b-accounts"}, AllowedServiceAccounts: []string{"deployer"},
			HelmOp: &v1alpha1.HelmOpPolicySpec{DefaultServiceAccount: "ignored", AllowedHelmSecretNames: []string{"other-creds"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "a-defaults"}, RequireServiceAccount: true, AllowedServiceAccounts: []string{"team-a"},
			HelmOp: &v1alpha1.HelmOpPolicySpec{DefaultServiceAccount: "team-a", DefaultHelmSecretName: "creds", AllowedHelmSecretNames: []string{"creds"}}},
	})
	g := NewWithT(t)
	g.Expect(set.Policies).To(Equal([]string{"a-defaults", "b-accounts"}))
	g.Expect(set.Defaults).To(Equal(Defaults{ServiceAccount: "team-a", HelmSecretName: "creds"}))

	check := func(mutate func(*v1alpha1.HelmOpSpec)) *Violation {
		s := spec("https://charts.example.com", "nginx")
		mutate(s)
		set.Defaults.Apply(s)
		return set.Check(s)
	}
	g.Expect(check(func(*v1alpha1.HelmOpSpec) {})).To(BeNil(), "the defaults are allowed")
	g.Expect(check(func(s *v1alpha1.HelmOpSpec) { s.ServiceAccount = "deployer"; s.HelmSecretName = "other-creds" })).To(BeNil())

	v := check(func(s *v1alpha1.HelmOpSpec) { s.ServiceAccount = "cluster-admin" })
	g.Expect(v).NotTo(BeNil())
	g.Expect(v.Field).To(Equal("spec.serviceAccount"))
	g.Expect(v.Rule).To(Equal(RuleAllowedServiceAccounts))
	g.Expect(v.Message).To(ContainSubstring(`"team-a", "deployer"`))

	v = check(func(s *v1alpha1.HelmOpSpec) {
		s.Targets = []v1alpha1.BundleTarget{{Name: "prod", ServiceAccount: "cluster-admin"}}
	})
	g.Expect(v).NotTo(BeNil())
	g.Expect(v.Field).To(Equal("spec.targets[0].serviceAccount"))

	v = check(func(s *v1alpha1.HelmOpSpec) { s.HelmSecretName = "kube-admin-token" })
	g.Expect(v).NotTo(BeNil())
	g.Expect(v.Field).To(Equal("spec.helmSecretName"))
	g.Expect(v.Rule).To(Equal(RuleAllowedHelmSecretNames))

	// Without a default, requireServiceAccount refuses an empty one.
	strict := Merge("team-a", []v1alpha1.Policy{{ObjectMeta: metav1.ObjectMeta{Name: "strict"}, RequireServiceAccount: true}})
	v = strict.Check(spec("https://charts.example.com", "nginx"))
	g.Expect(v).NotTo(BeNil())
	g.Expect(v.Rule).To(Equal(RuleRequireServiceAccount))
	g.Expect(v.Message).To(ContainSubstring("Policy team-a/strict"))
}

func TestNoPolicyAllowsEverythingAndABrokenOneNothing(t *testing.T) {
	g := NewWithT(t)
	var none *Set = Merge("team-a", nil)
	g.Expect(none.Check(spec("https://anywhere.example", "x"))).To(BeNil())

	broken := Merge("team-a", []v1alpha1.Policy{helmPolicy("broken", v1alpha1.HelmOpPolicySpec{AllowedHelmRepoPatterns: []string{"https://(unclosed"}})})
	v := broken.Check(spec("https://(unclosed", "x"))
	g.Expect(v).NotTo(BeNil())
	g.Expect(v.Message).To(ContainSubstring("not a regular expression"))
}
