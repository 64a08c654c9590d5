package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func createPod(t *testing.T, c kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	if pod.Spec.NodeName == "" {
		pod.Spec.NodeName = "e2e-node"
	}
	if _, err := c.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func shPod(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", script}}}}}
}

func waiting(p *corev1.Pod, reason string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == reason {
			return true
		}
	}
	return false
}

func TestPodWaitingReasonsOOMAndLimits(t *testing.T) {
	s, c := startAgentServer(t)
	// An image no registry has (a loopback port that refuses): ErrImagePull,
	// then ImagePullBackOff.
	pull := shPod("nopull", "true", corev1.RestartPolicyAlways)
	pull.Spec.Containers[0].Image = "127.0.0.1:1/missing:1"
	createPod(t, c, pull)
	// A container that fails at once, again and again.
	createPod(t, c, shPod("crash", "exit 1", corev1.RestartPolicyAlways))
	// Past a 64Mi limit.
	oom := shPod("oom", "tail /dev/zero", corev1.RestartPolicyNever)
	lim := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")}
	oom.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: lim, Requests: lim}
	createPod(t, c, oom)
	// Limits in the cgroup, and the QoS class.
	limited := shPod("limited", "sleep 3600", corev1.RestartPolicyAlways)
	limited.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: lim, Requests: lim}
	createPod(t, c, limited)
	// Past its activeDeadlineSeconds.
	late := shPod("late", "sleep 3600", corev1.RestartPolicyAlways)
	two, one := int64(2), int64(1)
	late.Spec.ActiveDeadlineSeconds, late.Spec.TerminationGracePeriodSeconds = &two, &one
	createPod(t, c, late)
	// runAsNonRoot with an image that runs as root.
	yes := true
	rootish := shPod("rootish", "sleep 3600", corev1.RestartPolicyAlways)
	rootish.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &yes}
	createPod(t, c, rootish)

	// CrashLoopBackOff, with a delay that grows: 10s, then 20s.
	cr := waitPod(t, c, "default", "crash", 30*time.Second, "CrashLoopBackOff", func(p *corev1.Pod) bool { return waiting(p, "CrashLoopBackOff") })
	if msg := cr.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "back-off 10s") {
		t.Errorf("first back-off message %q, want back-off 10s", msg)
	}
	if cr.Status.ContainerStatuses[0].LastTerminationState.Terminated == nil {
		t.Errorf("crash: no lastState.terminated: %+v", cr.Status.ContainerStatuses[0])
	}
	waitPod(t, c, "default", "nopull", 30*time.Second, "ErrImagePull", func(p *corev1.Pod) bool { return waiting(p, "ErrImagePull") })
	p := waitPod(t, c, "default", "nopull", 30*time.Second, "ImagePullBackOff", func(p *corev1.Pod) bool { return waiting(p, "ImagePullBackOff") })
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("nopull phase = %s, want Pending", p.Status.Phase)
	}

	o := waitPod(t, c, "default", "oom", 60*time.Second, "OOMKilled", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := o.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "OOMKilled" {
		t.Errorf("oom: terminated = %+v, want reason OOMKilled", term)
	}
	if o.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("oom: qosClass = %s, want Guaranteed", o.Status.QOSClass)
	}

	l := waitPod(t, c, "default", "limited", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	id := strings.TrimPrefix(l.Status.ContainerStatuses[0].ContainerID, "skiff://")
	st, err := criClient(t, s).ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.ReadFile("/proc/" + st.Info["pid"] + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var memPath string
	for _, line := range strings.Split(string(cg), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(parts[1], "memory") {
			memPath = parts[2]
		}
	}
	limit, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", memPath, "memory.limit_in_bytes"))
	if err != nil {
		t.Fatalf("memory cgroup of the container (%q): %v", memPath, err)
	}
	if strings.TrimSpace(string(limit)) != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", limit, 64<<20)
	}
	if !strings.Contains(memPath, "/kubepods/pod"+string(l.UID)+"/") {
		t.Errorf("container cgroup %s is not under its pod's Guaranteed cgroup", memPath)
	}
	podLimit, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", filepath.Dir(memPath), "memory.limit_in_bytes"))
	if err != nil || strings.TrimSpace(string(podLimit)) != strconv.Itoa(64<<20) {
		t.Errorf("pod cgroup memory.limit_in_bytes = %s (%v), want %d", podLimit, err, 64<<20)
	}

	lt := waitPod(t, c, "default", "late", 30*time.Second, "Failed by its deadline", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if lt.Status.Reason != "DeadlineExceeded" {
		t.Errorf("late: reason %q, want DeadlineExceeded", lt.Status.Reason)
	}
	ro := waitPod(t, c, "default", "rootish", 30*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool { return waiting(p, "CreateContainerConfigError") })
	if msg := ro.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "container has runAsNonRoot and image will run as root") {
		t.Errorf("rootish: %q", msg)
	}

	cr = waitPod(t, c, "default", "crash", 30*time.Second, "a longer back-off", func(p *corev1.Pod) bool {
		return waiting(p, "CrashLoopBackOff") && strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Message, "back-off 20s")
	})
	if n := cr.Status.ContainerStatuses[0].RestartCount; n < 2 {
		t.Errorf("restartCount = %d after two back-offs", n)
	}
}

