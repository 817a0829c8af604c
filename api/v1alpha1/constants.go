package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. Each condition has exactly one writer.
const (
	// AcceptedCondition (HelmOp) is True when the spec is valid, the credentials were found and a
	// version was resolved, so a Bundle could be written.
	AcceptedCondition = "Accepted"
	// PolledCondition (HelmOp) is True when the last poll of the repository succeeded. It is set
	// only while polling applies.
	PolledCondition = "Polled"
	// NewerVersionAvailableCondition (HelmOp) is True when the repository offers a stable version
	// newer than the resolved one that the version constraint excludes (status.latestAvailableVersion);
	// it is absent otherwise. It is informational: it changes neither Ready nor what is deployed.
	NewerVersionAvailableCondition = "NewerVersionAvailable"
	// ReadyCondition (all kinds) is True when the object is fully deployed and healthy.
	ReadyCondition = "Ready"
	// ReconcilingCondition (kstatus) is True while the controller is still working toward the spec.
	ReconcilingCondition = "Reconciling"
	// StalledCondition (kstatus) is True when the controller cannot progress until the spec changes.
	StalledCondition = "Stalled"
	// TargetedCondition (Bundle) is True when BundleDeployments could be computed for the targets
	// and the repository secret could be copied. On a BundleDeployment the bundle controller
	// writes it False when it cannot update that deployment (a values template fails for the
	// cluster, a downstreamResources entry cannot be copied) and removes it once it can.
	TargetedCondition = "Targeted"
	// InstalledCondition (BundleDeployment) is True when the chart was downloaded and Helm accepted it.
	InstalledCondition = "Installed"
	// DeployedCondition (BundleDeployment) is True when the release for the current deploymentID
	// is deployed.
	DeployedCondition = "Deployed"
	// MonitoredCondition (BundleDeployment) is True when the agent could check the release's
	// resources for readiness and drift.
	MonitoredCondition = "Monitored"
	// AgentUpToDateCondition (Cluster) is True when the cluster's agent reports the controller's
	// own helmops version, False (reason VersionSkew) when it reports another. It is absent until
	// the agent reported a version.
	AgentUpToDateCondition = "AgentUpToDate"
)

