package cli

import (
	"bytes"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestWriteRolloutShowsWhatItWaitsFor(t *testing.T) {
	g := NewWithT(t)
	b := &v1alpha1.Bundle{Status: v1alpha1.BundleStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonRollingOut}},
		Display:    v1alpha1.StatusDisplay{Message: "rolling out partition early (2 of 3 partitions): 2/4 clusters not yet ready with the new deployment, 2 allowed"},
		PartitionStatus: []v1alpha1.PartitionStatus{
			{Name: "canary", Count: 4, MaxUnavailable: 2},
			{Name: "early", Count: 4, MaxUnavailable: 2, Unavailable: 2},
		},
	}}
	var out bytes.Buffer
	writeRollout(&out, b)
	g.Expect(out.String()).To(Equal(`    │   RollingOut: rolling out partition early (2 of 3 partitions): 2/4 clusters not yet ready with the new deployment, 2 allowed
    │   partition canary (4 clusters): done
    │   partition early (4 clusters): 2/4 not ready with the current deployment, 2 allowed
`))

	out.Reset()
	writeRollout(&out, &v1alpha1.Bundle{})
	g.Expect(out.String()).To(BeEmpty(), "nothing to say without a rollout")
}
