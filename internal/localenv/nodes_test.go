package localenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func podTemplate(app string, labels map[string]string) corev1.PodTemplateSpec {
	l := map[string]string{"app": app}
	for k, v := range labels {
		l[k] = v
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: l},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
	}
}

// TestSimulatedNodesRunWorkloads checks that with nodes, Deployments and StatefulSets become
// Available, Jobs complete, Pods spread over distinct Nodes when asked to, and a crash-loop Pod never gets Ready.
func TestSimulatedNodesRunWorkloads(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp, err := Start(ctx, Options{Name: "nodes", Nodes: 3})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = cp.Stop() })

	nodes := &corev1.NodeList{}
	g.Expect(cp.Client.List(ctx, nodes)).To(Succeed())
	g.Expect(nodes.Items).To(HaveLen(3))
	cpus := map[string]bool{}
	for _, n := range nodes.Items {
		cpus[n.Status.Capacity.Cpu().String()] = true
	}
	g.Expect(cpus).To(HaveLen(3), "each Node has its own capacity")

	ns := "default"
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	// A hard spread over hostnames, as charts write it: the default spreading is only a score, and
	// with Nodes of different capacity the scheduler may well put every replica on one Node.
	webTemplate := podTemplate("web", nil)
	webTemplate.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel("web"),
	}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: sel("web"), Template: webTemplate}}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Selector: sel("db"), Template: podTemplate("db", nil)}}
	jobTemplate := podTemplate("job", nil)
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: ns}, Spec: batchv1.JobSpec{Template: jobTemplate}}
	crash := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "crash", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: sel("crash"),
			Template: podTemplate("crash", map[string]string{CrashLoopLabel: "true"})}}
	for _, o := range []client.Object{deploy, sts, job, crash} {
		g.Expect(cp.Client.Create(ctx, o)).To(Succeed())
	}

	g.Eventually(func(g Gomega) {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
		g.Expect(deploy.Status.AvailableReplicas).To(Equal(int32(3)))
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(sts), sts)).To(Succeed())
		g.Expect(sts.Status.AvailableReplicas).To(Equal(int32(2)))
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		g.Expect(job.Status.Succeeded).To(Equal(int32(1)))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	pods := &corev1.PodList{}
	g.Expect(cp.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"})).To(Succeed())
	onNodes := map[string]bool{}
	for _, p := range pods.Items {
		onNodes[p.Spec.NodeName] = true
	}
	g.Expect(onNodes).To(HaveLen(3), "a hard spread over hostnames puts one replica on each Node")

	g.Eventually(func(g Gomega) {
		g.Expect(cp.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": "crash"})).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(1))
		p := pods.Items[0]
		g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
		g.Expect(p.Status.ContainerStatuses).To(HaveLen(1))
		g.Expect(p.Status.ContainerStatuses[0].State.Waiting).NotTo(BeNil())
		g.Expect(p.Status.ContainerStatuses[0].State.Waiting.Reason).To(Equal("CrashLoopBackOff"))
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(crash), crash)).To(Succeed())
	g.Expect(crash.Status.AvailableReplicas).To(BeZero())
}

// BenchmarkStartControlPlane compares starting a control plane without and with simulated nodes
// (the scheduler, kwok, every workload controller and N Ready Nodes); stop-s is what Stop takes:
// go test ./internal/localenv/ -run XXX -bench StartControlPlane -benchtime 3x
func BenchmarkStartControlPlane(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var stopping time.Duration
			for i := 0; i < b.N; i++ {
				cp, err := Start(context.Background(), Options{Name: "bench", Nodes: n})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				t0 := time.Now()
				_ = cp.Stop()
				stopping += time.Since(t0)
				b.StartTimer()
			}
			b.ReportMetric(stopping.Seconds()/float64(b.N), "stop-s")
		})
	}
}
