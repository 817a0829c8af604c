package chartversion

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func cands(versions ...string) []Candidate {
	out := make([]Candidate, len(versions))
	for i, v := range versions {
		out[i] = Candidate{Version: v}
	}
	return out
}

func TestChoose(t *testing.T) {
	alpine := cands("0.1.0", "0.2.0")
	cases := []struct {
		name       string
		candidates []Candidate
		constraint string
		want       string
		rejected   []Rejection
		wantErr    string
	}{
		{name: "empty is newest stable", candidates: alpine, constraint: "", want: "0.2.0"},
		{name: "star is newest stable", candidates: alpine, constraint: "*", want: "0.2.0"},
		{name: "wildcard patch", candidates: alpine, constraint: "0.2.x", want: "0.2.0"},
		{name: "greater than", candidates: alpine, constraint: "> 0.1", want: "0.2.0"},
		{name: "wildcard minor", candidates: alpine, constraint: "0.x.x", want: "0.2.0"},
		{name: "exact older", candidates: alpine, constraint: "0.1.0", want: "0.1.0",
			rejected: []Rejection{{"0.2.0", "not the exact version asked for"}}},
		{name: "no match", candidates: alpine, constraint: "0.3.x", wantErr: `no version matches "0.3.x"; newest: 0.2.0, 0.1.0`},
		{name: "improper constraint", candidates: alpine, constraint: "foo", wantErr: `improper constraint: "foo"`},
		{name: "prereleases skipped for star", candidates: cands("1.0.0", "1.1.0-rc.1"), constraint: "*", want: "1.0.0",
			rejected: []Rejection{{"1.1.0-rc.1", "prerelease"}}},
		{name: "prereleases skipped by a constraint without one", candidates: cands("1.0.0", "1.1.0-rc.1"), constraint: "1.x", want: "1.0.0",
			rejected: []Rejection{{"1.1.0-rc.1", "prerelease"}}},
		{name: "prerelease named by the constraint", candidates: cands("1.0.0", "1.1.0-rc.1"), constraint: ">= 1.1.0-0", want: "1.1.0-rc.1"},
		{name: "exact prerelease", candidates: cands("1.0.0", "1.1.0-rc.1"), constraint: "1.1.0-rc.1", want: "1.1.0-rc.1"},
		{name: "v prefix published", candidates: cands("v0.1.0", "v0.3.0"), constraint: "0.x", want: "v0.3.0"},
		{name: "v prefix asked, plain published", candidates: cands("1.2.3"), constraint: "v1.2.3", want: "1.2.3"},
		{name: "plain asked, v published", candidates: cands("v1.2.3"), constraint: "1.2.3", want: "v1.2.3"},
		{name: "build metadata kept", candidates: cands("0.1.0", "0.2.0+up1.0"), constraint: "0.2.x", want: "0.2.0+up1.0"},
		{name: "outside constraint explained", candidates: cands("1.0.0", "2.0.0", "2.1.0"), constraint: "1.x", want: "1.0.0",
			rejected: []Rejection{{"2.1.0", `outside constraint "1.x"`}, {"2.0.0", `outside constraint "1.x"`}}},
		{name: "unparseable reported", candidates: cands("1.0.0", "latest"), constraint: "", want: "1.0.0",
			rejected: []Rejection{{"latest", "not a semantic version"}}},
		{name: "exact wins over a newer match", candidates: cands("1.2.3", "1.2.4"), constraint: "1.2.3", want: "1.2.3",
			rejected: []Rejection{{"1.2.4", "not the exact version asked for"}}},
		{name: "literal wins over v-prefixed twin", candidates: cands("1.2.3", "v1.2.3"), constraint: "v1.2.3", want: "v1.2.3",
			rejected: []Rejection{{"1.2.3", "not the exact version asked for"}}},
		{name: "exact version matches build metadata", candidates: cands("0.1.0", "0.2.0+up1.0"), constraint: "0.2.0", want: "0.2.0+up1.0"},
		{name: "exact build metadata", candidates: cands("0.2.0+up1.0", "0.2.0+up2.0"), constraint: "0.2.0+up1.0", want: "0.2.0+up1.0",
			rejected: []Rejection{{"0.2.0+up2.0", "not the exact version asked for"}}},
		{name: "exact v-prefixed build metadata", candidates: cands("0.1.0", "v0.2.0+up1.0"), constraint: "0.2.0+up1.0", want: "v0.2.0+up1.0"},
		{name: "hyphen range is no prerelease", candidates: cands("1.0.0", "1.5.0-rc.1", "3.0.0"), constraint: "1 - 2", want: "1.0.0",
			rejected: []Rejection{{"3.0.0", `outside constraint "1 - 2"`}, {"1.5.0-rc.1", "prerelease"}}},
		{name: "prerelease outside a prerelease constraint", candidates: cands("1.0.0", "2.0.0-rc.1"), constraint: "^1.0.0-0", want: "1.0.0",
			rejected: []Rejection{{"2.0.0-rc.1", `outside constraint "^1.0.0-0"`}}},
		{name: "only prereleases", candidates: cands("1.0.0-rc.1", "1.0.0-rc.2"), constraint: "", wantErr: `no version matches "*"; newest: 1.0.0-rc.2, 1.0.0-rc.1`},
		{name: "newest five listed", candidates: cands("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "bad"), constraint: "2.x",
			wantErr: `no version matches "2.x"; newest: 1.5.0, 1.4.0, 1.3.0, 1.2.0, 1.1.0`},
		{name: "unparseable named exactly", candidates: cands("1.0.0", "latest"), constraint: "latest", want: "latest"},
		{name: "deprecated stays eligible", candidates: []Candidate{{Version: "1.0.0"}, {Version: "1.1.0", Deprecated: true}}, constraint: "1.x", want: "1.1.0"},
		{name: "spaces around the constraint", candidates: alpine, constraint: " 0.1.0 ", want: "0.1.0",
			rejected: []Rejection{{"0.2.0", "not the exact version asked for"}}},
		{name: "nothing published", candidates: nil, constraint: "", wantErr: `no version matches "*"; no versions are published`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			res, err := Choose(tc.candidates, tc.constraint)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(tc.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Chosen.Version).To(Equal(tc.want))
			if tc.rejected == nil {
				tc.rejected = []Rejection{}
			}
			g.Expect(res.Rejected).To(Equal(tc.rejected))
		})
	}
}

