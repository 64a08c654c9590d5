package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI labels and annotations that tie sandboxes and containers to pods,
// as the kubelet sets them.
const (
	labelPodName        = "io.kubernetes.pod.name"
	labelPodNamespace   = "io.kubernetes.pod.namespace"
	labelPodUID         = "io.kubernetes.pod.uid"
	labelContainerName  = "io.kubernetes.container.name"
	annotationRestarts  = "io.kubernetes.container.restartCount"
	annotationTermPath  = "io.kubernetes.container.terminationMessagePath"
	annotationTermFile  = "io.skiff.container.terminationMessageFile"
	annotationTermRules = "io.kubernetes.container.terminationMessagePolicy"
	annotationSandbox   = "io.skiff.container.sandbox"
)

// podState is what the runtime has of one pod.
type podState struct {
	sandbox    *runtimeapi.PodSandbox // newest
	sandboxIP  string
	ready      bool
	containers map[string][]*runtimeapi.ContainerStatus // by name, newest first
}

func (a *Agent) observe(ctx context.Context, uid types.UID) (*podState, error) {
	sel := map[string]string{labelPodUID: string(uid)}
	sbs, err := a.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	st := &podState{containers: map[string][]*runtimeapi.ContainerStatus{}}
	for _, sb := range sbs.Items {
		if st.sandbox == nil || sb.CreatedAt > st.sandbox.CreatedAt {
			st.sandbox = sb
		}
	}
	if st.sandbox != nil {
		st.ready = st.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
		if s, err := a.cfg.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: st.sandbox.Id}); err == nil && s.Status.Network != nil {
			st.sandboxIP = s.Status.Network.Ip
		}
	}
	cs, err := a.cfg.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Containers {
		s, err := a.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
		if err != nil {
			continue
		}
		name := c.Labels[labelContainerName]
		st.containers[name] = append(st.containers[name], s.Status)
	}
	for _, list := range st.containers {
		sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt > list[j].CreatedAt })
	}
	return st, nil
}

func restarts(s *runtimeapi.ContainerStatus) int32 {
	n, _ := strconv.Atoi(s.Annotations[annotationRestarts])
	return int32(n)
}

// syncPod moves one pod towards its spec and reports its status. It
// returns when it wants to be called again (0: at the next resync).
func (a *Agent) syncPod(ctx context.Context, pod *corev1.Pod) (time.Duration, *corev1.Pod, error) {
	if pod.DeletionTimestamp != nil {
		return 0, nil, a.terminate(ctx, pod)
	}
	st, err := a.observe(ctx, pod.UID)
	if err != nil {
		return 0, nil, err
	}
	if isTerminal(pod.Status.Phase) {
		// Finished pods keep their status; their sandbox goes.
		if st.sandbox != nil && st.ready {
			a.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: st.sandbox.Id})
		}
		return 0, nil, nil
	}
	s := &syncState{agent: a, pod: pod, st: st}
	if s.deadlineExceeded() {
		// The kubelet's DeadlineExceeded: everything stops, the pod fails.
		a.recorder.Eventf(pod, corev1.EventTypeNormal, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		a.stopContainers(ctx, pod, st, grace)
		if s.st, err = a.observe(ctx, pod.UID); err != nil {
			return 0, nil, err
		}
		s.deadline = true
	} else if err := s.run(ctx); err != nil {
		s.syncErr = err
	}
	a.syncProbes(pod, s.st)
	written, err := a.updateStatus(ctx, pod, s)
	if err != nil {
		return s.next, nil, err
	}
	if isTerminal(s.phase) && st.sandbox != nil {
		a.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: st.sandbox.Id})
	}
	return s.next, written, s.syncErr
}

func isTerminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// syncState carries one sync's findings to the status.
type syncState struct {
	agent   *Agent
	pod     *corev1.Pod
	st      *podState
	next    time.Duration
	syncErr error
	phase   corev1.PodPhase
	// waiting holds why a container is not running, by name.
	waiting map[string]*corev1.ContainerStateWaiting
	// deadline is set once activeDeadlineSeconds has run out.
	deadline bool
}

func (s *syncState) wakeIn(d time.Duration) {
	if s.next == 0 || d < s.next {
		s.next = d
	}
}

