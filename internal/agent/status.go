package agent

import (
	"context"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// updateStatus computes the pod's status from what the runtime has and
// writes it when it changed.
// It returns the pod as written, if it wrote.
func (a *Agent) updateStatus(ctx context.Context, pod *corev1.Pod, s *syncState) (*corev1.Pod, error) {
	status := a.podStatus(pod, s)
	s.phase = status.Phase
	if statusEqual(&pod.Status, status) {
		return nil, nil
	}
	update := pod.DeepCopy()
	update.Status = *status
	written, err := a.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// A newer pod is on its way to the worker; try again soon.
		s.wakeIn(200 * time.Millisecond)
		return nil, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return written, err
}

// statusEqual compares statuses without the timestamps that are set anew.
func statusEqual(old, cur *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(old, cur)
}

func (a *Agent) podStatus(pod *corev1.Pod, s *syncState) *corev1.PodStatus {
	now := metav1.Now()
	status := &corev1.PodStatus{
		HostIP:    a.cfg.NodeIP.String(),
		HostIPs:   []corev1.HostIP{{IP: a.cfg.NodeIP.String()}},
		StartTime: pod.Status.StartTime,
		QOSClass:  qosClass(pod),
	}
	if status.StartTime == nil {
		status.StartTime = &now
	}
	if pod.Spec.HostNetwork {
		status.PodIP = a.cfg.NodeIP.String()
	} else if s.st.sandboxIP != "" {
		status.PodIP = s.st.sandboxIP
	} else {
		status.PodIP = pod.Status.PodIP
	}
	if status.PodIP != "" {
		status.PodIPs = []corev1.PodIP{{IP: status.PodIP}}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		status.InitContainerStatuses = append(status.InitContainerStatuses, a.containerStatus(pod, c, s, true))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		status.ContainerStatuses = append(status.ContainerStatuses, a.containerStatus(pod, c, s, false))
	}
	status.Phase = podPhase(pod, status)
	if s.deadline {
		status.Phase, status.Reason = corev1.PodFailed, "DeadlineExceeded"
		status.Message = "Pod was active on the node longer than the specified deadline"
	}
	initialized := true
	for i, cs := range status.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			if cs.Started == nil || !*cs.Started {
				initialized = false
			}
			continue
		}
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
		}
	}
	containersReady := status.Phase == corev1.PodRunning
	for _, cs := range status.ContainerStatuses {
		if !cs.Ready {
			containersReady = false
		}
	}
	for i, cs := range status.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) && !cs.Ready {
			containersReady = false
		}
	}
	reason := func(ok bool, why string) string {
		if ok {
			return ""
		}
		return why
	}
	sandboxReady := s.st.ready && !isTerminal(status.Phase)
	if isTerminal(status.Phase) {
		// Succeeded and Failed pods are not ready, whatever ran last.
		containersReady = false
	}
	conds := []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: boolStatus(sandboxReady)},
		{Type: corev1.PodInitialized, Status: boolStatus(initialized), Reason: reason(initialized, "ContainersNotInitialized")},
		{Type: corev1.ContainersReady, Status: boolStatus(containersReady), Reason: reason(containersReady, "ContainersNotReady")},
		{Type: corev1.PodReady, Status: boolStatus(containersReady), Reason: reason(containersReady, "ContainersNotReady")},
	}
	if isTerminal(status.Phase) {
		conds[2].Reason, conds[3].Reason = "PodCompleted", "PodCompleted"
		if status.Phase == corev1.PodSucceeded {
			conds[1].Reason = "PodCompleted"
		}
	}
	// Conditions that others own (PodScheduled) stay; transition times
	// move only when a status changes.
	for _, old := range pod.Status.Conditions {
		mine := false
		for i := range conds {
			if conds[i].Type == old.Type {
				mine = true
				if conds[i].Status == old.Status {
					conds[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		if !mine {
			status.Conditions = append(status.Conditions, old)
		}
	}
	for i := range conds {
		if conds[i].LastTransitionTime.IsZero() {
			conds[i].LastTransitionTime = now
		}
	}
	status.Conditions = append(status.Conditions, conds...)
	if old := pod.Status; old.StartTime != nil {
		status.StartTime = old.StartTime
	}
	return status
}

func boolStatus(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// containerStatus reports one container: its newest instance's state and
// the one before as lastState.
func (a *Agent) containerStatus(pod *corev1.Pod, c *corev1.Container, s *syncState, initContainer bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(bool)}
	list := s.st.containers[c.Name]
	if len(list) == 0 {
		reason := "ContainerCreating"
		if initContainer || len(pod.Spec.InitContainers) > 0 && !initContainer {
			reason = "PodInitializing"
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
	} else {
		cur := list[0]
		cs.RestartCount = restarts(cur)
		cs.ContainerID = "skiff://" + cur.Id
		cs.ImageID = cur.ImageRef
		cs.State = runtimeState(pod, c, cur, a)
		if len(list) > 1 {
			cs.LastTerminationState = runtimeState(pod, c, list[1], a)
		} else if cs.State.Terminated == nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			cs.LastTerminationState = corev1.ContainerState{}
		}
		running := cs.State.Running != nil
		*cs.Started = running
		if p := a.prober(pod.UID, c.Name, startup); p != nil && running {
			*cs.Started = p.ok()
		}
		cs.Ready = running && *cs.Started
		if p := a.prober(pod.UID, c.Name, readiness); p != nil && cs.Ready {
			cs.Ready = p.ok()
		} else if c.ReadinessProbe != nil {
			cs.Ready = false // not probed yet
		}
		if cs.State.Terminated != nil && s.waiting[c.Name] == nil && cur.State == runtimeapi.ContainerState_CONTAINER_EXITED &&
			!initContainer && shouldRestart(pod.Spec.RestartPolicy, cur.ExitCode) {
			// About to restart: the kubelet shows it waiting with the
			// terminated instance as lastState.
			cs.LastTerminationState = cs.State
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		}
	}
	if w := s.waiting[c.Name]; w != nil {
		if cs.State.Terminated != nil {
			cs.LastTerminationState = cs.State
		}
		cs.State = corev1.ContainerState{Waiting: w}
		cs.Ready = false
		*cs.Started = false
	}
	if initContainer && !isSidecar(c) {
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
	}
	return cs
}

func runtimeState(pod *corev1.Pod, c *corev1.Container, st *runtimeapi.ContainerStatus, a *Agent) corev1.ContainerState {
	switch st.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, st.StartedAt))}}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		t := &corev1.ContainerStateTerminated{ExitCode: st.ExitCode, Reason: st.Reason,
			StartedAt: metav1.NewTime(time.Unix(0, st.StartedAt)), FinishedAt: metav1.NewTime(time.Unix(0, st.FinishedAt)),
			ContainerID: "skiff://" + st.Id}
		t.Message = terminationMessage(c, st)
		return corev1.ContainerState{Terminated: t}
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

