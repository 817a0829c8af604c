package targeting

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func cluster(name string, lbls map[string]string) v1alpha1.Cluster {
	return v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ws", Labels: lbls}}
}

func clusterGroup(name string, lbls map[string]string, sel *metav1.LabelSelector) v1alpha1.ClusterGroup {
	return v1alpha1.ClusterGroup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ws", Labels: lbls},
		Spec: v1alpha1.ClusterGroupSpec{Selector: sel}}
}

func labelsSel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

var (
	clusters = []v1alpha1.Cluster{
		cluster("dev-1", map[string]string{"env": "dev", "region": "eu"}),
		cluster("dev-2", map[string]string{"env": "dev", "region": "us"}),
		cluster("prod-1", map[string]string{"env": "prod", "region": "eu"}),
		cluster("bare", nil),
	}
	groups = []v1alpha1.ClusterGroup{
		clusterGroup("dev", map[string]string{"tier": "test"}, labelsSel("env", "dev")),
		clusterGroup("eu", map[string]string{"geo": "europe"}, labelsSel("region", "eu")),
		clusterGroup("all", nil, &metav1.LabelSelector{}),
		clusterGroup("none", map[string]string{"tier": "test"}, nil),
		clusterGroup("broken", map[string]string{"tier": "test"}, &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Bogus"}}}),
	}
)

func TestPlaceMatrix(t *testing.T) {
	tests := []struct {
		name    string
		targets []v1alpha1.BundleTarget
		want    map[string]string // cluster -> target name
	}{
		{"no targets match nothing", nil, map[string]string{}},
		{"a target without criteria matches nothing", []v1alpha1.BundleTarget{{Name: "empty"}}, map[string]string{}},
		{"clusterName", []v1alpha1.BundleTarget{{Name: "one", ClusterName: "dev-2"}}, map[string]string{"dev-2": "one"}},
		{"clusterName of an unknown cluster", []v1alpha1.BundleTarget{{ClusterName: "nope"}}, map[string]string{}},
		{"clusterSelector {} matches every cluster", []v1alpha1.BundleTarget{{ClusterSelector: &metav1.LabelSelector{}}},
			map[string]string{"dev-1": "target000", "dev-2": "target000", "prod-1": "target000", "bare": "target000"}},
		{"clusterSelector by label", []v1alpha1.BundleTarget{{Name: "p", ClusterSelector: labelsSel("env", "prod")}},
			map[string]string{"prod-1": "p"}},
		{"clusterSelector with an expression", []v1alpha1.BundleTarget{{Name: "x", ClusterSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}}}}}},
			map[string]string{"dev-1": "x", "dev-2": "x", "bare": "x"}},
		{"clusterGroup", []v1alpha1.BundleTarget{{Name: "g", ClusterGroup: "dev"}}, map[string]string{"dev-1": "g", "dev-2": "g"}},
		{"clusterGroup with {} selector", []v1alpha1.BundleTarget{{Name: "g", ClusterGroup: "all"}},
			map[string]string{"dev-1": "g", "dev-2": "g", "prod-1": "g", "bare": "g"}},
		{"clusterGroup without selector selects nothing", []v1alpha1.BundleTarget{{ClusterGroup: "none"}}, map[string]string{}},
		{"clusterGroup with a broken selector selects nothing", []v1alpha1.BundleTarget{{ClusterGroup: "broken"}}, map[string]string{}},
		{"unknown clusterGroup", []v1alpha1.BundleTarget{{ClusterGroup: "missing"}}, map[string]string{}},
		{"clusterGroupSelector", []v1alpha1.BundleTarget{{Name: "geo", ClusterGroupSelector: labelsSel("geo", "europe")}},
			map[string]string{"dev-1": "geo", "prod-1": "geo"}},
		{"clusterGroupSelector over several groups", []v1alpha1.BundleTarget{{Name: "t", ClusterGroupSelector: labelsSel("tier", "test")}},
			map[string]string{"dev-1": "t", "dev-2": "t"}},
		{"clusterGroupSelector {} matches members of any group", []v1alpha1.BundleTarget{{Name: "t", ClusterGroupSelector: &metav1.LabelSelector{}}},
			map[string]string{"dev-1": "t", "dev-2": "t", "prod-1": "t", "bare": "t"}},
		{"every criterion must match: name and selector", []v1alpha1.BundleTarget{{Name: "t", ClusterName: "dev-1", ClusterSelector: labelsSel("env", "prod")}},
			map[string]string{}},
		{"every criterion must match: group and selector", []v1alpha1.BundleTarget{{Name: "t", ClusterGroup: "dev", ClusterSelector: labelsSel("region", "eu")}},
			map[string]string{"dev-1": "t"}},
		{"group name and group selector must hold for the same group", []v1alpha1.BundleTarget{{Name: "t", ClusterGroup: "eu", ClusterGroupSelector: labelsSel("tier", "test")}},
			map[string]string{}},
		{"group name and group selector on one group", []v1alpha1.BundleTarget{{Name: "t", ClusterGroup: "dev", ClusterGroupSelector: labelsSel("tier", "test")}},
			map[string]string{"dev-1": "t", "dev-2": "t"}},
		{"all four criteria", []v1alpha1.BundleTarget{{Name: "t", ClusterName: "dev-1", ClusterSelector: labelsSel("region", "eu"), ClusterGroup: "dev", ClusterGroupSelector: labelsSel("tier", "test")}},
			map[string]string{"dev-1": "t"}},
		{"first matching target wins", []v1alpha1.BundleTarget{
			{Name: "eu", ClusterSelector: labelsSel("region", "eu")},
			{Name: "dev", ClusterSelector: labelsSel("env", "dev")},
			{Name: "rest", ClusterSelector: &metav1.LabelSelector{}},
		}, map[string]string{"dev-1": "eu", "prod-1": "eu", "dev-2": "dev", "bare": "rest"}},
		{"doNotDeploy excludes before a later match", []v1alpha1.BundleTarget{
			{Name: "skip-prod", ClusterSelector: labelsSel("env", "prod"), DoNotDeploy: true},
			{Name: "all", ClusterSelector: &metav1.LabelSelector{}},
		}, map[string]string{"dev-1": "all", "dev-2": "all", "bare": "all"}},
		{"doNotDeploy after a match does nothing", []v1alpha1.BundleTarget{
			{Name: "all", ClusterSelector: &metav1.LabelSelector{}},
			{Name: "skip-prod", ClusterSelector: labelsSel("env", "prod"), DoNotDeploy: true},
		}, map[string]string{"dev-1": "all", "dev-2": "all", "prod-1": "all", "bare": "all"}},
		{"unnamed targets are named by position", []v1alpha1.BundleTarget{{ClusterName: "nope"}, {ClusterName: "bare"}},
			map[string]string{"bare": "target001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := &v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{Targets: tt.targets}}
			got, err := Place(b, clusters, groups)
			g.Expect(err).NotTo(HaveOccurred())
			m := map[string]string{}
			for _, p := range got {
				m[p.Cluster.Name] = p.TargetName
			}
			g.Expect(m).To(Equal(tt.want))
			for i := 1; i < len(got); i++ {
				g.Expect(got[i-1].Cluster.Name < got[i].Cluster.Name).To(BeTrue(), "sorted by cluster name")
			}
		})
	}
}

