// Package testutil builds the objects tests create: HelmOps, Bundles, BundleDeployments and
// Clusters with the fields most tests need, changed by options, e.g.
//
//	testutil.HelmOp(ns, "alpine", testutil.WithChart(repo.URL, "alpine"), testutil.WithVersion("0.x.x"))
//
// Only tests import it.
package testutil

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helmops/helmops/api/v1alpha1"
)

// HelmOpOption changes a HelmOp being built.
type HelmOpOption func(*v1alpha1.HelmOp)

// HelmOp builds a HelmOp with an empty helm block.
func HelmOp(ns, name string, opts ...HelmOpOption) *v1alpha1.HelmOp {
	h := &v1alpha1.HelmOp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.HelmOpSpec{BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
			Helm: &v1alpha1.HelmOptions{},
		}},
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// WithChart sets spec.helm.repo and spec.helm.chart.
func WithChart(repo, chart string) HelmOpOption {
	return func(h *v1alpha1.HelmOp) { h.Spec.Helm.Repo, h.Spec.Helm.Chart = repo, chart }
}

// WithVersion sets spec.helm.version.
func WithVersion(v string) HelmOpOption { return func(h *v1alpha1.HelmOp) { h.Spec.Helm.Version = v } }

// WithPolling sets spec.pollingInterval.
func WithPolling(d time.Duration) HelmOpOption {
	return func(h *v1alpha1.HelmOp) { h.Spec.PollingInterval = &metav1.Duration{Duration: d} }
}

// WithSecret sets spec.helmSecretName.
func WithSecret(name string) HelmOpOption {
	return func(h *v1alpha1.HelmOp) { h.Spec.HelmSecretName = name }
}

// WithShard sets the shard label.
func WithShard(id string) HelmOpOption {
	return func(h *v1alpha1.HelmOp) {
		if h.Labels == nil {
			h.Labels = map[string]string{}
		}
		h.Labels[v1alpha1.ShardLabel] = id
	}
}

// WithHelmOpTargets sets spec.targets.
func WithHelmOpTargets(ts ...v1alpha1.BundleTarget) HelmOpOption {
	return func(h *v1alpha1.HelmOp) { h.Spec.Targets = ts }
}

// BundleOption changes a Bundle being built.
type BundleOption func(*v1alpha1.Bundle)

// Bundle builds a Bundle as the HelmOp controller writes it (labelled with the HelmOp of the same
// name), deploying chart hello 1.2.3 from https://charts.example.com into namespace app.
func Bundle(ns, name string, opts ...BundleOption) *v1alpha1.Bundle {
	b := &v1alpha1.Bundle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.HelmOpLabel: name}},
		Spec: v1alpha1.BundleSpec{
			BundleDeploymentOptions: v1alpha1.BundleDeploymentOptions{
				Namespace: "app",
				Helm:      &v1alpha1.HelmOptions{Repo: "https://charts.example.com", Chart: "hello", Version: "1.2.3"},
			},
			HelmOpOptions: &v1alpha1.BundleHelmOptions{},
		},
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// WithTargets sets spec.targets.
func WithTargets(ts ...v1alpha1.BundleTarget) BundleOption {
	return func(b *v1alpha1.Bundle) { b.Spec.Targets = ts }
}

// WithBundleSecret sets spec.helmOpOptions.helmOpSecretName.
func WithBundleSecret(name string) BundleOption {
	return func(b *v1alpha1.Bundle) { b.Spec.HelmOpOptions = &v1alpha1.BundleHelmOptions{SecretName: name} }
}

// WithValues sets spec.helm.values.
func WithValues(m map[string]any) BundleOption {
	return func(b *v1alpha1.Bundle) { b.Spec.Helm.Values = Values(m) }
}

// Values wraps a map as chart values.
func Values(m map[string]any) *v1alpha1.GenericMap { return &v1alpha1.GenericMap{Data: m} }

// ClusterOption changes a Cluster being built.
type ClusterOption func(*v1alpha1.Cluster)

// Cluster builds a Cluster.
func Cluster(ns, name string, opts ...ClusterOption) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithLabels sets the Cluster's labels.
func WithLabels(l map[string]string) ClusterOption {
	return func(c *v1alpha1.Cluster) { c.Labels = l }
}

// BundleDeploymentOption changes a BundleDeployment being built.
type BundleDeploymentOption func(*v1alpha1.BundleDeployment)

// BundleDeployment builds a BundleDeployment as the bundle controller writes it for the Bundle
// workspace/name, installing chart h into the namespace of the same name.
func BundleDeployment(ns, name, workspace string, h v1alpha1.HelmOptions, opts ...BundleDeploymentOption) *v1alpha1.BundleDeployment {
	bd := &v1alpha1.BundleDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			v1alpha1.HelmOpLabel: name, v1alpha1.BundleNameLabel: name, v1alpha1.BundleNamespaceLabel: workspace,
		}},
		Spec: v1alpha1.BundleDeploymentSpec{
			DeploymentID: "v:" + h.Version,
			Options:      v1alpha1.BundleDeploymentOptions{Namespace: name, Helm: &h},
		},
	}
	for _, o := range opts {
		o(bd)
	}
	return bd
}
