package scheduler

import (
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/nodeaffinity"
)

// requests are what a pod asks for, in the units kube-scheduler compares.
type requests struct {
	milliCPU, memory, ephemeral int64
	pods                        int64
	hostPorts                   map[string]bool // a pod's: "proto/port"
	ports                       map[string]int  // a node's: users of each port
}

// podRequests is the pod's effective request, as Kubernetes computes it:
// the larger of its biggest init container (with the sidecars started
// before it) and the sum of its app containers and sidecars, plus overhead.
func podRequests(pod *corev1.Pod) requests {
	get := func(c *corev1.Container) (int64, int64, int64) {
		r := c.Resources.Requests
		return r.Cpu().MilliValue(), r.Memory().Value(), r.StorageEphemeral().Value()
	}
	var app [3]int64
	for i := range pod.Spec.Containers {
		c, m, e := get(&pod.Spec.Containers[i])
		app[0], app[1], app[2] = app[0]+c, app[1]+m, app[2]+e
	}
	var sidecars, initMax [3]int64
	for i := range pod.Spec.InitContainers {
		ic := &pod.Spec.InitContainers[i]
		c, m, e := get(ic)
		if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[0], sidecars[1], sidecars[2] = sidecars[0]+c, sidecars[1]+m, sidecars[2]+e
			continue
		}
		initMax[0] = max(initMax[0], sidecars[0]+c)
		initMax[1] = max(initMax[1], sidecars[1]+m)
		initMax[2] = max(initMax[2], sidecars[2]+e)
	}
	r := requests{pods: 1, hostPorts: map[string]bool{}}
	r.milliCPU = max(app[0]+sidecars[0], initMax[0])
	r.memory = max(app[1]+sidecars[1], initMax[1])
	r.ephemeral = max(app[2]+sidecars[2], initMax[2])
	r.milliCPU += pod.Spec.Overhead.Cpu().MilliValue()
	r.memory += pod.Spec.Overhead.Memory().Value()
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				r.hostPorts[portKey(p)] = true
			}
		}
	}
	return r
}

func portKey(p corev1.ContainerPort) string {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return fmt.Sprintf("%s/%d", proto, p.HostPort)
}

// add adds (sign 1) or takes away (-1) one pod's requests. Host ports are
// counted, so that a port two pods use stays taken until both are gone.
func (u *requests) add(r requests, sign int64) {
	u.milliCPU += sign * r.milliCPU
	u.memory += sign * r.memory
	u.ephemeral += sign * r.ephemeral
	u.pods += sign
	if u.ports == nil {
		u.ports = map[string]int{}
	}
	for k := range r.hostPorts {
		u.ports[k] += int(sign)
		if u.ports[k] <= 0 {
			delete(u.ports, k)
		}
	}
}

// allocatable is a node's allocatable resources, read out of their
// Quantities once per version of the node.
type allocatable struct {
	version                           string
	milliCPU, memory, ephemeral, pods int64
	ready                             bool
}

func allocatableOf(node *corev1.Node) allocatable {
	a := node.Status.Allocatable
	return allocatable{version: node.ResourceVersion, milliCPU: a.Cpu().MilliValue(), memory: a.Memory().Value(),
		ephemeral: a.StorageEphemeral().Value(), pods: a.Pods().Value(), ready: ready(node)}
}

// filter returns why the pod (asking for want) cannot go to node, in
// kube-scheduler's words (as counted in its "0/N nodes are available"
// message), or "".
func filter(pod *corev1.Pod, want requests, node *corev1.Node, alloc allocatable, used *requests) string {
	if used == nil {
		used = &requests{}
	}
	if node.Spec.Unschedulable && !tolerates(pod, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return "node(s) were unschedulable"
	}
	if !alloc.ready && !tolerates(pod, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}) {
		return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
	}
	for _, t := range node.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
			return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
		}
	}
	if !nodeaffinity.Matches(&pod.Spec, node) {
		return "node(s) didn't match Pod's node affinity/selector"
	}
	for k := range want.hostPorts {
		if used.ports[k] > 0 {
			return "node(s) didn't have free ports for the requested pod ports"
		}
	}
	switch {
	case used.pods+1 > alloc.pods:
		return "Too many pods"
	case want.milliCPU > 0 && used.milliCPU+want.milliCPU > alloc.milliCPU:
		return "Insufficient cpu"
	case want.memory > 0 && used.memory+want.memory > alloc.memory:
		return "Insufficient memory"
	case want.ephemeral > 0 && used.ephemeral+want.ephemeral > alloc.ephemeral:
		return "Insufficient ephemeral-storage"
	}
	return ""
}

func ready(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func tolerates(pod *corev1.Pod, taint corev1.Taint) bool {
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].ToleratesTaint(logr.Discard(), &taint, false) {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