func TestPlaceInvalidTarget(t *testing.T) {
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Sometimes"}}}
	tests := []struct {
		name  string
		t     v1alpha1.BundleTarget
		field string
	}{
		{"clusterSelector", v1alpha1.BundleTarget{Name: "bad", ClusterSelector: bad}, "clusterSelector"},
		{"clusterGroupSelector", v1alpha1.BundleTarget{ClusterGroupSelector: bad}, "clusterGroupSelector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := &v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{Targets: []v1alpha1.BundleTarget{{ClusterName: "dev-1"}, tt.t}}}
			_, err := Place(b, clusters, groups)
			var ite *InvalidTargetError
			g.Expect(errors.As(err, &ite)).To(BeTrue())
			g.Expect(ite.Index).To(Equal(1))
			g.Expect(ite.Field).To(Equal(tt.field))
			g.Expect(err.Error()).To(ContainSubstring("spec.targets[1]"))
			g.Expect(err.Error()).To(ContainSubstring(tt.field))
		})
	}
}

func values(m map[string]any) *v1alpha1.GenericMap { return &v1alpha1.GenericMap{Data: m} }

func TestMergeOptions(t *testing.T) {
	base := v1alpha1.BundleDeploymentOptions{
		Namespace: "app", DefaultNamespace: "def",
		Helm: &v1alpha1.HelmOptions{
			Repo: "https://r", Chart: "c", Version: "1.2.3", ReleaseName: "rel", TimeoutSeconds: 30,
			Values: values(map[string]any{"color": "gray", "data": map[string]any{"a": "1", "b": "2"}, "list": []any{"x"}}),
		},
	}
	tests := []struct {
		name   string
		target v1alpha1.BundleTarget
		check  func(g Gomega, o v1alpha1.BundleDeploymentOptions)
	}{
		{"no overrides keeps the bundle's options", v1alpha1.BundleTarget{}, func(g Gomega, o v1alpha1.BundleDeploymentOptions) {
			g.Expect(o).To(Equal(*base.DeepCopy()))
		}},
		{"values deep-merged, scalars and lists replaced", v1alpha1.BundleTarget{Helm: &v1alpha1.HelmOptions{
			Values: values(map[string]any{"color": "blue", "data": map[string]any{"b": "3", "c": "4"}, "list": []any{"y", "z"}})}},
			func(g Gomega, o v1alpha1.BundleDeploymentOptions) {
				g.Expect(o.Helm.Values.Data).To(Equal(map[string]any{
					"color": "blue", "data": map[string]any{"a": "1", "b": "3", "c": "4"}, "list": []any{"y", "z"},
				}))
				g.Expect(o.Helm.Version).To(Equal("1.2.3"), "the bundle's exact version stays")
			}},
		{"a map replaced by a scalar", v1alpha1.BundleTarget{Helm: &v1alpha1.HelmOptions{Values: values(map[string]any{"data": "flat"})}},
			func(g Gomega, o v1alpha1.BundleDeploymentOptions) {
				g.Expect(o.Helm.Values.Data["data"]).To(Equal("flat"))
			}},
		{"namespaces replaced when set", v1alpha1.BundleTarget{Namespace: "other", DefaultNamespace: "d2"},
			func(g Gomega, o v1alpha1.BundleDeploymentOptions) {
				g.Expect(o.Namespace).To(Equal("other"))
				g.Expect(o.DefaultNamespace).To(Equal("d2"))
			}},
		{"helm fields replaced when set, a resolved target version kept", v1alpha1.BundleTarget{Helm: &v1alpha1.HelmOptions{
			Version: "1.0.0", ReleaseName: "other", TimeoutSeconds: 60, MaxHistory: 2, Atomic: true, Force: true}},
			func(g Gomega, o v1alpha1.BundleDeploymentOptions) {
				g.Expect(o.Helm.Version).To(Equal("1.0.0"))
				g.Expect(o.Helm.ReleaseName).To(Equal("other"))
				g.Expect(o.Helm.TimeoutSeconds).To(Equal(60))
				g.Expect(o.Helm.MaxHistory).To(Equal(2))
				g.Expect(o.Helm.Atomic && o.Helm.Force).To(BeTrue())
				g.Expect(o.Helm.Chart).To(Equal("c"))
				g.Expect(o.Helm.Values.Data["color"]).To(Equal("gray"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := base.DeepCopy()
			got := MergeOptions(base, tt.target)
			tt.check(g, got)
			g.Expect(base).To(Equal(*before), "the bundle's options are not modified")
		})
	}
}

func TestMergeOptionsWithoutBundleHelm(t *testing.T) {
	g := NewWithT(t)
	got := MergeOptions(v1alpha1.BundleDeploymentOptions{}, v1alpha1.BundleTarget{Helm: &v1alpha1.HelmOptions{Values: values(map[string]any{"a": "b"})}})
	g.Expect(got.Helm.Values.Data).To(Equal(map[string]any{"a": "b"}))
}

func TestMergeValues(t *testing.T) {
	tests := []struct {
		name           string
		base, override map[string]any
		want           map[string]any
	}{
		{"both nil", nil, nil, map[string]any{}},
		{"override only", nil, map[string]any{"a": "1"}, map[string]any{"a": "1"}},
		{"base only", map[string]any{"a": "1"}, nil, map[string]any{"a": "1"}},
		{"nested", map[string]any{"a": map[string]any{"b": map[string]any{"c": "1", "d": "2"}}},
			map[string]any{"a": map[string]any{"b": map[string]any{"d": "3"}}},
			map[string]any{"a": map[string]any{"b": map[string]any{"c": "1", "d": "3"}}}},
		{"null replaces", map[string]any{"a": "1"}, map[string]any{"a": nil}, map[string]any{"a": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(MergeValues(tt.base, tt.override)).To(Equal(tt.want))
		})
	}
}

func TestDeploymentID(t *testing.T) {
	opts := func(mut func(o *v1alpha1.BundleDeploymentOptions)) v1alpha1.BundleDeploymentOptions {
		o := v1alpha1.BundleDeploymentOptions{Namespace: "app", Helm: &v1alpha1.HelmOptions{
			Repo: "https://r", Chart: "c", Version: "1.2.3",
			Values: values(map[string]any{"a": "1", "b": map[string]any{"c": float64(2), "d": true}})}}
		if mut != nil {
			mut(&o)
		}
		return o
	}
	ref := DeploymentID(opts(nil), &v1alpha1.BundleHelmOptions{SecretName: "s"})
	NewWithT(t).Expect(ref).To(MatchRegexp(`^s-[0-9a-f]{64}$`))

	tests := []struct {
		name  string
		opts  v1alpha1.BundleDeploymentOptions
		chart *v1alpha1.BundleHelmOptions
		same  bool
	}{
		{"same inputs", opts(nil), &v1alpha1.BundleHelmOptions{SecretName: "s"}, true},
		{"same values built in another order", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			o.Helm.Values = values(map[string]any{"b": map[string]any{"d": true, "c": float64(2)}, "a": "1"})
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, true},
		{"correctDrift does not redeploy", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			o.CorrectDrift = &v1alpha1.CorrectDrift{Enabled: true}
			o.KeepResources = true
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, true},
		{"createNamespace default equals explicit true", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			t := true
			o.CreateNamespace = &t
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, true},
		{"version", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.Version = "1.2.4" }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"chart", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.Chart = "d" }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"repo", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.Repo = "https://q" }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"nested value", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			o.Helm.Values.Data["b"].(map[string]any)["c"] = float64(3)
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"namespace", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Namespace = "x" }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"release name", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.ReleaseName = "r" }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"helm flag", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.Atomic = true }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"insecure flag", opts(nil), &v1alpha1.BundleHelmOptions{SecretName: "s", InsecureSkipTLSVerify: true}, false},
		{"no chart options", opts(nil), nil, false},
		{"diff does not redeploy", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			o.Diff = &v1alpha1.DiffOptions{ComparePatches: []v1alpha1.ComparePatch{{Kind: "ConfigMap"}}}
			o.DeleteCRDResources = true
			o.DownstreamResources = []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "s"}}
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, true},
		{"forceSyncGeneration raised", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.ForceSyncGeneration = 1 }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"disableDNS", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.Helm.DisableDNS = true }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"namespaceLabels", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.NamespaceLabels = map[string]string{"a": "b"} }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"namespaceAnnotations", opts(func(o *v1alpha1.BundleDeploymentOptions) { o.NamespaceAnnotations = map[string]string{"a": "b"} }), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
		{"ignore", opts(func(o *v1alpha1.BundleDeploymentOptions) {
			o.Ignore = &v1alpha1.IgnoreOptions{Conditions: []map[string]string{{"type": "Ready"}}}
		}), &v1alpha1.BundleHelmOptions{SecretName: "s"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := DeploymentID(tt.opts, tt.chart)
			if tt.same {
				g.Expect(got).To(Equal(ref))
			} else {
				g.Expect(got).NotTo(Equal(ref))
			}
		})
	}
}

