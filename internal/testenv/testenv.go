// Package testenv is what helmops tests run against: the components of internal/localenv (control
// planes, Helm repository, OCI registry, chart builder) plus helpers only tests need, such as a
// controller-runtime manager that may share controller names with others in the same process.
// Production code never imports it.
package testenv

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/helmops/helmops/internal/localenv"
)

// BinDirEnv overrides where the control-plane binaries are looked up.
const BinDirEnv = localenv.BinDirEnv

// DefaultTemplate is the template of a chart built without WithTemplate (see localenv).
const DefaultTemplate = localenv.DefaultTemplate

type (
	// Options configure a control plane.
	Options = localenv.Options
	// ChartRepo is a Helm chart repository served over HTTP(S).
	ChartRepo = localenv.ChartRepo
	// RepoOptions configure a ChartRepo.
	RepoOptions = localenv.RepoOptions
	// OCIRegistry is an OCI registry running in process.
	OCIRegistry = localenv.OCIRegistry
	// RegistryOptions configure an OCIRegistry.
	RegistryOptions = localenv.RegistryOptions
	// ChartOption changes a chart built by BuildChart.
	ChartOption = localenv.ChartOption
)

// ControlPlane is a running control plane (localenv.ControlPlane) with test helpers.
type ControlPlane struct {
	*localenv.ControlPlane
}

// Start starts a control plane; see localenv.Start.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	cp, err := localenv.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &ControlPlane{cp}, nil
}

// Scheme knows the Kubernetes built-in kinds and the fleet.cattle.io kinds.
func Scheme() *runtime.Scheme { return localenv.Scheme() }

// BinDir returns the folder holding the control-plane binaries; see localenv.BinDir.
func BinDir() (string, error) { return localenv.BinDir() }

// ModuleRoot finds the helmops module root; see localenv.ModuleRoot.
func ModuleRoot() (string, error) { return localenv.ModuleRoot() }

// StartChartRepo starts a chart repository; see localenv.StartChartRepo.
func StartChartRepo(opts RepoOptions) (*ChartRepo, error) { return localenv.StartChartRepo(opts) }

// StartOCIRegistry starts an OCI registry; see localenv.StartOCIRegistry.
func StartOCIRegistry(opts RegistryOptions) (*OCIRegistry, error) {
	return localenv.StartOCIRegistry(opts)
}

// BuildChart packages a chart; see localenv.BuildChart.
func BuildChart(name, version string, opts ...ChartOption) ([]byte, error) {
	return localenv.BuildChart(name, version, opts...)
}

// WithValues sets the chart's default values.
func WithValues(v map[string]any) ChartOption { return localenv.WithValues(v) }

// WithTemplate adds a template (name relative to templates/); the first use replaces the default
// ConfigMap template.
func WithTemplate(name, text string) ChartOption { return localenv.WithTemplate(name, text) }

// WithAppVersion sets the chart's appVersion.
func WithAppVersion(v string) ChartOption { return localenv.WithAppVersion(v) }
