package localenv

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Simulated nodes are Node objects that kwok (sigs.k8s.io/kwok) keeps Ready and whose Pods it
// moves through their lifecycle: scheduled Pods become Running and Ready, Job Pods complete,
// deleted Pods go away. No container runs; node and pod IPs are status fields only.
//
// Failure on demand, for Pod templates (docs/local-environment.md):
//   - label CrashLoopLabel=true: the containers wait in CrashLoopBackOff and the Pod never gets
//     Ready (stages/pod-crash-loop.yaml);
//   - label KwokContainerFailedLabel=true: kwok's own chaos stage fails the containers and the
//     Pod ends Failed (a Job's Pods, so the Job fails).

// CrashLoopLabel on a Pod makes its containers wait in CrashLoopBackOff on a simulated node.
const CrashLoopLabel = "simulate.helmops.dev/crash-loop"

// CrashLoopMessageAnnotation overrides the waiting message of a CrashLoopLabel Pod.
const CrashLoopMessageAnnotation = "simulate.helmops.dev/message"

// KwokContainerFailedLabel on a Pod makes kwok fail its containers once it runs (phase Failed).
const KwokContainerFailedLabel = "pod-container-running-failed.stage.kwok.x-k8s.io"

// NodeLabel marks the simulated Nodes (label and annotation); kwok manages the Nodes annotated
// with it.
const NodeLabel = "kwok.x-k8s.io/node"

// StagesFile is kwok's stage file in the binary folder, written by hack/build-controlplane.sh from
// the stages the kwok module ships (node initialisation and heartbeat, the fast pod lifecycle,
// the pod chaos stages).
const StagesFile = "kwok-stages.yaml"

var nodeBinaries = []string{"kube-scheduler", "kwok", StagesFile}

//go:embed stages/pod-crash-loop.yaml
var crashLoopStage []byte

var zones = []string{"zone-a", "zone-b", "zone-c"}

func (cp *ControlPlane) startNodes(ctx context.Context) error {
	if cp.opts.Nodes <= 0 {
		return nil
	}
	if err := cp.startChild("kube-scheduler", "--kubeconfig="+cp.KubeconfigPath,
		"--leader-elect=false", "--secure-port=0", "--v=1"); err != nil {
		return err
	}
	own := filepath.Join(cp.dir, "helmops-stages.yaml")
	if err := os.WriteFile(own, crashLoopStage, 0o644); err != nil {
		return err
	}
	if err := cp.startChild("kwok", "--kubeconfig="+cp.KubeconfigPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+NodeLabel+"=fake",
		"--node-ip=127.0.0.1", "--cidr=127.1.0.0/16",
		"--config="+filepath.Join(cp.binDir, StagesFile), "--config="+own); err != nil {
		return err
	}
	for i := 1; i <= cp.opts.Nodes; i++ {
		name, err := cp.createNode(ctx, i)
		if err != nil {
			return err
		}
		cp.Nodes = append(cp.Nodes, name)
	}
	return cp.waitForNodesReady(ctx)
}

// createNode creates the i-th Node: distinct name, zone and capacity (4·i CPUs, 8·i GiB).
func (cp *ControlPlane) createNode(ctx context.Context, i int) (string, error) {
	name := fmt.Sprintf("%s-node-%d", cp.Name, i)
	zone := zones[(i-1)%len(zones)]
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Annotations: map[string]string{NodeLabel: "fake"},
		Labels: map[string]string{
			"kubernetes.io/hostname":           name,
			"kubernetes.io/os":                 "linux",
			"kubernetes.io/arch":               "amd64",
			"node.kubernetes.io/instance-type": fmt.Sprintf("sim-%dcpu", 4*i),
			"topology.kubernetes.io/zone":      zone,
			NodeLabel:                          "fake",
		},
	}}
	if err := cp.Client.Create(ctx, node); err != nil {
		return "", fmt.Errorf("control plane %s: creating Node %s: %w", cp.Name, name, err)
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(4*i), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dGi", 8*i)),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Status.Capacity, node.Status.Allocatable = resources, resources
	if err := cp.Client.Status().Patch(ctx, node, patch); err != nil {
		return "", fmt.Errorf("control plane %s: setting the capacity of Node %s: %w", cp.Name, name, err)
	}
	return name, nil
}

func (cp *ControlPlane) waitForNodesReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		notReady, err := cp.nodesNotReady(ctx)
		if err == nil && len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane %s: simulated nodes %v not Ready (see %s): %w", cp.Name, notReady,
				filepath.Join(cp.dir, "kwok.log"), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (cp *ControlPlane) nodesNotReady(ctx context.Context) ([]string, error) {
	var notReady []string
	for _, name := range cp.Nodes {
		node := &corev1.Node{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			return nil, err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			notReady = append(notReady, name)
		}
	}
	return notReady, nil
}