func TestChooseBreaksTiesByCreated(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	res, err := Choose([]Candidate{
		{Version: "1.0.0", Created: now.Add(-time.Hour), Digest: "old"},
		{Version: "1.0.0", Created: now, Digest: "new"},
	}, "1.x")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Chosen.Digest).To(Equal("new"))
}

func TestChooseBreaksBuildMetadataTiesByCreated(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	res, err := Choose([]Candidate{
		{Version: "0.2.0+up2.0", Created: now.Add(-time.Hour)},
		{Version: "0.2.0+up1.0", Created: now},
		{Version: "v0.2.0", Created: now.Add(-2 * time.Hour)},
	}, "0.2.x")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Chosen.Version).To(Equal("0.2.0+up1.0"))
	g.Expect(res.Rejected).To(BeEmpty())
}

func TestErrorTypes(t *testing.T) {
	g := NewWithT(t)
	_, err := Choose(cands("1.0.0"), ">>>1")
	var ic *InvalidConstraintError
	g.Expect(errors.As(err, &ic)).To(BeTrue())
	_, err = Choose(cands("1.0.0"), "2.x")
	var nm *NoMatchError
	g.Expect(errors.As(err, &nm)).To(BeTrue())
	g.Expect(nm.Newest).To(Equal([]string{"1.0.0"}))
}

func TestIsStatic(t *testing.T) {
	for v, want := range map[string]bool{
		"1.2.3": true, "v1.2.3": true, "1.2.3-rc.1": true, "0.2.0+up1.0": true,
		"": false, "*": false, "1.x": false, "0.2.x": false, "~1.2": false, "^1": false, ">= 1": false, "1.2": false, "foo": false, "1.2.3 - 2": false, "v1.x": false, "=1.2.3": false, "01.2.3": false,
	} {
		if got := IsStatic(v); got != want {
			t.Errorf("IsStatic(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestChooseReportsTheLatestStableVersion(t *testing.T) {
	for _, tc := range []struct {
		candidates []Candidate
		constraint string
		chosen     string
		latest     string
	}{
		{cands("1.3.0", "1.3.9", "1.4.2"), "~1.3", "1.3.9", "1.4.2"},
		{cands("1.3.9", "1.4.2", "1.5.0-rc.1"), "~1.3", "1.3.9", "1.4.2"},
		{cands("1.3.9", "1.4.2"), "", "1.4.2", "1.4.2"},
		{cands("1.3.9", "1.4.2"), "1.3.9", "1.3.9", "1.4.2"},
		{cands("1.0.0-rc.1", "1.0.0-rc.2"), ">= 1.0.0-0", "1.0.0-rc.2", ""},
		{cands("1.0.0", "latest"), "latest", "latest", "1.0.0"},
	} {
		res, err := Choose(tc.candidates, tc.constraint)
		if err != nil || res.Chosen.Version != tc.chosen || res.Latest != tc.latest {
			t.Errorf("Choose(%v, %q) = %q latest %q, %v; want %q latest %q", tc.candidates, tc.constraint, res.Chosen.Version, res.Latest, err, tc.chosen, tc.latest)
		}
	}
}