func TestProbes(t *testing.T) {
	_, c := startAgentServer(t)
	exec := func(cmd string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", cmd}}},
			PeriodSeconds: 1, FailureThreshold: 1}
	}
	notReady := shPod("notready", "sleep 3600", corev1.RestartPolicyAlways)
	notReady.Spec.Containers[0].ReadinessProbe = exec("false")
	createPod(t, c, notReady)
	// Alive for three seconds, then the liveness probe fails.
	dies := shPod("dies", "touch /tmp/alive; (sleep 3; rm /tmp/alive) & sleep 3600", corev1.RestartPolicyAlways)
	dies.Spec.Containers[0].LivenessProbe = exec("test -f /tmp/alive")
	// sh as PID 1 ignores SIGTERM: the restart waits out the grace period.
	one := int64(1)
	dies.Spec.TerminationGracePeriodSeconds = &one
	createPod(t, c, dies)
	// Slow to start: its liveness probe would fail for 4s, but the startup
	// probe holds it back until the container is up.
	slow := shPod("slow", "sleep 4; touch /tmp/up; sleep 3600", corev1.RestartPolicyAlways)
	slow.Spec.Containers[0].LivenessProbe = exec("test -f /tmp/up")
	slow.Spec.Containers[0].ReadinessProbe = exec("test -f /tmp/up")
	startup := exec("test -f /tmp/up")
	startup.FailureThreshold = 20
	slow.Spec.Containers[0].StartupProbe = startup
	createPod(t, c, slow)

	// httpGet readiness (the page appears after 2s) and tcpSocket liveness.
	web := shPod("webready", "mkdir -p /www; httpd -p 8080 -h /www; sleep 2; echo ok > /www/ready; sleep 3600", corev1.RestartPolicyAlways)
	web.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1}
	web.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1, InitialDelaySeconds: 1}
	createPod(t, c, web)
	waitPod(t, c, "default", "dies", 30*time.Second, "a liveness restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	w := waitPod(t, c, "default", "webready", 30*time.Second, "Ready through its httpGet probe", podReady)
	if n := w.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("webready: restartCount %d: its tcpSocket liveness probe failed", n)
	}
	if time.Since(w.Status.StartTime.Time) < 2*time.Second {
		t.Errorf("webready was Ready before its page existed")
	}
	s := waitPod(t, c, "default", "slow", 30*time.Second, "Ready", podReady)
	if n := s.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("slow: restartCount = %d, want 0 (the startup probe holds liveness back)", n)
	}
	// Long after its start, the pod with the failing readiness probe runs on,
	// not ready and never restarted.
	nr := waitPod(t, c, "default", "notready", 10*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if podReady(nr) || nr.Status.ContainerStatuses[0].Ready {
		t.Errorf("notready is Ready")
	}
	if n := nr.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("notready: restartCount = %d, want 0", n)
	}
	if nr.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("notready: not running: %+v", nr.Status.ContainerStatuses[0].State)
	}
}

