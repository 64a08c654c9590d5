package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// runPreStop runs a container's preStop hook, within the pod's grace
// period.
func (a *Agent) runPreStop(ctx context.Context, pod *corev1.Pod, name, id string, deadline time.Time) {
	c := findContainer(pod, name)
	if c == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := a.runHook(ctx, pod, id, c.Lifecycle.PreStop); err != nil {
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
	}
}

// runHook runs an exec or httpGet handler.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, id string, h *corev1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		timeout := int64(0)
		if d, ok := ctx.Deadline(); ok {
			timeout = max(int64(time.Until(d).Seconds()), 1)
		}
		resp, err := a.cfg.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: h.Exec.Command, Timeout: timeout})
		if err != nil {
			return err
		}
		if resp.ExitCode != 0 {
			return fmt.Errorf("command %q exited with %d: %s", h.Exec.Command, resp.ExitCode, resp.Stdout)
		}
		return nil
	case h.HTTPGet != nil:
		return httpGet(ctx, pod, pod.Status.PodIP, h.HTTPGet)
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	}
	return fmt.Errorf("hook without a handler")
}

// httpGet performs an httpGet handler against the pod; success is a
// status in [200, 400).
func httpGet(ctx context.Context, pod *corev1.Pod, podIP string, g *corev1.HTTPGetAction) error {
	host := g.Host
	if host == "" {
		host = podIP
	}
	port, err := resolvePort(pod, g.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// resolvePort turns a number or a named container port into a number.
func resolvePort(pod *corev1.Pod, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found", p.StrVal)
}
