package registry

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// newPod returns a minimal valid, defaulted pod.
func newPod() *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
	defaultPod(pod)
	return pod
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
}

func TestPodSummaryFollowsKubectl(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name string
		pod  func(*corev1.Pod)
		want podSummary
	}{
		{
			name: "pending without statuses",
			pod:  func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending },
			want: podSummary{Ready: "0/1", Status: "Pending", Restarts: "0"},
		},
		{
			name: "running and ready",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			},
			want: podSummary{Ready: "1/1", Status: "Running", Restarts: "0"},
		},
		{
			name: "waiting reason wins over phase",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name: "app", State: waiting("CrashLoopBackOff"), RestartCount: 5,
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 1, FinishedAt: metav1.NewTime(now.Add(-5 * time.Minute)),
					}},
				}}
			},
			want: podSummary{Ready: "0/1", Status: "CrashLoopBackOff", Restarts: "5 (5m ago)"},
		},
		{
			name: "image pull error",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("ErrImagePull")}}
			},
			want: podSummary{Ready: "0/1", Status: "ErrImagePull", Restarts: "0"},
		},
		{
			name: "completed",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0)}}
			},
			want: podSummary{Ready: "0/1", Status: "Completed", Restarts: "0"},
		},
		{
			name: "terminated without reason shows the exit code",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("", 137)}}
			},
			want: podSummary{Ready: "0/1", Status: "ExitCode:137", Restarts: "0"},
		},
		{
			name: "one container done while another runs is not ready",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "job"})
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "job", State: terminated("Completed", 0)},
				}
			},
			want: podSummary{Ready: "1/2", Status: "NotReady", Restarts: "0"},
		},
		{
			name: "one container done while another runs, pod ready",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "job"})
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "job", State: terminated("Completed", 0)},
				}
			},
			want: podSummary{Ready: "1/2", Status: "Running", Restarts: "0"},
		},
		{
			name: "init container running shows progress",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "a"}, {Name: "b"}}
				p.Status.Phase = corev1.PodPending
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "a", State: terminated("Completed", 0)},
					{Name: "b", State: running()},
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}
			},
			want: podSummary{Ready: "0/1", Status: "Init:1/2", Restarts: "0"},
		},
		{
			name: "init container failing",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "a"}}
				p.Status.Phase = corev1.PodPending
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "a", State: waiting("CrashLoopBackOff"), RestartCount: 2}}
			},
			want: podSummary{Ready: "0/1", Status: "Init:CrashLoopBackOff", Restarts: "2"},
		},
		{
			name: "init container error exit",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "a"}}
				p.Status.Phase = corev1.PodPending
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "a", State: terminated("", 2)}}
			},
			want: podSummary{Ready: "0/1", Status: "Init:ExitCode:2", Restarts: "0"},
		},
		{
			name: "started sidecar counts as a container",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: &always}}
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "proxy", Ready: true, Started: new(true), State: running(), RestartCount: 1}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			},
			want: podSummary{Ready: "2/2", Status: "Running", Restarts: "1"},
		},
		{
			name: "scheduling gated",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
			},
			want: podSummary{Ready: "0/1", Status: "SchedulingGated", Restarts: "0"},
		},
		{
			name: "deleting",
			pod: func(p *corev1.Pod) {
				p.DeletionTimestamp = &metav1.Time{Time: now}
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			},
			want: podSummary{Ready: "1/1", Status: "Terminating", Restarts: "0"},
		},
		{
			name: "deleting a finished pod keeps its status",
			pod: func(p *corev1.Pod) {
				p.DeletionTimestamp = &metav1.Time{Time: now}
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0)}}
			},
			want: podSummary{Ready: "0/1", Status: "Completed", Restarts: "0"},
		},
		{
			name: "deleting on a lost node",
			pod: func(p *corev1.Pod) {
				p.DeletionTimestamp = &metav1.Time{Time: now}
				p.Status.Phase = corev1.PodRunning
				p.Status.Reason = "NodeLost"
			},
			want: podSummary{Ready: "0/1", Status: "Unknown", Restarts: "0"},
		},
		{
			name: "evicted",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.Reason = "Evicted"
			},
			want: podSummary{Ready: "0/1", Status: "Evicted", Restarts: "0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod()
			tt.pod(pod)
			if got := summarizePod(pod, now); got != tt.want {
				t.Errorf("summarizePod() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPodCellsShowWideColumns(t *testing.T) {
	pod := newPod()
	pod.CreationTimestamp = metav1.NewTime(time.Now().Add(-3 * time.Hour))
	pod.Spec.NodeName = "node-1"
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/ready"}}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.5"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: "example.com/ready", Status: corev1.ConditionTrue}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}

	got := podCells(pod)
	want := []any{"1/1", "Running", "0", "3h", "10.42.0.5", "node-1", "<none>", "1/1"}
	if len(got) != len(want) {
		t.Fatalf("podCells() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestPodQOSClass(t *testing.T) {
	res := func(kv ...string) corev1.ResourceList {
		rl := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return rl
	}
	tests := []struct {
		name       string
		containers []corev1.ResourceRequirements
		init       []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"nothing set", []corev1.ResourceRequirements{{}}, nil, corev1.PodQOSBestEffort},
		{"only non-compute resources", []corev1.ResourceRequirements{{Requests: res("ephemeral-storage", "1Gi")}}, nil, corev1.PodQOSBestEffort},
		{"limits equal requests", []corev1.ResourceRequirements{{Requests: res("cpu", "1", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}}, nil, corev1.PodQOSGuaranteed},
		{"limits only, defaulted to requests", []corev1.ResourceRequirements{{Limits: res("cpu", "500m", "memory", "128Mi")}}, nil, corev1.PodQOSGuaranteed},
		{"request below limit", []corev1.ResourceRequirements{{Requests: res("cpu", "100m", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}}, nil, corev1.PodQOSBurstable},
		{"cpu only", []corev1.ResourceRequirements{{Requests: res("cpu", "1"), Limits: res("cpu", "1")}}, nil, corev1.PodQOSBurstable},
		{"guaranteed and best effort mixed", []corev1.ResourceRequirements{
			{Limits: res("cpu", "1", "memory", "1Gi")}, {},
		}, nil, corev1.PodQOSBurstable},
		{"init container counts", []corev1.ResourceRequirements{{Limits: res("cpu", "1", "memory", "1Gi")}},
			[]corev1.ResourceRequirements{{Requests: res("cpu", "100m")}}, corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
			for i, r := range tt.containers {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: "x", Resources: r})
			}
			for i, r := range tt.init {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "i" + string(rune('a'+i)), Image: "x", Resources: r})
			}
			defaultPod(pod)
			preparePodForCreate(pod)
			if pod.Status.QOSClass != tt.want {
				t.Errorf("QOSClass = %s, want %s", pod.Status.QOSClass, tt.want)
			}
			if pod.Status.Phase != corev1.PodPending {
				t.Errorf("Phase = %s, want Pending", pod.Status.Phase)
			}
		})
	}
}

