package cri

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	skiffruntime "github.com/skiff-sh/skiff/internal/runtime"
)

// Streams runs exec, attach and port-forward sessions for the streaming
// servers (the agent's, and the one CRI's Exec hands URLs of).
type Streams struct{ s *Service }

var _ streaming.Runtime = Streams{}

// Streams returns the service's session runner.
func (s *Service) Streams() Streams { return Streams{s} }

// Exec runs cmd in a container with the given streams; a non-zero exit is
// returned as an exec.ExitError, which the streaming server reports as
// kubectl expects ("command terminated with exit code N").
func (st Streams) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	s := st.s
	c, err := s.getContainer(containerID)
	if err != nil {
		return err
	}
	proc, err := loadBundleProcess(filepath.Join(s.containerDir(c.ID), "bundle"))
	if err != nil {
		return err
	}
	p := *proc
	p.Args = cmd
	p.Terminal = tty
	opts := skiffruntime.ExecOptions{Stdin: in}
	if out != nil {
		opts.Stdout = out
	}
	if errw != nil {
		opts.Stderr = errw
	}
	var copies sync.WaitGroup
	if tty {
		opts.Console = func(master *os.File) {
			copies.Add(1)
			go func() {
				defer copies.Done()
				if out != nil {
					io.Copy(out, master)
				}
			}()
			if in != nil {
				go func() { io.Copy(master, in) }()
			}
			go func() {
				for size := range resize {
					unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
				}
			}()
		}
		opts.Stdin, opts.Stdout, opts.Stderr = nil, nil, nil
	}
	code, err := s.cfg.Runtime.Exec(ctx, c.ID, &p, opts)
	copies.Wait()
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// Attach connects a session to a running container's stdio, which its
// shim holds (kubectl attach). tty needs no handling of its own: a
// terminal container's output all comes as stdout, and resizes reach its
// terminal. The session ends when the container exits or the client goes.
func (st Streams) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	s := st.s
	c, err := s.getContainer(containerID)
	if err != nil {
		return err
	}
	// Interfaces holding nil would be written to.
	var stdout, stderr io.Writer
	if out != nil {
		stdout = out
	}
	if errw != nil {
		stderr = errw
	}
	var sizes chan skiffruntime.TerminalSize
	if resize != nil {
		sizes = make(chan skiffruntime.TerminalSize)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer close(sizes)
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					select {
					case sizes <- skiffruntime.TerminalSize{Width: size.Width, Height: size.Height}:
					case <-stop:
						return
					}
				case <-stop:
					return
				}
			}
		}()
	}
	err = s.cfg.Runtime.Attach(ctx, c.ID, in, stdout, stderr, sizes)
	if ctx.Err() != nil {
		return nil // the client went: nobody is left to tell
	}
	return err
}

// PortForward connects stream to port on the pod's loopback, inside its
// network namespace.
func (st Streams) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := st.s.getSandbox(podSandboxID)
	if err != nil {
		return err
	}
	netns := sb.Netns
	if netns == "" {
		if _, pid := st.s.sandboxState(sb); pid > 0 {
			netns = "/proc/" + strconv.Itoa(pid) + "/ns/net"
		}
	}
	conn, err := dialIn(netns, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port %d of pod sandbox %s: %w", port, sb.ID, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dialIn connects to addr from inside the network namespace at netns (the
// node's when empty). The socket is made on a thread that enters the
// namespace; the thread is discarded if it cannot get back.
func dialIn(netns, addr string) (net.Conn, error) {
	if netns == "" {
		return net.Dial("tcp", addr)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open(netns)
		if err != nil {
			ch <- result{err: err}
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			runtime.UnlockOSThread()
			return
		}
		conn, err := net.Dial("tcp", addr)
		ch <- result{conn, err}
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	r := <-ch
	return r.conn, r.err
}

// startStreaming serves the sessions CRI's Exec, Attach and PortForward
// hand out, on a loopback port.
func (s *Service) startStreaming() error {
	cfg := streaming.DefaultConfig
	cfg.Addr = "127.0.0.1:0"
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	cfg.Addr = l.Addr().String()
	srv, err := streaming.NewServer(cfg, s.Streams())
	if err != nil {
		l.Close()
		return err
	}
	s.streams = srv
	go httpServe(l, srv)
	return nil
}

// Exec returns the URL of an exec session (crictl exec).
func (s *Service) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if _, err := s.getContainer(req.ContainerId); err != nil {
		return nil, err
	}
	return s.streams.GetExec(req)
}

// Attach returns the URL of an attach session.
func (s *Service) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if _, err := s.getContainer(req.ContainerId); err != nil {
		return nil, err
	}
	return s.streams.GetAttach(req)
}

// PortForward returns the URL of a port-forward session.
func (s *Service) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if _, err := s.getSandbox(req.PodSandboxId); err != nil {
		return nil, err
	}
	return s.streams.GetPortForward(req)
}