// terminationMessage reads what the container wrote to its termination
// message file (at most 4 KiB), or with FallbackToLogsOnError the end of
// its log when it failed without writing one.
func terminationMessage(c *corev1.Container, st *runtimeapi.ContainerStatus) string {
	if f := st.Annotations[annotationTermFile]; f != "" {
		data, _ := os.ReadFile(f)
		if len(data) > 4096 {
			data = data[:4096]
		}
		if len(data) > 0 {
			return string(data)
		}
	}
	if c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && st.ExitCode != 0 && st.LogPath != "" {
		return tailLog(st.LogPath, 80, 2048)
	}
	return ""
}

// tailLog returns the last lines of a CRI log file's messages.
func tailLog(path string, lines, max int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	var b strings.Builder
	for _, l := range all {
		// "<time> <stream> <tag> <text>"
		parts := strings.SplitN(l, " ", 4)
		if len(parts) == 4 {
			b.WriteString(parts[3])
			if parts[2] == "F" {
				b.WriteByte('\n')
			}
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// podPhase is the phase as the kubelet computes it from the statuses.
func podPhase(pod *corev1.Pod, status *corev1.PodStatus) corev1.PodPhase {
	for i, cs := range status.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			continue
		}
		t := cs.State.Terminated
		if t != nil && t.ExitCode == 0 {
			continue
		}
		if t != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		if lt := cs.LastTerminationState.Terminated; cs.State.Waiting != nil && lt != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && lt.ExitCode != 0 {
			return corev1.PodFailed
		}
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, cs := range status.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}