func (s *syncState) wait(name, reason, msg string) {
	if s.waiting == nil {
		s.waiting = map[string]*corev1.ContainerStateWaiting{}
	}
	s.waiting[name] = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
}

func (s *syncState) run(ctx context.Context) error {
	a, pod := s.agent, s.pod
	if !s.st.ready {
		if s.st.sandbox != nil {
			// The sandbox died: its containers go with it, and everything
			// starts again in a new one.
			a.recorder.Eventf(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
			// Stopped, not removed: its containers' records carry the
			// restart counts on into the new sandbox.
			if _, err := a.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.st.sandbox.Id}); err != nil {
				return err
			}
		}
		if wouldRestartNothing(pod, s.st) {
			return nil
		}
		if err := a.runSandbox(ctx, pod, s.st); err != nil {
			a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return err
		}
		st, err := a.observe(ctx, pod.UID)
		if err != nil {
			return err
		}
		s.st = st
	}
	volumes, err := a.cfg.Volumes.Setup(ctx, pod)
	if err != nil {
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", err)
		for _, c := range pod.Spec.Containers {
			s.wait(c.Name, "ContainerCreating", "")
		}
		s.wakeIn(2 * time.Second)
		return nil
	}
	// Init containers, one at a time; sidecars (restartPolicy Always) are
	// started and kept running.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		latest := s.latest(c.Name)
		if isSidecar(c) {
			if latest == nil || latest.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				if err := s.startContainer(ctx, c, volumes, true); err != nil {
					return err
				}
				if s.latest(c.Name) == nil || s.latest(c.Name).State != runtimeapi.ContainerState_CONTAINER_RUNNING {
					return nil
				}
			}
			continue
		}
		switch {
		case latest == nil:
			return s.startContainer(ctx, c, volumes, true)
		case latest.State == runtimeapi.ContainerState_CONTAINER_RUNNING || latest.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			return nil
		case latest.ExitCode == 0:
			continue
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return nil // the pod has failed
		default:
			return s.startContainer(ctx, c, volumes, true)
		}
	}
	defer s.removeStaleSandboxes(ctx)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		latest := s.latest(c.Name)
		switch {
		case latest == nil:
			if err := s.startContainer(ctx, c, volumes, false); err != nil {
				return err
			}
		case latest.State == runtimeapi.ContainerState_CONTAINER_EXITED && shouldRestart(pod.Spec.RestartPolicy, latest.ExitCode):
			if err := s.startContainer(ctx, c, volumes, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeStaleSandboxes removes the pod's earlier sandboxes once none of
// their containers is the latest of its name any more.
func (s *syncState) removeStaleSandboxes(ctx context.Context) {
	if s.st.sandbox == nil {
		return
	}
	sbs, err := s.agent.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(s.pod.UID)}}})
	if err != nil {
		return
	}
	inUse := map[string]bool{s.st.sandbox.Id: true}
	for _, list := range s.st.containers {
		if len(list) > 0 {
			inUse[list[0].Annotations[annotationSandbox]] = true
		}
	}
	for _, sb := range sbs.Items {
		if !inUse[sb.Id] {
			s.agent.cfg.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id})
		}
	}
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// wouldRestartNothing reports a pod whose sandbox is gone but that would
// run nothing in a new one: every container has ended for good.
func wouldRestartNothing(pod *corev1.Pod, st *podState) bool {
	if len(st.containers) == 0 {
		return false
	}
	for _, c := range pod.Spec.Containers {
		list := st.containers[c.Name]
		if len(list) == 0 || shouldRestart(pod.Spec.RestartPolicy, list[0].ExitCode) {
			return false
		}
	}
	return true
}

func (s *syncState) latest(name string) *runtimeapi.ContainerStatus {
	if list := s.st.containers[name]; len(list) > 0 {
		return list[0]
	}
	return nil
}

