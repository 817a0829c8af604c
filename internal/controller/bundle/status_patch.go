package bundle

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StatusPatch is a JSON merge patch of the status fields that changed since orig, like
// client.MergeFrom, so fields another writer owns (such as a Cluster's status.agent) are never
// sent. When it touches status.summary it always carries summary.ready and summary.desiredReady:
// the API requires both, and a merge patch holding only the changed count would be rejected
// against an object whose summary was never written.
func StatusPatch(orig client.Object) client.Patch {
	return statusPatch{from: client.MergeFrom(orig)}
}

type statusPatch struct{ from client.Patch }

func (p statusPatch) Type() types.PatchType { return types.MergePatchType }

func (p statusPatch) Data(obj client.Object) ([]byte, error) {
	data, err := p.from.Data(obj)
	if err != nil {
		return nil, err
	}
	var patch map[string]any
	if err := json.Unmarshal(data, &patch); err != nil {
		return nil, err
	}
	status, _ := patch["status"].(map[string]any)
	summary, _ := status["summary"].(map[string]any)
	if summary == nil {
		return data, nil
	}
	full, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var whole struct {
		Status struct {
			Summary struct {
				Ready        int `json:"ready"`
				DesiredReady int `json:"desiredReady"`
			} `json:"summary"`
		} `json:"status"`
	}
	if err := json.Unmarshal(full, &whole); err != nil {
		return nil, err
	}
	summary["ready"] = whole.Status.Summary.Ready
	summary["desiredReady"] = whole.Status.Summary.DesiredReady
	return json.Marshal(patch)
}
