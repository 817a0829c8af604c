package releasestate

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestOwns(t *testing.T) {
	me := Claim{Namespace: "cluster-ws-dev", Name: "b"}
	recorded := me
	recorded.Recorded = true
	cases := []struct {
		name  string
		marks map[string]string
		claim Claim
		want  bool
	}{
		{"its own marks", OwnerMarks(me), me, true},
		{"another BundleDeployment's", OwnerMarks(Claim{Namespace: "cluster-ws-dev", Name: "a"}), me, false},
		{"the same name in another cluster namespace", OwnerMarks(Claim{Namespace: "cluster-other-dev", Name: "b"}), me, false},
		{"marks of another owner win over a recorded status", OwnerMarks(Claim{Namespace: "cluster-ws-dev", Name: "a"}), recorded, false},
		{"Fleet's mark naming it", map[string]string{BundleIDAnnotation: "b"}, me, true},
		{"Fleet's mark naming another", map[string]string{BundleIDAnnotation: "a"}, recorded, false},
		{"unmarked, recorded in its status", nil, recorded, true},
		{"unmarked, not recorded: never adopted", nil, me, false},
		{"a chart's own unrelated annotations", map[string]string{"category": "db"}, me, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(Owns(tc.marks, tc.claim)).To(Equal(tc.want))
		})
	}
}
