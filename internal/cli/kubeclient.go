package cli

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/internal/scheme"
)

// restConfig loads a kubeconfig: the file given, else $KUBECONFIG, else ~/.kube/config, else the
// in-cluster configuration.
func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if kubeconfig == "" {
			if inCluster, icErr := rest.InClusterConfig(); icErr == nil {
				return inCluster, nil
			}
		}
		return nil, fmt.Errorf("loading kubeconfig: %w (pass --kubeconfig or set KUBECONFIG)", err)
	}
	return cfg, nil
}

// kubeClient returns a client for the helmops kinds.
func kubeClient(kubeconfig string) (client.Client, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}
