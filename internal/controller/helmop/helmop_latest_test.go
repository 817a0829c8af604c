package helmop

import (
	"context"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/testenv"
)

func TestNewerVersionMessage(t *testing.T) {
	for _, tc := range []struct {
		constraint, version, latest string
		want                        string
	}{
		{"~1.3", "1.3.9", "1.4.2", "1.4.2 is available; the constraint ~1.3 keeps 1.3.9"},
		{"1.3.9", "1.3.9", "1.4.2", "1.4.2 is available; helm.version pins 1.3.9"},
		{"", "1.4.2", "1.4.2", ""},
		{"~1.3", "1.3.9", "", ""},
		{">= 1.5.0-0", "1.5.0-rc.1", "1.4.2", ""},
		{"*", "v2.0.0", "v1.9.0", ""},
		{"1.x", "1.0.0", "v2.0.0", "v2.0.0 is available; the constraint 1.x keeps 1.0.0"},
		{"latest", "latest", "1.0.0", ""},
	} {
		got, newer := newerVersionMessage(tc.constraint, tc.version, tc.latest)
		if got != tc.want || newer != (tc.want != "") {
			t.Errorf("newerVersionMessage(%q, %q, %q) = %q, %v; want %q", tc.constraint, tc.version, tc.latest, got, newer, tc.want)
		}
	}
}

// newerGauge is the helmops_helmop_newer_version_available series of one HelmOp: its labels and
// value, nil when there is none.
func newerGauge(g Gomega, ns, name string) map[string]string {
	ch := make(chan prometheus.Metric, 64)
	go func() { newerVersionAvailable.Collect(ch); close(ch) }()
	var out map[string]string
	for m := range ch {
		pb := &dto.Metric{}
		g.Expect(m.Write(pb)).To(Succeed())
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == ns && labels["name"] == name {
			g.Expect(out).To(BeNil(), "one series per HelmOp")
			labels["value"] = formatFloat(pb.GetGauge().GetValue())
			out = labels
		}
	}
	return out
}

// TestNewerVersionOutsideTheConstraint publishes 1.4.2 next to 1.3.9 for a HelmOp that asks for
// ~1.3: it keeps 1.3.9 and says 1.4.2 is there, in its status, a condition and a gauge, until
// the constraint allows it; the gauge goes with the HelmOp.
func TestNewerVersionOutsideTheConstraint(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo, err := testenv.StartChartRepo(testenv.RepoOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(repo.Stop)
	for _, v := range []string{"1.3.0", "1.3.9", "1.4.2", "1.5.0-rc.1"} {
		g.Expect(repo.Publish("alpine", v)).To(Succeed())
	}
	ns := newNamespace(t)
	op := newHelmOp(ns, "tilde", repo.URL, "alpine", withVersion("~1.3"))
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.Version).To(Equal("1.3.9"))
		g.Expect(op.Status.LatestAvailableVersion).To(Equal("1.4.2"))
		c := condition(op, v1alpha1.NewerVersionAvailableCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonOutsideConstraint))
		g.Expect(c.Message).To(Equal("1.4.2 is available; the constraint ~1.3 keeps 1.3.9"))
		g.Expect(newerGauge(g, ns, "tilde")).To(Equal(map[string]string{"name": "tilde", "namespace": ns, "version": "1.3.9", "latest": "1.4.2", "value": "1"}))
	}, timeout, interval).Should(Succeed())

	// Allowed by the constraint: the newest is deployed and nothing is signalled.
	update(g, op, func(op *v1alpha1.HelmOp) { op.Spec.Helm.Version = "1.x" })
	g.Eventually(func(g Gomega) {
		get(g, op)
		g.Expect(op.Status.Version).To(Equal("1.4.2"))
		g.Expect(op.Status.LatestAvailableVersion).To(Equal("1.4.2"))
		g.Expect(op.Condition(v1alpha1.NewerVersionAvailableCondition)).To(BeNil())
		g.Expect(newerGauge(g, ns, "tilde")).To(HaveKeyWithValue("value", "0"))
	}, timeout, interval).Should(Succeed())

	g.Expect(k8s.Delete(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(newerGauge(g, ns, "tilde")).To(BeNil()) }, timeout, interval).Should(Succeed())
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