// Condition reasons.
const (
	ReasonSucceeded = "Succeeded"
	// ReasonFieldsNotApplicable (event) names fields of a HelmOp that only apply to bundles
	// built from git; they are accepted and ignored.
	ReasonFieldsNotApplicable = "FieldsNotApplicable"
	// ReasonOutsideConstraint (NewerVersionAvailable) says the constraint excludes the newer version.
	ReasonOutsideConstraint = "OutsideConstraint"
	ReasonProgressing       = "Progressing"
	ReasonInvalidSpec       = "InvalidSpec"
	// ReasonInvalidValues: the values templates of a HelmOp fail for some cluster.
	ReasonInvalidValues     = "InvalidValues"
	ReasonInvalidConstraint = "InvalidConstraint"
	ReasonNoMatchingVersion = "NoMatchingVersion"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonInvalidSecret     = "InvalidSecret"
	ReasonResolveFailed     = "ResolveFailed"
	ReasonPollFailed        = "PollFailed"
	ReasonBundleConflict    = "BundleConflict"
	// ReasonPolicyViolation (HelmOp Accepted, Stalled; event): a Policy of the namespace refuses
	// a field of the HelmOp.
	ReasonPolicyViolation   = "PolicyViolation"
	ReasonNotAccepted       = "NotAccepted"
	ReasonBundleNotReady    = "BundleNotReady"
	ReasonNoTargets         = "NoTargets"
	ReasonPaused            = "Paused"
	ReasonDeleting          = "Deleting"
	ReasonDownloadFailed    = "DownloadFailed"
	ReasonInstallFailed     = "InstallFailed"
	ReasonUpgradeFailed     = "UpgradeFailed"
	ReasonResourcesNotReady = "ResourcesNotReady"
	ReasonModified          = "Modified"
	ReasonAgentNotSeen      = "AgentNotSeen"
	ReasonAgentSeen         = "AgentSeen"
	ReasonWaitingForAgent   = "WaitingForAgent"
	// ReasonSameVersion and ReasonVersionSkew (Cluster AgentUpToDate) compare the agent's
	// version with the controller's.
	ReasonSameVersion           = "SameVersion"
	ReasonVersionSkew           = "VersionSkew"
	ReasonClustersNotReady      = "ClustersNotReady"
	ReasonCredentialsCopyFailed = "CredentialsCopyFailed"
	// ReasonDownstreamResourceNotFound (Bundle, BundleDeployment Targeted, HelmOp Ready): a
	// downstreamResources entry names a Secret or ConfigMap its namespace does not hold.
	ReasonDownstreamResourceNotFound = "DownstreamResourceNotFound"
	// ReasonDownstreamResourceRefused: a downstreamResources entry names a Secret helmops never
	// copies (a service account token), or its copy is blocked by an object helmops does not
	// manage.
	ReasonDownstreamResourceRefused = "DownstreamResourceRefused"
	// ReasonDownstreamCopyFailed (BundleDeployment): the agent could not write the copies of
	// downstreamResources into the release namespace.
	ReasonDownstreamCopyFailed = "DownstreamCopyFailed"
	// ReasonReleaseConflict (BundleDeployment Installed, Deployed, Ready) says the Helm release
	// the BundleDeployment names was installed by another BundleDeployment (or by something
	// else): the agent neither upgrades nor uninstalls it.
	ReasonReleaseConflict = "ReleaseConflict"
	// ReasonChartDigestMismatch (BundleDeployment Installed, Deployed, Ready) says the chart the
	// agent downloaded has other content than the controller resolved (the Bundle's
	// helmOpChartDigest): the agent installs nothing from it.
	ReasonChartDigestMismatch = "ChartDigestMismatch"
	// ReasonTransientError: a call to the API server failed and is retried with backoff; what it
	// would have observed keeps its last value.
	ReasonTransientError = "TransientError"
	// ReasonRolloutHalted (Bundle and HelmOp Ready) says clusters failed with the new
	// deployment, so it reaches no further cluster.
	ReasonRolloutHalted = "RolloutHalted"
	// ReasonRollingOut (Bundle and HelmOp Ready) says the rollout holds clusters back for its
	// strategy or for dependencies.
	ReasonRollingOut = "RollingOut"
)

