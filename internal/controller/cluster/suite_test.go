package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/internal/controller/cluster"
	"github.com/helmops/helmops/internal/testenv"
)

var (
	cp    *testenv.ControlPlane
	k8s   client.Client
	clock *clocktesting.FakeClock
)

// controllerVersion is the version the Reconciler under test runs as.
const controllerVersion = "v1.2.0"

const (
	timeout  = 60 * time.Second
	interval = 100 * time.Millisecond
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if os.Getenv("HELMOPS_TEST_LOG") != "" {
		ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1}))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	var err error
	if cp, err = testenv.Start(ctx, testenv.Options{Name: "cluster"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	k8s = cp.Client
	clock = clocktesting.NewFakeClock(time.Now())
	stop, err := cp.StartManager(ctx, ctrl.Options{}, func(mgr ctrl.Manager) error {
		return (&cluster.Reconciler{Client: mgr.GetClient(), Clock: clock, AgentTimeout: time.Minute, Version: controllerVersion}).SetupWithManager(mgr)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

func workspace(t *testing.T) string {
	t.Helper()
	name := "ws-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-")
	NewWithT(t).Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}