// startContainer pulls, creates and starts one container, or notes why
// it must wait (back-off, image pull failures).
func (s *syncState) startContainer(ctx context.Context, c *corev1.Container, volumes map[string]string, initContainer bool) error {
	a, pod := s.agent, s.pod
	prev := s.latest(c.Name)
	restartCount := int32(0)
	if prev != nil {
		restartCount = restarts(prev) + 1
		key := string(pod.UID) + "/" + c.Name
		if wait := a.restartDelay(key, prev); wait > 0 {
			s.wait(c.Name, "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				a.currentDelay(key), c.Name, pod.Name, pod.Namespace, pod.UID))
			a.recorder.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			s.wakeIn(wait)
			return nil
		}
	}
	imageRef, err := s.ensureImage(ctx, c)
	if err != nil {
		return nil // the waiting reason says why
	}
	if err := s.verifyNonRoot(ctx, c, imageRef); err != nil {
		s.wait(c.Name, "CreateContainerConfigError", err.Error())
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		s.wakeIn(10 * time.Second)
		return nil
	}
	cfg, err := a.containerConfig(pod, c, volumes, imageRef, restartCount, s.st.sandboxIP)
	if err != nil {
		s.wait(c.Name, "CreateContainerConfigError", err.Error())
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		s.wakeIn(5 * time.Second)
		return nil
	}
	cfg.Annotations[annotationSandbox] = s.st.sandbox.Id
	created, err := a.cfg.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: s.st.sandbox.Id, Config: cfg, SandboxConfig: a.sandboxConfig(pod, s.st.sandbox.Metadata.Attempt)})
	if err != nil {
		s.wait(c.Name, "CreateContainerError", err.Error())
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return err
	}
	a.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if _, err := a.cfg.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		s.wait(c.Name, "RunContainerError", err.Error())
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return err
	}
	a.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := a.runHook(hctx, pod, created.ContainerId, c.Lifecycle.PostStart)
		cancel()
		if err != nil {
			a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %v", err)
			a.cfg.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: created.ContainerId})
		}
	}
	// Older instances than the one before go; the previous one stays for
	// `kubectl logs --previous`.
	if list := s.st.containers[c.Name]; len(list) > 1 {
		for _, old := range list[1:] {
			a.cfg.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: old.Id})
		}
	}
	st, err := a.observe(ctx, pod.UID)
	if err != nil {
		return err
	}
	s.st = st
	return nil
}

// restartDelay returns how long the restart of a container that ended
// (prev) must still wait, as the kubelet's back-off: the first restart is
// at once, then 10 s after the last exit, doubling to 5 min; ten minutes of
// running forgive it all.
func (a *Agent) restartDelay(key string, prev *runtimeapi.ContainerStatus) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.backoff[key]
	finished := time.Unix(0, prev.FinishedAt)
	if b == nil || finished.Sub(time.Unix(0, prev.StartedAt)) > backoffReset {
		a.backoff[key] = &backoff{delay: backoffInitial}
		return 0
	}
	if wait := time.Until(finished.Add(b.delay)); wait > 0 {
		return wait
	}
	b.delay = min(2*b.delay, backoffMax)
	return 0
}

func (a *Agent) currentDelay(key string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.backoff[key]; b != nil {
		return b.delay
	}
	return 0
}

// ensureImage applies the pull policy and returns the image's id.
func (s *syncState) ensureImage(ctx context.Context, c *corev1.Container) (string, error) {
	a, pod := s.agent, s.pod
	spec := &runtimeapi.ImageSpec{Image: c.Image}
	present, err := a.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil {
		return "", err
	}
	policy := c.ImagePullPolicy
	if present.Image != nil && policy != corev1.PullAlways {
		return present.Image.Id, nil
	}
	if policy == corev1.PullNever {
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		s.wait(c.Name, "ErrImageNeverPull", msg)
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
		s.wakeIn(10 * time.Second)
		return "", errors.New(msg)
	}
	key := string(pod.UID) + "/" + c.Name + "/pull"
	a.mu.Lock()
	b := a.backoff[key]
	a.mu.Unlock()
	if b != nil && time.Now().Before(b.until) {
		s.wait(c.Name, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", c.Image))
		a.recorder.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
		s.wakeIn(time.Until(b.until))
		return "", errors.New("image pull back-off")
	}
	a.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := time.Now()
	pulled, err := a.cfg.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec})
	if err != nil {
		a.mu.Lock()
		if b == nil {
			b = &backoff{}
			a.backoff[key] = b
		}
		b.delay = min(max(2*b.delay, backoffInitial), backoffMax)
		b.until = time.Now().Add(b.delay)
		a.mu.Unlock()
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		s.wait(c.Name, "ErrImagePull", msg)
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "%s", msg)
		s.wakeIn(time.Second) // then reported as ImagePullBackOff until the next try
		return "", err
	}
	a.mu.Lock()
	delete(a.backoff, key)
	a.mu.Unlock()
	a.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	return pulled.ImageRef, nil
}

