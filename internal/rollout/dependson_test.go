package rollout

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWaits(t *testing.T) {
	bundles := []BundleOnCluster{
		{Name: "db", Labels: map[string]string{"tier": "data"}, State: "Ready"},
		{Name: "cache", Labels: map[string]string{"tier": "data"}, State: "NotReady"},
		{Name: "crds", Labels: map[string]string{"tier": "base"}, State: "Modified"},
		{Name: "elsewhere", Labels: map[string]string{"tier": "edge"}},
		{Name: "app", Labels: map[string]string{"tier": "data"}, State: "WaitApplied"},
	}
	sel := func(tier string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"tier": tier}}
	}
	tests := []struct {
		name string
		deps []Dependency
		want []string
	}{
		{"no dependencies", nil, nil},
		{"by name, ready", []Dependency{{Name: "db"}}, nil},
		{"by name, not ready", []Dependency{{Name: "cache"}}, []string{"cache (NotReady) not Ready"}},
		{"accepted states", []Dependency{{Name: "crds", AcceptedStates: []string{"Ready", "Modified"}}}, nil},
		{"a state not accepted", []Dependency{{Name: "crds"}}, []string{"crds (Modified) not Ready"}},
		{"by selector: every match must be accepted, never itself",
			[]Dependency{{Selector: sel("data")}}, []string{"cache (NotReady) not Ready"}},
		{"name and selector must both match", []Dependency{{Name: "db", Selector: sel("base")}},
			[]string{"no Bundle matches name db and selector tier=base"}},
		{"no such Bundle", []Dependency{{Name: "nope"}}, []string{"no Bundle matches name nope"}},
		{"not deployed on this cluster", []Dependency{{Name: "elsewhere"}},
			[]string{"elsewhere (not deployed on this cluster) not Ready"}},
		{"an empty entry is skipped", []Dependency{{}}, nil},
		{"several", []Dependency{{Name: "db"}, {Name: "cache"}, {Name: "nope"}},
			[]string{"cache (NotReady) not Ready", "no Bundle matches name nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := Waits("app", tt.deps, bundles)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestWaitsInvalidSelector(t *testing.T) {
	g := NewWithT(t)
	_, err := Waits("app", []Dependency{{Name: "db"}, {Selector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}}}, nil)
	g.Expect(err).To(MatchError(`spec.dependsOn[1].selector: "Near" is not a valid label selector operator`))
}
