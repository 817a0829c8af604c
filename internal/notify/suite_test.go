package notify_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/chartsource"
	"github.com/helmops/helmops/internal/controller/helmop"
	"github.com/helmops/helmops/internal/notify"
	"github.com/helmops/helmops/internal/testenv"
)

var (
	cp       *testenv.ControlPlane
	k8s      client.Client
	endpoint string // http://127.0.0.1:PORT/notify
	token    = []byte("s3cr3t-notification-token")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts a control plane, the Secret with the token, and a manager with the HelmOp
// reconciler and the notification endpoint, wired as `helmops controller` wires them.
func run(m *testing.M) int {
	ctrl.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	cp, err = testenv.Start(ctx, testenv.Options{Name: "notify"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	k8s = cp.Client
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helmops-webhook", Namespace: "default"}, Data: map[string][]byte{notify.TokenKey: token}}
	if err := k8s.Create(ctx, secret); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var server *notify.Server
	stop, err := cp.StartManager(ctx, ctrl.Options{}, func(mgr ctrl.Manager) error {
		// The test's repositories listen on loopback, which the controller refuses by default.
		resolver := chartsource.NewResolver(chartsource.Options{Network: chartsource.NetworkPolicy{AllowLoopback: true}, MinRevalidate: time.Second})
		if err := (&helmop.Reconciler{Client: mgr.GetClient(), Resolver: resolver}).SetupWithManager(mgr); err != nil {
			return err
		}
		server, err = notify.Setup(mgr, notify.Options{Addr: "127.0.0.1:0", Secret: client.ObjectKeyFromObject(secret)})
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	endpoint = "http://" + server.Addr() + "/notify"
	return m.Run()
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "notify-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// helmOp follows a constraint and polls only every hour: only a notification can make it
// resolve again within a test.
func helmOp(ns, name, repo, chart, version string) *v1alpha1.HelmOp {
	return &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.HelmOpSpec{
			BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{Helm: &v1alpha1.HelmOptions{Repo: repo, Chart: chart, Version: version}},
			PollingInterval:         &metav1.Duration{Duration: time.Hour},
		},
	}
}

// bundleVersion is the version on the HelmOp's Bundle, "" while there is none.
func bundleVersion(op *v1alpha1.HelmOp) func() string {
	return func() string {
		b := &v1alpha1.Bundle{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(op), b); err != nil {
			return ""
		}
		return b.Spec.HelmOrEmpty().Version
	}
}

// post sends body to the endpoint with the given headers and returns the status code.
func post(g Gomega, url string, body []byte, header http.Header) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	return resp.StatusCode
}

func signed(body []byte) http.Header {
	return http.Header{notify.SignatureHeader: {notify.Sign(body, token)}}
}

const (
	timeout  = 30 * time.Second
	interval = 20 * time.Millisecond
)

func signWith(body []byte, key string) string { return notify.Sign(body, []byte(key)) }
