package agent

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/agent/kubeletapi"
)

// kubeletPods answers the kubelet API's lookups from CRI.
type kubeletPods struct{ rt Runtime }

func (k kubeletPods) Container(ctx context.Context, namespace, pod, container string, previous bool) (string, string, error) {
	list, err := k.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{labelPodNamespace: namespace, labelPodName: pod, labelContainerName: container}}})
	if err != nil {
		return "", "", err
	}
	cs := list.Containers
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt > cs[j].CreatedAt })
	i := 0
	if previous {
		i = 1
	}
	if len(cs) <= i {
		if previous {
			return "", "", fmt.Errorf("previous terminated container %q in pod %q not found: %w", container, pod, kubeletapi.ErrNotFound)
		}
		return "", "", fmt.Errorf("container %q in pod %q is waiting to start: ContainerCreating", container, pod)
	}
	st, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cs[i].Id})
	if err != nil {
		return "", "", err
	}
	return cs[i].Id, st.Status.LogPath, nil
}

func (k kubeletPods) Running(ctx context.Context, id string) bool {
	st, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	return err == nil && st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING
}

func (k kubeletPods) Sandbox(ctx context.Context, namespace, pod string) (string, types.UID, error) {
	list, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{labelPodNamespace: namespace, labelPodName: pod}}})
	if err != nil {
		return "", "", err
	}
	if len(list.Items) == 0 {
		return "", "", fmt.Errorf("pod %s/%s has no running sandbox: %w", namespace, pod, kubeletapi.ErrNotFound)
	}
	sb := list.Items[0]
	return sb.Id, types.UID(sb.Metadata.Uid), nil
}
