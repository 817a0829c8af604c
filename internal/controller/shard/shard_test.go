package shard

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/helmops/helmops/api/v1alpha1"
)

func TestShardMembership(t *testing.T) {
	labelled := func(l map[string]string) *v1alpha1.HelmOp {
		return &v1alpha1.HelmOp{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: l}}
	}
	cases := []struct {
		name   string
		labels map[string]string
		id     string
		want   bool
	}{
		{"unlabelled object, unsharded controller", nil, "", true},
		{"unlabelled object, sharded controller", nil, "a", false},
		{"labelled object, its shard", map[string]string{v1alpha1.ShardLabel: "a"}, "a", true},
		{"labelled object, other shard", map[string]string{v1alpha1.ShardLabel: "a"}, "b", false},
		{"labelled object, unsharded controller", map[string]string{v1alpha1.ShardLabel: "a"}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := labelled(tc.labels)
			g.Expect(Matches(obj, tc.id)).To(Equal(tc.want))
			g.Expect(Predicate(tc.id).Create(event.CreateEvent{Object: obj})).To(Equal(tc.want))
			g.Expect(Selector(tc.id).Matches(labels.Set(obj.Labels))).To(Equal(tc.want))
		})
	}
}
