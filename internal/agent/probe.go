package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// probeKind is liveness, readiness or startup.
type probeKind string

const (
	liveness  probeKind = "Liveness"
	readiness probeKind = "Readiness"
	startup   probeKind = "Startup"
)

// prober runs one probe of one container instance until stopped, keeping
// the outcome the status reads.
type prober struct {
	kind        probeKind
	containerID string
	podIP       string
	stop        chan struct{}

	mu     sync.Mutex
	result bool // the last decided outcome
	done   bool // startup: succeeded once, stops probing
}

func (p *prober) ok() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result
}

// probes is the agent's probers, by pod UID, container name and kind.
type probes struct {
	mu  sync.Mutex
	all map[string]*prober
}

func probeKey(uid types.UID, container string, kind probeKind) string {
	return string(uid) + "/" + container + "/" + string(kind)
}

func (a *Agent) prober(uid types.UID, container string, kind probeKind) *prober {
	a.probes.mu.Lock()
	defer a.probes.mu.Unlock()
	return a.probes.all[probeKey(uid, container, kind)]
}

// syncProbes starts probers for the running containers' current instances
// and stops those of instances that are gone.
func (a *Agent) syncProbes(pod *corev1.Pod, st *podState) {
	a.probes.mu.Lock()
	defer a.probes.mu.Unlock()
	if a.probes.all == nil {
		a.probes.all = map[string]*prober{}
	}
	want := map[string]bool{}
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for i := range all {
		c := &all[i]
		list := st.containers[c.Name]
		if len(list) == 0 || list[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		for kind, spec := range map[probeKind]*corev1.Probe{liveness: c.LivenessProbe, readiness: c.ReadinessProbe, startup: c.StartupProbe} {
			if spec == nil {
				continue
			}
			key := probeKey(pod.UID, c.Name, kind)
			want[key] = true
			if p := a.probes.all[key]; p != nil && p.containerID == list[0].Id {
				continue
			} else if p != nil {
				close(p.stop)
			}
			p := &prober{kind: kind, containerID: list[0].Id, podIP: st.sandboxIP, stop: make(chan struct{})}
			a.probes.all[key] = p
			go a.runProber(pod, c.Name, spec, p, time.Unix(0, list[0].StartedAt))
		}
	}
	prefix := string(pod.UID) + "/"
	for key, p := range a.probes.all {
		if len(key) > len(prefix) && key[:len(prefix)] == prefix && !want[key] {
			close(p.stop)
			delete(a.probes.all, key)
		}
	}
}

// stopProbes ends every prober of a pod.
func (a *Agent) stopProbes(uid types.UID) {
	a.probes.mu.Lock()
	defer a.probes.mu.Unlock()
	prefix := string(uid) + "/"
	for key, p := range a.probes.all {
		if len(key) > len(prefix) && key[:len(prefix)] == prefix {
			close(p.stop)
			delete(a.probes.all, key)
		}
	}
}

// runProber probes every period after the initial delay; successThreshold
// successes or failureThreshold failures in a row decide the outcome.
// Readiness and liveness wait for the startup probe; a failed liveness or
// startup probe restarts the container.
func (a *Agent) runProber(pod *corev1.Pod, container string, spec *corev1.Probe, p *prober, started time.Time) {
	period := time.Duration(max(spec.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(spec.TimeoutSeconds, 1)) * time.Second
	success, failure := max(spec.SuccessThreshold, 1), max(spec.FailureThreshold, 1)
	if p.kind == liveness {
		p.result = true // alive until proven otherwise
	}
	delay := time.Until(started.Add(time.Duration(spec.InitialDelaySeconds) * time.Second))
	select {
	case <-p.stop:
		return
	case <-time.After(max(delay, 0)):
	}
	var ok, bad int32
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if p.kind != startup {
			if s := a.prober(pod.UID, container, startup); s != nil && !s.ok() {
				goto wait // held back until the startup probe succeeds
			}
		}
		if err := a.probeOnce(pod, p, spec, timeout); err == nil {
			ok, bad = ok+1, 0
			if ok >= success && !p.ok() {
				p.mu.Lock()
				p.result = true
				p.mu.Unlock()
				a.pokePod(pod.UID)
				if p.kind == startup {
					return // done: liveness and readiness take over
				}
			}
		} else {
			ok, bad = 0, bad+1
			a.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", p.kind, err)
			if bad >= failure && (p.ok() || p.kind != readiness) {
				p.mu.Lock()
				p.result = false
				p.mu.Unlock()
				if p.kind != readiness {
					a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", container, map[probeKind]string{liveness: "liveness", startup: "startup"}[p.kind])
					grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
					if pod.Spec.TerminationGracePeriodSeconds != nil {
						grace = *pod.Spec.TerminationGracePeriodSeconds
					}
					if spec.TerminationGracePeriodSeconds != nil {
						grace = *spec.TerminationGracePeriodSeconds
					}
					a.cfg.Runtime.StopContainer(context.Background(), &runtimeapi.StopContainerRequest{ContainerId: p.containerID, Timeout: grace})
					a.pokePod(pod.UID)
					return
				}
				a.pokePod(pod.UID)
			}
		}
	wait:
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

func (a *Agent) pokePod(uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

// probeOnce runs one check: exec, httpGet, tcpSocket or grpc.
func (a *Agent) probeOnce(pod *corev1.Pod, p *prober, spec *corev1.Probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h := spec.ProbeHandler
	host, containerID := p.podIP, p.containerID
	if pod.Spec.HostNetwork || host == "" {
		host = a.cfg.NodeIP.String()
	}
	switch {
	case h.Exec != nil:
		resp, err := a.cfg.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: containerID, Cmd: h.Exec.Command, Timeout: int64(timeout / time.Second)})
		if err != nil {
			return err
		}
		if resp.ExitCode != 0 {
			return fmt.Errorf("command %q exited with %d: %s", h.Exec.Command, resp.ExitCode, resp.Stdout)
		}
		return nil
	case h.HTTPGet != nil:
		return httpGet(ctx, pod, host, h.HTTPGet)
	case h.TCPSocket != nil:
		port, err := resolvePort(pod, h.TCPSocket.Port)
		if err != nil {
			return err
		}
		if h.TCPSocket.Host != "" {
			host = h.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("dial tcp %s:%d: %w", host, port, err)
		}
		return conn.Close()
	case h.GRPC != nil:
		conn, err := grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(int(h.GRPC.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("service unhealthy (responded with %q)", resp.Status)
		}
		return nil
	}
	return fmt.Errorf("probe without a handler")
}
