package testenv

import (
	"context"
	"fmt"
	"os"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// StartManager runs a controller-runtime manager against the control plane once setup has
// registered its reconcilers. Unless opts says otherwise it uses Scheme(), serves no metrics or
// probes, and allows controller names to repeat, since tests run several managers in one process.
// stop ends the manager and waits for it.
func (cp *ControlPlane) StartManager(ctx context.Context, opts ctrl.Options, setup func(ctrl.Manager) error) (stop func(), err error) {
	if opts.Scheme == nil {
		opts.Scheme = Scheme()
	}
	if opts.Metrics.BindAddress == "" {
		opts.Metrics = metricsserver.Options{BindAddress: "0"}
	}
	if opts.HealthProbeBindAddress == "" {
		opts.HealthProbeBindAddress = "0"
	}
	if opts.Controller.SkipNameValidation == nil {
		opts.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	}
	mgr, err := ctrl.NewManager(cp.Config, opts)
	if err != nil {
		return nil, err
	}
	if err := setup(mgr); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mctx); err != nil {
			fmt.Fprintf(os.Stderr, "manager on %s: %v\n", cp.Name, err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
