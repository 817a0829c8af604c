// Package helmaction wraps the Helm v4 SDK actions the agent runs: install, upgrade, rollback,
// uninstall, reading a release and its history, and marking an interrupted operation failed.
// The wrappers carry no policy: they run exactly what they are asked and report what Helm said.
package helmaction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Client runs Helm actions against one cluster. Release records are stored as Secrets in the
// release namespace (Helm's default storage driver). It is safe for concurrent use on different
// releases.
type Client struct {
	config *rest.Config
	disc   discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
	logger *slog.Logger
}

// New returns a Client for the cluster that cfg reaches. logger may be nil (Helm's debug output
// is then discarded).
func New(cfg *rest.Config, logger *slog.Logger) (*Client, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client for the downstream cluster: %w", err)
	}
	disc := memory.NewMemCacheClient(dc)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{config: rest.CopyConfig(cfg), disc: disc, mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc), logger: logger}, nil
}

// Impersonating returns a Client that acts as the given user (e.g.
// "system:serviceaccount:NAMESPACE:NAME") and shares this client's discovery cache.
func (c *Client) Impersonating(user string) *Client {
	cfg := rest.CopyConfig(c.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return &Client{config: cfg, disc: c.disc, mapper: c.mapper, logger: c.logger}
}

// RESTConfig is a copy of the configuration the client reaches the cluster with (with its
// impersonation, if any), for callers that must act as the same identity.
func (c *Client) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// RESTMapper is the client's discovery-backed mapper, shared with callers that read the
// release's resources.
func (c *Client) RESTMapper() meta.RESTMapper { return c.mapper }

// getter implements Helm's RESTClientGetter for one namespace.
type getter struct {
	c  *Client
	ns string
}

func (g getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.c.config), nil }
func (g getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.c.disc, nil
}
func (g getter) ToRESTMapper() (meta.RESTMapper, error) { return g.c.mapper, nil }
func (g getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(clientcmdapi.Config{}, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.ns}})
}

// configuration returns a Helm action configuration for a release namespace.
func (c *Client) configuration(namespace string) (*action.Configuration, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(c.logger.Handler()))
	if err := cfg.Init(getter{c: c, ns: namespace}, namespace, "secret"); err != nil {
		return nil, err
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	return cfg, nil
}

// Options are the Helm settings shared by install, upgrade and rollback.
type Options struct {
	Timeout              time.Duration
	Wait                 kube.WaitStrategy
	WaitForJobs          bool
	Atomic               bool
	Force                bool
	ForceConflicts       bool
	TakeOwnership        bool
	MaxHistory           int
	SkipSchemaValidation bool
	// EnableDNS lets the chart's templates look names up (getHostByName).
	EnableDNS bool
	// KeepCRDs marks the CRDs of the templates to be kept on uninstall (see KeepCRDs).
	KeepCRDs    bool
	Description string
}

// Install installs a new release.
func (c *Client) Install(ctx context.Context, name, namespace string, ch *chart.Chart, values map[string]any, o Options) (*release.Release, error) {
	cfg, err := c.configuration(namespace)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = name
	in.Namespace = namespace
	in.Timeout = o.Timeout
	in.WaitStrategy = o.Wait
	in.WaitForJobs = o.WaitForJobs
	in.RollbackOnFailure = o.Atomic
	in.ForceReplace = o.Force
	in.ForceConflicts = o.ForceConflicts
	in.TakeOwnership = o.TakeOwnership
	in.SkipSchemaValidation = o.SkipSchemaValidation
	in.EnableDNS = o.EnableDNS
	if o.KeepCRDs {
		in.PostRenderer = KeepCRDs{}
	}
	in.Description = o.Description
	r, err := in.RunWithContext(ctx, ch, values)
	return asRelease(r), err
}

// Upgrade upgrades an existing release to ch with values (values replace the previous ones).
func (c *Client) Upgrade(ctx context.Context, name, namespace string, ch *chart.Chart, values map[string]any, o Options) (*release.Release, error) {
	cfg, err := c.configuration(namespace)
	if err != nil {
		return nil, err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = namespace
	up.Timeout = o.Timeout
	up.WaitStrategy = o.Wait
	up.WaitForJobs = o.WaitForJobs
	up.RollbackOnFailure = o.Atomic
	up.ForceReplace = o.Force
	up.ForceConflicts = o.ForceConflicts
	up.TakeOwnership = o.TakeOwnership
	up.MaxHistory = o.MaxHistory
	up.SkipSchemaValidation = o.SkipSchemaValidation
	up.EnableDNS = o.EnableDNS
	if o.KeepCRDs {
		up.PostRenderer = KeepCRDs{}
	}
	up.Description = o.Description
	r, err := up.RunWithContext(ctx, name, ch, values)
	return asRelease(r), err
}

// Uninstall removes a release and its resources. A release that does not exist is not an error.
func (c *Client) Uninstall(_ context.Context, name, namespace string, timeout time.Duration) error {
	cfg, err := c.configuration(namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.Timeout = timeout
	un.WaitStrategy = kube.HookOnlyStrategy
	_, err = un.Run(name)
	return err
}

// History returns every stored revision of a release, oldest first; empty when there is none.
func (c *Client) History(_ context.Context, name, namespace string) ([]*release.Release, error) {
	cfg, err := c.configuration(namespace)
	if err != nil {
		return nil, err
	}
	h, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the history of release %s/%s: %w", namespace, name, err)
	}
	out := make([]*release.Release, 0, len(h))
	for _, r := range h {
		if rel := asRelease(r); rel != nil {
			out = append(out, rel)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// SetStatus rewrites the stored status of one revision, e.g. to mark an operation that was
// interrupted by a crash (pending-*) as failed so Helm accepts the next operation.
func (c *Client) SetStatus(_ context.Context, rel *release.Release, status rcommon.Status, description string) error {
	cfg, err := c.configuration(rel.Namespace)
	if err != nil {
		return err
	}
	rel.SetStatus(status, description)
	return cfg.Releases.Update(rel)
}

// DeleteRevision removes one stored revision from the history.
func (c *Client) DeleteRevision(_ context.Context, name, namespace string, revision int) error {
	cfg, err := c.configuration(namespace)
	if err != nil {
		return err
	}
	_, err = cfg.Releases.Delete(name, revision)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	return err
}

func asRelease(r ri.Releaser) *release.Release {
	switch v := r.(type) {
	case *release.Release:
		return v
	case release.Release:
		return &v
	}
	return nil
}
