package downstreamres

import (
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestValidateNamesTheBadEntry(t *testing.T) {
	ok := []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "db"}, {Kind: "configmap", Name: "settings"}}
	cases := []struct {
		name    string
		opts    []v1alpha1.DownstreamResource
		targets []v1alpha1.BundleTarget
		field   string
		message string
	}{
		{"valid, kinds in any case", ok, []v1alpha1.BundleTarget{{DownstreamResources: ok}}, "", ""},
		{"an unknown kind", []v1alpha1.DownstreamResource{{Kind: "Deployment", Name: "x"}}, nil,
			"spec.downstreamResources[0].kind", `unsupported kind "Deployment": use Secret or ConfigMap`},
		{"no name, in a target", ok, []v1alpha1.BundleTarget{{}, {DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Secret"}}}},
			"spec.targets[1].downstreamResources[0].name", "the name of the Secret to copy is required"},
		{"a name that is no object name", []v1alpha1.DownstreamResource{ok[0], {Kind: "Secret", Name: "../other"}}, nil,
			"spec.downstreamResources[1].name", `"../other" is not a valid Secret name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := Validate(v1alpha1.BundleDeploymentOptions{DownstreamResources: tc.opts}, tc.targets)
			if tc.field == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var fe *FieldError
			g.Expect(errors.As(err, &fe)).To(BeTrue(), "%v", err)
			g.Expect(fe.Field).To(Equal(tc.field))
			g.Expect(fe.Message).To(ContainSubstring(tc.message))
		})
	}
}

func TestRefsAreCanonicalAndUnique(t *testing.T) {
	g := NewWithT(t)
	refs, err := Refs([]v1alpha1.DownstreamResource{{Kind: "secret", Name: "a"}, {Kind: "ConfigMap", Name: "a"}, {Kind: "SECRET", Name: "a"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(Equal([]Ref{{KindSecret, "a"}, {KindConfigMap, "a"}}))
	g.Expect(refs[0].String()).To(Equal("Secret/a"))
	_, err = Refs([]v1alpha1.DownstreamResource{{Kind: "Pod", Name: "a"}})
	g.Expect(err).To(MatchError(ContainSubstring("spec.options.downstreamResources[0].kind")))
}

func TestPathNamesTheFirstEntryOfTheSpec(t *testing.T) {
	g := NewWithT(t)
	opts := v1alpha1.BundleDeploymentOptions{DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "a"}}}
	targets := []v1alpha1.BundleTarget{{}, {DownstreamResources: []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "a"}, {Kind: "configMap", Name: "b"}}}}
	g.Expect(Path(opts, targets, Ref{KindSecret, "a"})).To(Equal("spec.downstreamResources[0]"))
	g.Expect(Path(opts, targets, Ref{KindConfigMap, "b"})).To(Equal("spec.targets[1].downstreamResources[1]"))
}

func TestCopyNamesAreValidAndDistinct(t *testing.T) {
	g := NewWithT(t)
	g.Expect(CopyName("db")).To(Equal("downstream-db"))
	long := strings.Repeat("a", 250)
	other := strings.Repeat("a", 249) + "b"
	for _, n := range []string{long, other, strings.Repeat("a.", 126) + "a"} {
		c := CopyName(n)
		g.Expect(validation.IsDNS1123Subdomain(c)).To(BeEmpty(), c)
	}
	g.Expect(CopyName(long)).NotTo(Equal(CopyName(other)))
}