func TestDefaultPodFillsKubernetesDefaults(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "nginx",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
				}}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("0.5"),
				}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
				}},
			}},
			Volumes: []corev1.Volume{
				{Name: "scratch"},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var"}}},
			},
		},
	}
	defaultPod(pod)

	spec := pod.Spec
	c := spec.Containers[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", spec.RestartPolicy, corev1.RestartPolicyAlways},
		{"dnsPolicy", spec.DNSPolicy, corev1.DNSClusterFirst},
		{"schedulerName", spec.SchedulerName, "default-scheduler"},
		{"terminationGracePeriodSeconds", *spec.TerminationGracePeriodSeconds, int64(30)},
		{"securityContext set", spec.SecurityContext != nil, true},
		{"enableServiceLinks", *spec.EnableServiceLinks, true},
		{"imagePullPolicy", c.ImagePullPolicy, corev1.PullAlways},
		{"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", c.TerminationMessagePolicy, corev1.TerminationMessageReadFile},
		{"port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP},
		{"fieldRef apiVersion", c.Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"cpu limit canonical", c.Resources.Limits.Cpu().String(), "500m"},
		{"cpu request from limit", c.Resources.Requests.Cpu().String(), "500m"},
		{"probe timeout", c.LivenessProbe.TimeoutSeconds, int32(1)},
		{"probe period", c.LivenessProbe.PeriodSeconds, int32(10)},
		{"probe success", c.LivenessProbe.SuccessThreshold, int32(1)},
		{"probe failure", c.LivenessProbe.FailureThreshold, int32(3)},
		{"httpGet scheme", c.LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP},
		{"httpGet path", c.LivenessProbe.HTTPGet.Path, "/"},
		{"volume without source", spec.Volumes[0].EmptyDir != nil, true},
		{"configMap defaultMode", *spec.Volumes[1].ConfigMap.DefaultMode, int32(0o644)},
		{"hostPath type", *spec.Volumes[2].HostPath.Type, corev1.HostPathUnset},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if errs := validatePod(pod); len(errs) > 0 {
		t.Errorf("defaulted pod does not validate: %v", errs)
	}
}

func TestTemplateDefaultsLeavePodOnlyFieldsAlone(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}
	defaultPodSpec(&spec)
	if spec.EnableServiceLinks != nil {
		t.Errorf("enableServiceLinks = %v on a template, want unset", *spec.EnableServiceLinks)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"registry.local:5000/nginx", corev1.PullAlways},
		{"registry.local:5000/nginx:1.0", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullAlways},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

// errorKeys renders errors as "type path" for comparison.
func errorKeys(errs field.ErrorList) []string {
	keys := make([]string, len(errs))
	for i, e := range errs {
		keys[i] = string(e.Type) + " " + e.Field
	}
	return keys
}

func wantErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := errorKeys(errs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s\nfull: %v", strings.Join(got, "\n  "), strings.Join(want, "\n  "), errs)
	}
}

