package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/notify"
)

// TestFailedAnnotationGivesTheWindowBack has the API server refuse the reconcile-requested
// annotation (an admission policy denies updates of the namespace's HelmOps): the sender is told
// to retry, and its retry is acted on rather than rate-limited, although the clock stands still
// inside a one-hour window. Once the API server accepts the annotation again, the retry lands.
func TestFailedAnnotationGivesTheWindowBack(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	repo := chartRepo(t, "alpine", "0.1.0")
	ns := newNamespace(t)
	op := helmOp(ns, "refused", repo.URL, "alpine", "0.x")
	g.Expect(k8s.Create(ctx, op)).To(Succeed())
	g.Eventually(func(g Gomega) { get(g, op); g.Expect(op.Status.Version).To(Equal("0.1.0")) }, timeout, interval).Should(Succeed())

	// A second endpoint whose window never passes: only a given-back window lets a retry through.
	clock := clocktesting.NewFakePassiveClock(time.Now())
	var server *notify.Server
	stop, err := cp.StartManager(ctx, ctrl.Options{}, func(mgr ctrl.Manager) error {
		var err error
		server, err = notify.Setup(mgr, notify.Options{Addr: "127.0.0.1:0", Secret: client.ObjectKey{Namespace: "default", Name: "helmops-webhook"},
			Window: time.Hour, Clock: clock})
		return err
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)
	url := "http://" + server.Addr() + "/notify"

	unbind := denyHelmOpUpdates(t, ns)
	// The policy is in force once a change of the HelmOp is refused.
	g.Eventually(func() error {
		patch := client.MergeFrom(op.DeepCopy())
		op.Labels = map[string]string{"probe": time.Now().Format("150405.000000")}
		return k8s.Patch(ctx, op, patch)
	}, timeout, interval).Should(HaveOccurred())

	body, _ := json.Marshal(map[string]string{"repo": repo.URL, "chart": "alpine"})
	// 202 (ignored) until this endpoint's cache holds the HelmOp; then the annotation is refused.
	g.Eventually(func() int { return post(g, url, body, signed(body)) }, timeout, interval).Should(Equal(http.StatusServiceUnavailable))
	g.Expect(post(g, url, body, signed(body))).To(Equal(http.StatusServiceUnavailable), "the retry was let through and tried again")
	get(g, op)
	g.Expect(op.Annotations).NotTo(HaveKey(v1alpha1.ReconcileRequestedAnnotation))

	unbind()
	g.Eventually(func() int { return post(g, url, body, signed(body)) }, timeout, interval).Should(Equal(http.StatusAccepted))
	get(g, op)
	g.Expect(op.Annotations).To(HaveKey(v1alpha1.ReconcileRequestedAnnotation))
	// The window is taken now: the next notification within it is rate-limited.
	g.Expect(post(g, url, body, signed(body))).To(Equal(http.StatusTooManyRequests))
}

// denyHelmOpUpdates makes the API server refuse every update of the HelmOps in ns (their status
// aside) until the returned function removes the policy's binding.
func denyHelmOpUpdates(t *testing.T, ns string) (unbind func()) {
	t.Helper()
	ctx := context.Background()
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-helmop-updates-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{v1alpha1.GroupVersion.Version},
							Resources: []string{"helmops"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "updates of HelmOps are refused by the test"}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, policy) })
	return func() {
		if err := client.IgnoreNotFound(k8s.Delete(ctx, binding)); err != nil {
			t.Fatal(err)
		}
	}
}