func TestInitContainersRunInOrderAndSidecarsKeepRunning(t *testing.T) {
	_, c := startAgentServer(t)
	always := corev1.ContainerRestartPolicyAlways
	shared := []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "init"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{
				{Name: "first", Image: testImage, VolumeMounts: shared, Command: []string{"sh", "-c", "sleep 0.5; echo first >> /shared/order"}},
				{Name: "second", Image: testImage, VolumeMounts: shared, Command: []string{"sh", "-c", "echo second >> /shared/order"}},
				{Name: "sidecar", Image: testImage, VolumeMounts: shared, RestartPolicy: &always,
					Command: []string{"sh", "-c", "echo sidecar >> /shared/order; sleep 3600"}},
			},
			Containers: []corev1.Container{{Name: "app", Image: testImage, VolumeMounts: shared,
				Command: []string{"sh", "-c", "echo app >> /shared/order; sleep 3600"}}},
		}}
	createPod(t, c, pod)
	p := waitPod(t, c, "default", "init", 60*time.Second, "Running and Initialized", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	cond := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range p.Status.Conditions {
		cond[c.Type] = c.Status
	}
	if cond[corev1.PodInitialized] != corev1.ConditionTrue {
		t.Errorf("Initialized = %s", cond[corev1.PodInitialized])
	}
	ics := p.Status.InitContainerStatuses
	if len(ics) != 3 || ics[0].State.Terminated == nil || ics[1].State.Terminated == nil ||
		ics[0].State.Terminated.Reason != "Completed" || ics[1].State.Terminated.Reason != "Completed" {
		t.Fatalf("init container statuses: %+v", ics)
	}
	if !ics[0].State.Terminated.FinishedAt.Time.Before(ics[1].State.Terminated.StartedAt.Time.Add(time.Second)) {
		t.Errorf("second started before first finished")
	}
	side := ics[2]
	if side.State.Running == nil {
		t.Fatalf("sidecar not running: %+v", side.State)
	}
	app := p.Status.ContainerStatuses[0]
	if app.State.Running == nil || app.State.Running.StartedAt.Before(&side.State.Running.StartedAt) {
		t.Errorf("app started %v, before the sidecar %v", app.State.Running, side.State.Running.StartedAt)
	}
}

func TestDeletedPodGetsPreStopSIGTERMAndIsGoneWithinItsGracePeriod(t *testing.T) {
	_, c := startAgentServer(t)
	dir := t.TempDir()
	dirType := corev1.HostPathDirectory
	out := []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}
	grace := int64(20)
	polite := shPod("polite", "trap 'echo TERM >> /out/polite; exit 0' TERM; while true; do sleep 0.1; done", corev1.RestartPolicyAlways)
	polite.Spec.TerminationGracePeriodSeconds = &grace
	polite.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType}}}}
	polite.Spec.Containers[0].VolumeMounts = out
	polite.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo preStop >> /out/polite"}}}}
	createPod(t, c, polite)
	stubborn := shPod("stubborn", "trap '' TERM; while true; do sleep 0.1; done", corev1.RestartPolicyAlways)
	short := int64(2)
	stubborn.Spec.TerminationGracePeriodSeconds = &short
	createPod(t, c, stubborn)
	for _, name := range []string{"polite", "stubborn"} {
		waitPod(t, c, "default", name, 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	ctx := context.Background()
	gone := func(name string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for time.Since(start) < within {
			if _, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
				return time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("pod %s still there %v after its delete", name, within)
		return 0
	}
	if took := gone("polite", 20*time.Second); took > 10*time.Second {
		t.Errorf("polite pod took %v to go although it exits on SIGTERM", took)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "polite"))
	if string(data) != "preStop\nTERM\n" {
		t.Errorf("polite pod saw %q, want preStop then TERM", data)
	}
	if took := gone("stubborn", 15*time.Second); took < 2*time.Second {
		t.Errorf("stubborn pod went after %v, before its 2s grace period ended", took)
	}
}

func TestAgentRestartKeepsContainersAndANewSandboxReplacesAKilledOne(t *testing.T) {
	s, c := startAgentServer(t)
	createPod(t, c, shPod("keep", "sleep 3600", corev1.RestartPolicyAlways))
	p := waitPod(t, c, "default", "keep", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	cri := criClient(t, s)
	pidOf := func(id string) string {
		st, err := cri.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: strings.TrimPrefix(id, "skiff://"), Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		return st.Info["pid"]
	}
	before := pidOf(p.Status.ContainerStatuses[0].ContainerID)

	s.kill()
	s.restart()
	time.Sleep(2 * time.Second) // a restarted agent that killed it would have done so by now
	p = waitPod(t, c, "default", "keep", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	cri = criClient(t, s)
	if after := pidOf(p.Status.ContainerStatuses[0].ContainerID); after != before {
		t.Errorf("container pid %s → %s across an agent restart", before, after)
	}
	if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("restartCount = %d after an agent restart", n)
	}

	// Kill the pause process: the pod gets a new sandbox, its container
	// is restarted in it.
	sbs, err := cri.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(sbs.Items) != 1 {
		t.Fatalf("sandboxes: %v %v", sbs, err)
	}
	old := sbs.Items[0].Id
	sb, err := cri.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: old, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	pause, _ := strconv.Atoi(sb.Info["pid"])
	syscall.Kill(pause, syscall.SIGKILL)
	p = waitPod(t, c, "default", "keep", 30*time.Second, "running again in a new sandbox", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Status.ContainerStatuses[0].RestartCount == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	})
	sbs, _ = cri.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
	for _, sb := range sbs.Items {
		if sb.Id == old && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("the killed sandbox is still ready")
		}
	}
}
