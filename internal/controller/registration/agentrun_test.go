package registration_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/agent"
	"github.com/helmops/helmops/internal/chartsource"
)

// runAgent runs the agent a registered cluster runs: on the cluster downstream, reading its
// upstream credential from the Secret credential as helmops agent --credential-secret does.
// The channel receives what agent.Run returns, once ctx is cancelled or it fails.
func runAgent(ctx context.Context, downstream *rest.Config, credential types.NamespacedName) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{
			Downstream:         downstream,
			Registration:       &agent.Registration{CredentialSecret: credential},
			HeartbeatInterval:  time.Second,
			Fetcher:            agent.ResolverFetcher{Resolver: chartsource.NewResolver(chartsource.Options{})},
			MetricsBindAddress: "0",
			Controller:         config.Controller{SkipNameValidation: ptr.To(true)},
		})
	}()
	return done
}

// expectClusterReady waits until the Cluster named by key is Ready from the heartbeats of the
// agent that runAgent started (done), reading it into c; the test fails at once if that agent
// stops.
func expectClusterReady(ctx context.Context, t *testing.T, g Gomega, key client.ObjectKey, c *v1alpha1.Cluster, done <-chan error) {
	t.Helper()
	g.Eventually(func() metav1.ConditionStatus {
		select {
		case err := <-done:
			t.Fatalf("the agent stopped: %v", err)
		default:
		}
		_ = upstream.Client.Get(ctx, key, c)
		if cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ReadyCondition); cond != nil {
			return cond.Status
		}
		return ""
	}, timeout, interval).Should(Equal(metav1.ConditionTrue))
}
