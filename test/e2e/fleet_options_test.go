package e2e

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
	"github.com/helmops/helmops/internal/targeting"
	"github.com/helmops/helmops/internal/testenv"
)

// optionsChart shows in its ConfigMap every key of .Values.data, .Values.hosts (the output of a
// templateValues entry) and what a DNS lookup of localhost gives (empty when DNS is disabled).
const optionsChart = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  chartVersion: {{ .Chart.Version | quote }}
  hosts: {{ toJson .Values.hosts | quote }}
  dns: {{ getHostByName "localhost" | quote }}
{{- range $k, $v := .Values.data }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
`

// patchCluster changes a Cluster once its agent has registered it.
func patchCluster(t *testing.T, name string, mutate func(*v1alpha1.Cluster)) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		c := &v1alpha1.Cluster{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: name}, c)).To(Succeed())
		before := c.DeepCopy()
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		mutate(c)
		g.Expect(mgmt().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

func releaseRevision(g Gomega, cluster, name string) int {
	c := &v1alpha1.Cluster{}
	g.Expect(mgmt().Get(context.Background(), client.ObjectKey{Namespace: "fleet-default", Name: cluster}, c)).To(Succeed())
	bd := &v1alpha1.BundleDeployment{}
	g.Expect(mgmt().Get(context.Background(), client.ObjectKey{Namespace: c.Status.Namespace, Name: name}, bd)).To(Succeed())
	g.Expect(bd.Status.Release).NotTo(BeNil())
	return bd.Status.Release.Revision
}

// Fleet's per-cluster options, end to end: values templates over the cluster's name, namespace,
// labels, annotations and templateValues, global.fleet.clusterLabels, helm.templateValues,
// disablePreProcess, disableDNS, AllMatches merging the options of every matching target,
// clusterName matching the display-name label, namespaceLabels/namespaceAnnotations on the
// release namespace, and forceSyncGeneration redeploying (a target's only its clusters).
// A HelmOp whose template comes to read a missing label says so on the HelmOp and the
// BundleDeployment, naming the cluster and the value, keeps its release as it was and disturbs
// nothing else; so do a templateValues entry reading a missing label and a template calling a
// sprig function that reads the environment. An unknown targetCustomizationMode is refused
// naming the field.
func TestFleetOptionsReachEachCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("fleetopts", "1.0.0", testenv.WithTemplate("configmap.yaml", optionsChart))).To(Succeed())
	patchCluster(t, "dev", func(c *v1alpha1.Cluster) {
		c.Labels[targeting.DisplayNameLabel] = "dev-display"
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations["owner"] = "team-a"
		c.Spec.TemplateValues = &v1alpha1.GenericMap{Data: map[string]any{"tier": "gold"}}
	})

	h := helmOp("fleetopts", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "fleetopts", Version: "1.0.0",
		Values: &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{
			"cluster": "${ .ClusterName }",
			"env":     "global.fleet.clusterLabels.env",
			"tier":    `${ get .ClusterValues "tier" | default "none" }`,
			"owner":   `${ get .ClusterAnnotations "owner" | default "nobody" }`,
			"ns":      "${ .ClusterNamespace }",
			"label":   "${ .ClusterLabels.env }",
		}}},
		TemplateValues: map[string]string{"hosts": `${ list .ClusterName "x" | toJson }`},
	}, func(h *v1alpha1.HelmOp) {
		h.Spec.Namespace = "fleetopts"
		h.Spec.TargetCustomizationMode = v1alpha1.AllMatches
		h.Spec.Targets = []v1alpha1.BundleTarget{
			{Name: "all", ClusterSelector: &metav1.LabelSelector{}, NamespaceLabels: map[string]string{"team": "a"}},
			{Name: "dev-by-display-name", ClusterName: "dev-display", NamespaceAnnotations: map[string]string{"note": "dev"},
				Helm: &v1alpha1.HelmOptions{DisableDNS: true, Values: &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"extra": "dev-only"}}}}},
			{Name: "prod-raw", ClusterName: "prod", Helm: &v1alpha1.HelmOptions{DisablePreProcess: true}},
		}
	})
	g.Expect(mgmt().Create(ctx, h)).To(Succeed())

	// An unknown targetCustomizationMode is refused, naming the field.
	badMode := helmOp("badmode", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "fleetopts", Version: "1.0.0"},
		func(h *v1alpha1.HelmOp) { h.Spec.TargetCustomizationMode = "EveryMatch" })
	err := mgmt().Create(ctx, badMode)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring(`spec.targetCustomizationMode: Unsupported value: "EveryMatch"`))

	// badtemplate deploys with an optional label, then reads it as required.
	bad := helmOp("badtemplate", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "fleetopts", Version: "1.0.0",
		Values: &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"region": `${ get .ClusterLabels "region" | default "none" }`}}}},
		func(h *v1alpha1.HelmOp) {
			h.Spec.Namespace = "badtemplate"
			h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}}
		})
	g.Expect(mgmt().Create(ctx, bad)).To(Succeed())
	// Sprig's functions that read the environment are not among those a template may call.
	badFunc := helmOp("badfunc", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "fleetopts", Version: "1.0.0",
		Values: &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"home": `${ env "HOME" }`}}}},
		func(h *v1alpha1.HelmOp) { h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}} })
	g.Expect(mgmt().Create(ctx, badFunc)).To(Succeed())
	badTV := helmOp("badtemplatevalues", "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "fleetopts", Version: "1.0.0",
		TemplateValues: map[string]string{"hosts": "${ .ClusterLabels.nope }"}},
		func(h *v1alpha1.HelmOp) { h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev"}} })
	g.Expect(mgmt().Create(ctx, badTV)).To(Succeed())

	g.Eventually(func(g Gomega) {
		dev := configMap(g, env.Downstreams["dev"], "fleetopts", "fleetopts").Data
		g.Expect(dev).To(HaveKeyWithValue("cluster", "dev"))
		g.Expect(dev).To(HaveKeyWithValue("env", "dev"))
		g.Expect(dev).To(HaveKeyWithValue("tier", "gold"))
		g.Expect(dev).To(HaveKeyWithValue("owner", "team-a"))
		g.Expect(dev).To(HaveKeyWithValue("extra", "dev-only"), "the second matching target's values, merged")
		g.Expect(dev).To(HaveKeyWithValue("hosts", `["dev","x"]`))
		g.Expect(dev).To(HaveKeyWithValue("ns", "fleet-default"), "the Cluster's namespace, as in Fleet")
		g.Expect(dev).To(HaveKeyWithValue("label", "dev"))
		g.Expect(dev).To(HaveKeyWithValue("dns", ""), "disableDNS from the second target")

		prod := configMap(g, env.Downstreams["prod"], "fleetopts", "fleetopts").Data
		g.Expect(prod).To(HaveKeyWithValue("cluster", "${ .ClusterName }"), "disablePreProcess leaves templates alone")
		g.Expect(prod).To(HaveKeyWithValue("env", "prod"), "cluster labels are still filled in")
		g.Expect(prod).To(HaveKeyWithValue("hosts", "null"), "no templateValues without preprocessing")
		g.Expect(prod).NotTo(HaveKey("extra"))
		g.Expect(prod["dns"]).NotTo(BeEmpty(), "DNS is enabled by default")

		for name, annotated := range map[string]bool{"dev": true, "prod": false} {
			ns := &corev1.Namespace{}
			g.Expect(env.Downstreams[name].Client.Get(ctx, client.ObjectKey{Name: "fleetopts"}, ns)).To(Succeed())
			g.Expect(ns.Labels).To(HaveKeyWithValue("team", "a"), name)
			if annotated {
				g.Expect(ns.Annotations).To(HaveKeyWithValue("note", "dev"), name)
			} else {
				g.Expect(ns.Annotations).NotTo(HaveKey("note"), name)
			}
		}
		// Status where Fleet users read it: one ConfigMap per cluster.
		got := expectReady(g, client.ObjectKeyFromObject(h))
		g.Expect(got.Status.ResourceCounts).To(Equal(v1alpha1.ResourceCounts{Ready: 2, DesiredReady: 2}))
		g.Expect(got.Status.PerClusterResourceCounts).To(HaveKeyWithValue("fleet-default/dev", &v1alpha1.ResourceCounts{Ready: 1, DesiredReady: 1}))
		g.Expect(got.Status.PerClusterResourceCounts).To(HaveKeyWithValue("fleet-default/prod", &v1alpha1.ResourceCounts{Ready: 1, DesiredReady: 1}))
		g.Expect(got.Status.Resources).To(HaveLen(1))
		g.Expect(got.Status.Resources[0].ID).To(Equal("fleetopts/fleetopts-config"))
		g.Expect(got.Status.Resources[0].PerClusterState.Ready).To(ConsistOf("fleet-default/dev", "fleet-default/prod"))
		devCluster := &v1alpha1.Cluster{}
		g.Expect(mgmt().Get(ctx, client.ObjectKey{Namespace: "fleet-default", Name: "dev"}, devCluster)).To(Succeed())
		g.Expect(devCluster.Status.ResourceCounts.DesiredReady).To(BeNumerically(">=", 1))
		g.Expect(configMap(g, env.Downstreams["dev"], "badtemplate", "badtemplate").Data).To(HaveKeyWithValue("region", "none"))
	}, timeout, interval).Should(Succeed())
	badRevision := releaseRevision(g, "dev", "badtemplate")
	updateHelmOp(t, keyOf(bad), func(h *v1alpha1.HelmOp) {
		h.Spec.Helm.Values = &v1alpha1.GenericMap{Data: map[string]any{"data": map[string]any{"region": "${ .ClusterLabels.region }"}}}
	})

	// The bad template is reported on the HelmOp and on dev's BundleDeployment, naming the
	// cluster and the value; the release stays as it was, and the other HelmOp's releases are
	// untouched.
	g.Eventually(func(g Gomega) {
		got := &v1alpha1.HelmOp{}
		g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(bad), got)).To(Succeed())
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidValues))
		g.Expect(ready.Message).To(ContainSubstring("cluster dev: helm.values.data.region"))
		g.Expect(ready.Message).To(ContainSubstring(`map has no entry for key "region"`))
		g.Expect(mgmt().Get(ctx, keyOf(badFunc), got)).To(Succeed())
		ready = got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidValues))
		g.Expect(ready.Message).To(And(ContainSubstring("cluster dev: helm.values.data.home"), ContainSubstring(`function "env" not defined`)))
		g.Expect(mgmt().Get(ctx, keyOf(badTV), got)).To(Succeed())
		ready = got.Condition(v1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidValues))
		g.Expect(ready.Message).To(And(ContainSubstring("cluster dev: helm.templateValues.hosts"), ContainSubstring(`map has no entry for key "nope"`)))
		targeted := bundleDeployment(g, "dev", "badtemplate").Condition(v1alpha1.TargetedCondition)
		g.Expect(targeted).NotTo(BeNil())
		g.Expect(targeted.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(targeted.Reason).To(Equal(v1alpha1.ReasonInvalidValues))
		g.Expect(targeted.Message).To(ContainSubstring("cluster dev: helm.values.data.region"))
	}, timeout, interval).Should(Succeed())
	expectReady(g, client.ObjectKeyFromObject(h))
	g.Expect(configMap(g, env.Downstreams["dev"], "badtemplate", "badtemplate").Data).To(HaveKeyWithValue("region", "none"))
	g.Expect(releaseRevision(g, "dev", "badtemplate")).To(Equal(badRevision))

	// Raising forceSyncGeneration redeploys on every cluster, with nothing else changed.
	before := map[string]int{}
	for _, name := range []string{"dev", "prod"} {
		before[name] = releaseRevision(g, name, "fleetopts")
	}
	got := &v1alpha1.HelmOp{}
	g.Expect(mgmt().Get(ctx, client.ObjectKeyFromObject(h), got)).To(Succeed())
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.ForceSyncGeneration = 1
	g.Expect(mgmt().Patch(ctx, got, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"dev", "prod"} {
			g.Expect(releaseRevision(g, name, "fleetopts")).To(BeNumerically(">", before[name]), name)
		}
		expectReady(g, client.ObjectKeyFromObject(h))
	}, timeout, interval).Should(Succeed())

	// A target's forceSyncGeneration above the HelmOp's replaces it: only dev redeploys.
	for _, name := range []string{"dev", "prod"} {
		before[name] = releaseRevision(g, name, "fleetopts")
	}
	prodID := bundleDeployment(g, "prod", "fleetopts").Spec.DeploymentID
	updateHelmOp(t, keyOf(h), func(h *v1alpha1.HelmOp) { h.Spec.Targets[1].ForceSyncGeneration = 5 })
	g.Eventually(func(g Gomega) {
		g.Expect(releaseRevision(g, "dev", "fleetopts")).To(BeNumerically(">", before["dev"]))
		expectReady(g, client.ObjectKeyFromObject(h))
	}, timeout, interval).Should(Succeed())
	g.Expect(bundleDeployment(g, "prod", "fleetopts").Spec.DeploymentID).To(Equal(prodID))
	g.Expect(releaseRevision(g, "prod", "fleetopts")).To(Equal(before["prod"]))
}

const crdChart = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {{ .Values.plural }}.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: {{ .Values.kind }}, listKind: {{ .Values.kind }}List, plural: {{ .Values.plural }}, singular: {{ .Values.kind | lower }}}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// The CRDs of a chart's templates stay when the release is uninstalled, as in Fleet, unless
// deleteCRDResources is set (on the HelmOp or on the target).
func TestDeleteCRDResources(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Repo.Publish("crdchart", "1.0.0", testenv.WithTemplate("crd.yaml", crdChart))).To(Succeed())
	ops := map[string]*v1alpha1.HelmOp{}
	for name, del := range map[string]bool{"keeps": false, "drops": true, "targetdrops": false} {
		ops[name] = helmOp("crd-"+name, "fleet-default", v1alpha1.HelmOptions{Repo: env.State.RepoURL, Chart: "crdchart", Version: "1.0.0",
			Values: &v1alpha1.GenericMap{Data: map[string]any{"plural": name, "kind": strings.ToUpper(name[:1]) + name[1:]}}},
			func(h *v1alpha1.HelmOp) {
				h.Spec.Namespace = "crd-" + name
				h.Spec.DeleteCRDResources = del
				h.Spec.Targets = []v1alpha1.BundleTarget{{ClusterName: "dev", DeleteCRDResources: name == "targetdrops"}}
			})
		g.Expect(mgmt().Create(ctx, ops[name])).To(Succeed())
	}
	crd := func(name string) error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		return env.Downstreams["dev"].Client.Get(ctx, client.ObjectKey{Name: name + ".example.com"}, u)
	}
	g.Eventually(func(g Gomega) {
		for name, op := range ops {
			expectReady(g, client.ObjectKeyFromObject(op))
			g.Expect(crd(name)).To(Succeed())
		}
	}, timeout, interval).Should(Succeed())

	for _, op := range ops {
		g.Expect(mgmt().Delete(ctx, op)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for name := range ops {
			// Helm's release records are gone: both releases were uninstalled.
			records := &corev1.SecretList{}
			g.Expect(env.Downstreams["dev"].Client.List(ctx, records, client.InNamespace("crd-"+name), client.MatchingLabels{"owner": "helm"})).To(Succeed())
			g.Expect(records.Items).To(BeEmpty(), name)
		}
		g.Expect(apierrors.IsNotFound(crd("drops"))).To(BeTrue(), "deleteCRDResources: the CRD goes with the release")
		g.Expect(apierrors.IsNotFound(crd("targetdrops"))).To(BeTrue(), "deleteCRDResources on the target")
	}, timeout, interval).Should(Succeed())
	g.Expect(crd("keeps")).To(Succeed(), "the CRD is kept by default")
}