func TestInGroup(t *testing.T) {
	tests := []struct {
		group   string
		cluster string
		want    bool
	}{
		{"dev", "dev-1", true},
		{"dev", "prod-1", false},
		{"all", "bare", true},
		{"none", "dev-1", false},
		{"broken", "dev-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.group+"/"+tt.cluster, func(t *testing.T) {
			var g *v1alpha1.ClusterGroup
			for i := range groups {
				if groups[i].Name == tt.group {
					g = &groups[i]
				}
			}
			var c *v1alpha1.Cluster
			for i := range clusters {
				if clusters[i].Name == tt.cluster {
					c = &clusters[i]
				}
			}
			NewWithT(t).Expect(InGroup(g, c)).To(Equal(tt.want))
		})
	}
}

func TestPlaceModesRestrictionsAndDisplayName(t *testing.T) {
	vals := func(k, v string) *v1alpha1.HelmOptions {
		return &v1alpha1.HelmOptions{Values: values(map[string]any{k: v})}
	}
	named := append([]v1alpha1.Cluster{}, clusters...)
	named = append(named, cluster("c-7f3a", map[string]string{DisplayNameLabel: "shop", "env": "prod"}))
	targets := []v1alpha1.BundleTarget{
		{Name: "all", ClusterSelector: &metav1.LabelSelector{}, Helm: vals("a", "all"), NamespaceLabels: map[string]string{"t": "all"}},
		{Name: "eu", ClusterSelector: labelsSel("region", "eu"), Helm: vals("b", "eu"), NamespaceLabels: map[string]string{"t": "eu", "eu": "y"}},
		{Name: "shop", ClusterName: "shop", Helm: vals("a", "shop")},
		{Name: "no-us", ClusterSelector: labelsSel("region", "us"), DoNotDeploy: true},
	}
	type got struct {
		target string
		values map[string]any
		labels map[string]string
	}
	tests := []struct {
		name         string
		mode         v1alpha1.TargetCustomizationMode
		restrictions []v1alpha1.BundleTargetRestriction
		want         map[string]got
	}{
		{"FirstMatch (empty) takes the first target's options", "", nil, map[string]got{
			"dev-1":  {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			"dev-2":  {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			"prod-1": {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			"bare":   {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			"c-7f3a": {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
		}},
		{"AllMatches merges in order; any doNotDeploy excludes; clusterName matches the display name", v1alpha1.AllMatches, nil, map[string]got{
			"dev-1":  {"all", map[string]any{"a": "all", "b": "eu"}, map[string]string{"t": "eu", "eu": "y"}},
			"prod-1": {"all", map[string]any{"a": "all", "b": "eu"}, map[string]string{"t": "eu", "eu": "y"}},
			"bare":   {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			"c-7f3a": {"all", map[string]any{"a": "shop"}, map[string]string{"t": "all"}},
		}},
		{"targetRestrictions keep only the clusters one of them matches", v1alpha1.FirstMatch,
			[]v1alpha1.BundleTargetRestriction{{ClusterGroup: "eu"}, {ClusterName: "bare"}}, map[string]got{
				"dev-1":  {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
				"prod-1": {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
				"bare":   {"all", map[string]any{"a": "all"}, map[string]string{"t": "all"}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := &v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{Targets: targets, TargetCustomizationMode: tt.mode, TargetRestrictions: tt.restrictions}}
			placements, err := Place(b, named, groups)
			g.Expect(err).NotTo(HaveOccurred())
			m := map[string]got{}
			for _, p := range placements {
				g.Expect(p.Err).NotTo(HaveOccurred())
				m[p.Cluster.Name] = got{p.TargetName, p.Options.Helm.Values.Data, p.Options.NamespaceLabels}
			}
			g.Expect(m).To(Equal(tt.want))
		})
	}
}

func TestPlaceRejectsAnUnknownMode(t *testing.T) {
	g := NewWithT(t)
	b := &v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{Targets: []v1alpha1.BundleTarget{{ClusterName: "dev-1"}}, TargetCustomizationMode: "Sometimes"}}
	_, err := Place(b, clusters, groups)
	var me *InvalidModeError
	g.Expect(errors.As(err, &me)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("spec.targetCustomizationMode"))
	g.Expect(err.Error()).To(ContainSubstring("FirstMatch"))
}

// A values template that fails for one cluster makes that cluster's placement carry the error;
// the other clusters are placed with their values computed.
func TestPlaceComputesValuesPerCluster(t *testing.T) {
	g := NewWithT(t)
	b := &v1alpha1.Bundle{Spec: v1alpha1.BundleSpec{
		BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{Helm: &v1alpha1.HelmOptions{
			Values: values(map[string]any{"name": "${ .ClusterName }", "region": "${ .ClusterLabels.region }"})}},
		Targets: []v1alpha1.BundleTarget{{ClusterSelector: &metav1.LabelSelector{}}},
	}}
	placements, err := Place(b, clusters, groups)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(placements).To(HaveLen(4))
	for _, p := range placements {
		if p.Cluster.Name == "bare" {
			g.Expect(p.Err).To(MatchError(ContainSubstring("cluster bare: helm.values.region")))
			continue
		}
		g.Expect(p.Err).NotTo(HaveOccurred())
		g.Expect(p.Options.Helm.Values.Data).To(HaveKeyWithValue("name", p.Cluster.Name))
		g.Expect(p.Options.Helm.Values.Data).To(HaveKeyWithValue("region", p.Cluster.Labels["region"]))
	}
	g.Expect(b.Spec.Helm.Values.Data).To(HaveKeyWithValue("name", "${ .ClusterName }"), "the Bundle is not modified")
}

func TestMergeOptionsFleetOptions(t *testing.T) {
	g := NewWithT(t)
	yes := true
	no := false
	base := v1alpha1.BundleDeploymentOptions{
		ServiceAccount: "base-sa", CreateNamespace: &yes, ForceSyncGeneration: 2,
		NamespaceLabels:      map[string]string{"a": "1", "b": "1"},
		NamespaceAnnotations: map[string]string{"x": "1"},
		Diff:                 &v1alpha1.DiffOptions{ComparePatches: []v1alpha1.ComparePatch{{Kind: "ConfigMap", Name: "a"}}},
		Ignore:               &v1alpha1.IgnoreOptions{Conditions: []map[string]string{{"type": "Ready"}}},
		DownstreamResources:  []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "s"}},
		Helm: &v1alpha1.HelmOptions{TemplateValues: map[string]string{"k": "base", "j": "base"},
			ValuesFrom: []v1alpha1.ValuesFrom{{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "v"}}}},
	}
	target := v1alpha1.BundleTarget{
		ServiceAccount: "t-sa", CreateNamespace: &no, ForceSyncGeneration: 5,
		KeepResources: true, DeleteNamespace: true, DeleteCRDResources: true,
		CorrectDrift:         &v1alpha1.CorrectDrift{Enabled: true},
		NamespaceLabels:      map[string]string{"b": "2"},
		NamespaceAnnotations: map[string]string{"y": "2"},
		Diff:                 &v1alpha1.DiffOptions{ComparePatches: []v1alpha1.ComparePatch{{Kind: "ConfigMap", Name: "a"}, {Kind: "Secret"}}},
		Ignore:               &v1alpha1.IgnoreOptions{Conditions: []map[string]string{{"type": "Ready"}, {"type": "Progressing"}}},
		DownstreamResources:  []v1alpha1.DownstreamResource{{Kind: "Secret", Name: "s"}, {Kind: "ConfigMap", Name: "c"}},
		Helm: &v1alpha1.HelmOptions{TemplateValues: map[string]string{"k": "t"}, DisableDNS: true, DisablePreProcess: true,
			ValuesFrom: []v1alpha1.ValuesFrom{{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "v"}}, {ConfigMapKeyRef: &v1alpha1.ConfigMapKeySelector{Name: "w"}}}},
	}
	before := base.DeepCopy()
	o := MergeOptions(base, target)
	g.Expect(&base).To(Equal(before), "the base is not modified")
	g.Expect(o.ServiceAccount).To(Equal("t-sa"))
	g.Expect(*o.CreateNamespace).To(BeFalse())
	g.Expect(o.ForceSyncGeneration).To(Equal(int64(5)))
	g.Expect(o.KeepResources && o.DeleteNamespace && o.DeleteCRDResources).To(BeTrue())
	g.Expect(o.CorrectDrift.Enabled).To(BeTrue())
	g.Expect(o.NamespaceLabels).To(Equal(map[string]string{"a": "1", "b": "2"}))
	g.Expect(o.NamespaceAnnotations).To(Equal(map[string]string{"x": "1", "y": "2"}))
	g.Expect(o.Diff.ComparePatches).To(Equal([]v1alpha1.ComparePatch{{Kind: "ConfigMap", Name: "a"}, {Kind: "Secret"}}))
	g.Expect(o.Ignore.Conditions).To(Equal([]map[string]string{{"type": "Ready"}, {"type": "Progressing"}}))
	g.Expect(o.DownstreamResources).To(Equal([]v1alpha1.DownstreamResource{{Kind: "Secret", Name: "s"}, {Kind: "ConfigMap", Name: "c"}}))
	g.Expect(o.Helm.TemplateValues).To(Equal(map[string]string{"k": "t", "j": "base"}))
	g.Expect(o.Helm.ValuesFrom).To(HaveLen(2))
	g.Expect(o.Helm.DisableDNS && o.Helm.DisablePreProcess).To(BeTrue())

	// A target that sets nothing keeps everything, and a zero forceSyncGeneration does not lower it.
	g.Expect(MergeOptions(base, v1alpha1.BundleTarget{})).To(Equal(base))
}
