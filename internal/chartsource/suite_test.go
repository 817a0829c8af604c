package chartsource

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/helmops/helmops/internal/testenv"
)

const (
	testUser     = "helmops"
	testPassword = "correct-horse-battery"
)

// Servers shared by the tests of this package; each test makes its own Resolver.
var (
	plainRepo  *testenv.ChartRepo   // http, no auth: alpine 0.1.0 0.2.0, nginx 1.1.0
	secureRepo *testenv.ChartRepo   // https with its own CA, basic auth: the same charts
	plainReg   *testenv.OCIRegistry // http, no auth: the same charts, plus meta, vprefixed, many
	secureReg  *testenv.OCIRegistry // https with its own CA, htpasswd: alpine 0.1.0 0.2.0
	manyTags   = 120                // versions of chart "many": more than one page of tags
	fixtures   = [][2]string{{"alpine", "0.1.0"}, {"alpine", "0.2.0"}, {"nginx", "1.1.0"}}
)

// testNetwork lets resolvers reach the test servers, which listen on loopback: an opt-in, as
// for helmops dev (--allow-loopback).
var testNetwork = NetworkPolicy{AllowLoopback: true}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	var err error
	if plainRepo, err = testenv.StartChartRepo(testenv.RepoOptions{}); err != nil {
		return 0, err
	}
	defer plainRepo.Stop()
	if secureRepo, err = testenv.StartChartRepo(testenv.RepoOptions{TLS: true, Username: testUser, Password: testPassword}); err != nil {
		return 0, err
	}
	defer secureRepo.Stop()
	if plainReg, err = testenv.StartOCIRegistry(testenv.RegistryOptions{}); err != nil {
		return 0, err
	}
	defer plainReg.Stop()
	if secureReg, err = testenv.StartOCIRegistry(testenv.RegistryOptions{TLS: true, Username: testUser, Password: testPassword}); err != nil {
		return 0, err
	}
	defer secureReg.Stop()
	for _, f := range fixtures {
		if err := plainRepo.Publish(f[0], f[1]); err != nil {
			return 0, err
		}
		if err := secureRepo.Publish(f[0], f[1]); err != nil {
			return 0, err
		}
		if _, err := plainReg.Publish(ctx, f[0], f[1]); err != nil {
			return 0, err
		}
	}
	for _, v := range []string{"0.1.0", "0.2.0"} {
		if _, err := secureReg.Publish(ctx, "alpine", v); err != nil {
			return 0, err
		}
	}
	for _, f := range [][2]string{{"meta", "0.1.0"}, {"meta", "0.2.0+up1.0"}, {"meta", "0.3.0-rc.1"}, {"vprefixed", "v0.1.0"}, {"vprefixed", "v0.3.0"}} {
		if _, err := plainReg.Publish(ctx, f[0], f[1]); err != nil {
			return 0, err
		}
	}
	for i := 0; i < manyTags; i++ {
		if _, err := plainReg.Publish(ctx, "many", fmt.Sprintf("1.0.%d", i)); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

func chartVersionOf(t *testing.T, archive []byte) string {
	t.Helper()
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("loading the chart archive: %v", err)
	}
	return c.Metadata.Version
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