// Labels, annotations, finalizers and types shared by the controller and the agent.
const (
	// HelmOpLabel on a Bundle or BundleDeployment names the HelmOp it came from.
	HelmOpLabel = "fleet.cattle.io/fleet-helm-name"
	// ShardLabel assigns an object to the controller started with the same --shard-id.
	ShardLabel = "fleet.cattle.io/shard-ref"
	// BundleNameLabel on a BundleDeployment names its Bundle.
	BundleNameLabel = "fleet.cattle.io/bundle-name"
	// BundleNamespaceLabel on a BundleDeployment names its Bundle's namespace.
	BundleNamespaceLabel = "fleet.cattle.io/bundle-namespace"
	// ClusterLabel on a BundleDeployment names its Cluster.
	ClusterLabel = "fleet.cattle.io/cluster"
	// ClusterNamespaceLabel on a BundleDeployment names its Cluster's namespace.
	ClusterNamespaceLabel = "fleet.cattle.io/cluster-namespace"
	// ManagedLabel marks objects helmops created for its own use, such as copied secrets and
	// cluster namespaces.
	ManagedLabel = "fleet.cattle.io/managed"

	// ReconcileRequestedAnnotation, set to any new value (helmops uses an RFC 3339 time), asks
	// for an immediate reconcile and poll. The controller records the value it handled in
	// status.lastHandledReconcileAt.
	ReconcileRequestedAnnotation = "fleet.cattle.io/reconcile-requested-at"

	// DeploymentIDSinceAnnotation on a BundleDeployment is when (RFC 3339) its spec was given
	// its current deployment ID; the rollout's progress deadline counts from it.
	DeploymentIDSinceAnnotation = "fleet.cattle.io/deployment-id-since"

	// HelmOpFinalizer lets the controller delete the Bundle before the HelmOp goes.
	HelmOpFinalizer = "fleet.cattle.io/helmop-finalizer"
	// BundleDeploymentFinalizer lets the agent uninstall the release before the
	// BundleDeployment goes.
	BundleDeploymentFinalizer = "fleet.cattle.io/bundle-deployment-finalizer"
	// BundleFinalizer holds a Bundle until its BundleDeployments are gone. The HelmOp controller
	// creates its Bundles with it, which saves the bundle controller a patch per Bundle.
	BundleFinalizer = "fleet.cattle.io/bundle-finalizer"
	// ClusterFinalizer lets the controller delete the cluster namespace.
	ClusterFinalizer = "fleet.cattle.io/cluster-finalizer"

	// BundleDeploymentOwnershipLabel on a Secret or ConfigMap copied downstream from
	// downstreamResources names the BundleDeployment it was copied for (Fleet's label).
	BundleDeploymentOwnershipLabel = "fleet.cattle.io/bundledeployment"
	// DownstreamResourceAnnotation on a copy of a downstreamResources entry is the entry it
	// copies, "Secret/<name>" or "ConfigMap/<name>". Upstream, in a cluster namespace, it tells the
	// copy from a repository secret copy; downstream it marks what the agent may update or delete.
	DownstreamResourceAnnotation = "fleet.cattle.io/downstream-resource"
	// ClusterNamespaceAnnotation on a copy made downstream names the cluster namespace of the
	// BundleDeployment it was copied for.
	ClusterNamespaceAnnotation = "fleet.cattle.io/cluster-namespace"

	// SecretTypeHelmOpsAccess is the type of repository secrets copied to cluster namespaces.
	SecretTypeHelmOpsAccess = "fleet.cattle.io/bundle-helmops-access/v1alpha1"

	// DefaultClusterGroup is the group a HelmOp without targets deploys to.
	DefaultClusterGroup = "default"
	// DefaultMaxHistory is the number of release revisions kept when maxHistory is 0.
	DefaultMaxHistory = 5
	// DefaultTimeout is Helm's wait timeout when timeoutSeconds is 0.
	DefaultTimeout = 5 * time.Minute
)

// PollingEvery is the configured polling interval, 0 when polling is off.
func (h *HelmOp) PollingEvery() time.Duration {
	if h == nil || h.Spec.PollingInterval == nil || h.Spec.PollingInterval.Duration < 0 {
		return 0
	}
	return h.Spec.PollingInterval.Duration
}

// HelmOrEmpty returns the helm options, never nil.
func (o *BundleDeploymentOptions) HelmOrEmpty() HelmOptions {
	if o == nil || o.Helm == nil {
		return HelmOptions{}
	}
	return *o.Helm
}

// CreatesNamespace reports whether the release namespace should be created (default true).
func (o *BundleDeploymentOptions) CreatesNamespace() bool {
	return o == nil || o.CreateNamespace == nil || *o.CreateNamespace
}

// Condition returns the condition of that type, or nil.
func (h *HelmOp) Condition(t string) *metav1.Condition {
	if h == nil {
		return nil
	}
	return meta.FindStatusCondition(h.Status.Conditions, t)
}

// Condition returns the condition of that type, or nil.
func (b *Bundle) Condition(t string) *metav1.Condition {
	if b == nil {
		return nil
	}
	return meta.FindStatusCondition(b.Status.Conditions, t)
}

// Condition returns the condition of that type, or nil.
func (bd *BundleDeployment) Condition(t string) *metav1.Condition {
	if bd == nil {
		return nil
	}
	return meta.FindStatusCondition(bd.Status.Conditions, t)
}

// Condition returns the condition of that type, or nil.
func (c *Cluster) Condition(t string) *metav1.Condition {
	if c == nil {
		return nil
	}
	return meta.FindStatusCondition(c.Status.Conditions, t)
}