func TestValidatePodReportsFieldPaths(t *testing.T) {
	never := corev1.ContainerRestartPolicy("Never")
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"valid", func(*corev1.Pod) {}, nil},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil },
			[]string{"FieldValueRequired spec.containers"}},
		{"bad name", func(p *corev1.Pod) { p.Name = "Web_1" },
			[]string{"FieldValueInvalid metadata.name"}},
		{"bad label", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "a b"} },
			[]string{"FieldValueInvalid metadata.labels"}},
		{"missing image and bad container name", func(p *corev1.Pod) { p.Spec.Containers[0].Image = ""; p.Spec.Containers[0].Name = "App" },
			[]string{"FieldValueInvalid spec.containers[0].name", "FieldValueRequired spec.containers[0].image"}},
		{"duplicate names across init and regular", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{p.Spec.Containers[0]}
		}, []string{"FieldValueDuplicate spec.initContainers[0].name"}},
		{"port out of range", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, Protocol: corev1.ProtocolTCP}}
		}, []string{"FieldValueInvalid spec.containers[0].ports[0].containerPort"}},
		{"unknown restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{"FieldValueNotSupported spec.restartPolicy"}},
		{"unknown dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" },
			[]string{"FieldValueNotSupported spec.dnsPolicy"}},
		{"mount of a missing volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []string{"FieldValueNotFound spec.containers[0].volumeMounts[0].name"}},
		{"duplicate volumes", func(p *corev1.Pod) {
			v := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
			p.Spec.Volumes = []corev1.Volume{v, v}
		}, []string{"FieldValueDuplicate spec.volumes[1].name"}},
		{"volume with two sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{},
				HostPath: &corev1.HostPathVolumeSource{Path: "/data"},
			}}}
		}, []string{"FieldValueForbidden spec.volumes[0].hostPath"}},
		{"request above limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}
		}, []string{"FieldValueInvalid spec.containers[0].resources.requests"}},
		{"probe without handler", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 10}
		}, []string{"FieldValueRequired spec.containers[0].readinessProbe"}},
		{"liveness success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
				SuccessThreshold: 2,
			}
		}, []string{"FieldValueInvalid spec.containers[0].livenessProbe.successThreshold"}},
		{"init container restart policy", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", RestartPolicy: &never,
				ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}
		}, []string{"FieldValueNotSupported spec.initContainers[0].restartPolicy"}},
		{"probe on a plain init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox",
				ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, SuccessThreshold: 1}}}
		}, []string{"FieldValueForbidden spec.initContainers[0].livenessProbe"}},
		{"host network port mismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
		}, []string{"FieldValueInvalid spec.containers[0].ports[0].hostPort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod()
			tt.mutate(pod)
			wantErrors(t, validatePod(pod), tt.want...)
		})
	}
}

func TestPodUpdateMayOnlyChangeImagesAndFriends(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }, nil},
		{"shorter deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(30)) }, nil},
		{"added toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, nil},
		{"restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{"FieldValueForbidden spec"}},
		{"node name", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" },
			[]string{"FieldValueForbidden spec"}},
		{"added container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "busybox"})
		}, []string{"FieldValueForbidden spec.containers"}},
		{"longer deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(120)) },
			[]string{"FieldValueInvalid spec.activeDeadlineSeconds"}},
		{"removed toleration", func(p *corev1.Pod) { p.Spec.Tolerations = nil },
			[]string{"FieldValueForbidden spec.tolerations"}},
		{"name", func(p *corev1.Pod) { p.Name = "other" },
			[]string{"FieldValueInvalid metadata.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newPod()
			old.ResourceVersion = "7"
			old.Spec.ActiveDeadlineSeconds = new(int64(60))
			old.Spec.Tolerations = []corev1.Toleration{{Key: "old", Operator: corev1.TolerationOpExists}}
			pod := old.DeepCopy()
			tt.mutate(pod)
			wantErrors(t, validatePodUpdate(pod, old), tt.want...)
		})
	}

	old := newPod()
	old.ResourceVersion = "7"
	pod := old.DeepCopy()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	errs := validatePodUpdate(pod, old)
	const msg = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Detail, msg) || !strings.Contains(errs[0].Detail, "spec.restartPolicy") {
		t.Errorf("detail = %q, want it to start with Kubernetes' message and name spec.restartPolicy", errs[0].Detail)
	}
}

func TestPodFieldsForSelectors(t *testing.T) {
	pod := newPod()
	pod.Spec.NodeName = "node-1"
	pod.Spec.HostNetwork = true
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.0.0.9"
	got := podFields(pod)
	want := map[string]string{
		"spec.nodeName": "node-1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "", "spec.hostNetwork": "true", "status.phase": "Running",
		"status.podIP": "10.0.0.9", "status.nominatedNodeName": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields = %v, want %d keys", got, len(want))
	}
}

func TestSchedulingGatedPodGetsCondition(t *testing.T) {
	pod := newPod()
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	preparePodForCreate(pod)
	c := podCondition(pod, corev1.PodScheduled)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "SchedulingGated" {
		t.Fatalf("PodScheduled condition = %+v", c)
	}
	if s := summarizePod(pod, time.Now()); s.Status != "SchedulingGated" {
		t.Errorf("status = %s, want SchedulingGated", s.Status)
	}
}