// terminate runs a deleted pod's shutdown within its grace period, then
// removes the pod from the API.
func (a *Agent) terminate(ctx context.Context, pod *corev1.Pod) error {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	}
	a.killPod(ctx, pod.UID, pod, grace)
	zero := int64(0)
	err := a.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// killPod stops a pod's containers (preStop hooks first, then the stop
// signal and, after grace seconds, SIGKILL), then its sandbox, volumes
// and files.
func (a *Agent) killPod(ctx context.Context, uid types.UID, pod *corev1.Pod, grace int64) {
	if st, err := a.observe(ctx, uid); err == nil {
		a.stopContainers(ctx, pod, st, grace)
	}
	a.stopProbes(uid)
	a.removeSandboxes(ctx, uid)
	if err := a.cfg.Volumes.Teardown(uid); err != nil {
		a.log.Warn("tear down volumes", "pod", uid, "err", err)
	} else {
		os.RemoveAll(a.podDir(uid))
	}
	a.mu.Lock()
	for key := range a.backoff {
		if len(key) > len(uid) && key[:len(uid)] == string(uid) {
			delete(a.backoff, key)
		}
	}
	a.mu.Unlock()
}

func (a *Agent) removeSandboxes(ctx context.Context, uid types.UID) {
	sbs, err := a.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(uid)}}})
	if err != nil {
		return
	}
	for _, sb := range sbs.Items {
		a.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id})
		a.cfg.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id})
	}
}

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.DataDir, "pods", string(uid))
}

// verifyNonRoot refuses a container whose runAsNonRoot the user it would
// run as breaks, with the kubelet's messages.
func (s *syncState) verifyNonRoot(ctx context.Context, c *corev1.Container, imageRef string) error {
	pod := s.pod
	nonRoot, uid := false, (*int64)(nil)
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsNonRoot != nil {
			nonRoot = *psc.RunAsNonRoot
		}
		uid = psc.RunAsUser
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
	}
	if !nonRoot {
		return nil
	}
	if uid == nil {
		st, err := s.agent.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: imageRef}})
		if err != nil || st.Image == nil {
			return fmt.Errorf("container %s: cannot read the image's user to verify runAsNonRoot", c.Name)
		}
		if st.Image.Uid == nil {
			if st.Image.Username != "" {
				return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)",
					st.Image.Username, pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
			}
			zero := int64(0) // no user in the image: root
			uid = &zero
		} else {
			uid = &st.Image.Uid.Value
		}
	}
	if *uid == 0 {
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)",
			pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
	}
	return nil
}

// deadlineExceeded reports a pod past its activeDeadlineSeconds, and
// otherwise asks to be woken when it will be.
func (s *syncState) deadlineExceeded() bool {
	pod := s.pod
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return false
	}
	left := time.Until(pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second))
	if left > 0 {
		s.wakeIn(left)
		return false
	}
	return true
}

// stopContainers stops a pod's running containers at once: preStop hooks
// first, then the stop signal and, when grace seconds have passed, SIGKILL.
func (a *Agent) stopContainers(ctx context.Context, pod *corev1.Pod, st *podState, grace int64) {
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	done := make(chan struct{}, len(st.containers))
	n := 0
	for name, list := range st.containers {
		if list[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		n++
		go func(name string, c *runtimeapi.ContainerStatus) {
			defer func() { done <- struct{}{} }()
			if pod != nil {
				a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
				a.runPreStop(ctx, pod, name, c.Id, deadline)
			}
			left := int64(math.Ceil(time.Until(deadline).Seconds()))
			a.cfg.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: max(left, 0)})
		}(name, list[0])
	}
	for range n {
		<-done
	}
}
