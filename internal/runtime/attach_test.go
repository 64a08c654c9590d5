package runtime_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/runtime"
)

// logged is a container created through the Go API with a CRI log, as the
// CRI layer creates them, and started.
type logged struct {
	rt  *runtime.Runtime
	id  string
	log string
}

func (e *env) startLogged(id string, opts runtime.CreateOptions, edit func(*specs.Spec)) *logged {
	e.t.Helper()
	// A root too long for the socket's path in a sockaddr_un, as a test
	// server's data directory may be.
	root := filepath.Join(e.root, strings.Repeat("long-", 20))
	rt := &runtime.Runtime{Root: root, Binary: filepath.Join(filepath.Dir(binary), "skiff-init")}
	opts.LogPath = filepath.Join(e.t.TempDir(), id+".log")
	if err := rt.Create(context.Background(), id, e.bundle(edit), opts); err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	e.t.Cleanup(func() { rt.Delete(id, true) })
	if _, err := os.Stat(filepath.Join(root, id, "attach.sock")); err != nil {
		e.t.Fatalf("no attach socket after create: %v", err)
	}
	if err := rt.Start(id); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	return &logged{rt: rt, id: id, log: opts.LogPath}
}

// attachment is one Attach call running in the background.
type attachment struct {
	stdin          *io.PipeWriter
	stdout, stderr *syncBuffer
	resize         chan runtime.TerminalSize
	cancel         context.CancelFunc
	done           chan error
}

// attach attaches a client; withStdin gives it a stdin the test writes to.
func (c *logged) attach(t *testing.T, withStdin bool) *attachment {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &attachment{stdout: &syncBuffer{}, stderr: &syncBuffer{}, resize: make(chan runtime.TerminalSize, 1),
		cancel: cancel, done: make(chan error, 1)}
	var stdin io.Reader
	if withStdin {
		var r *io.PipeReader
		r, a.stdin = io.Pipe()
		stdin = r
	}
	go func() { a.done <- c.rt.Attach(ctx, c.id, stdin, a.stdout, a.stderr, a.resize) }()
	t.Cleanup(func() {
		cancel()
		if a.stdin != nil {
			a.stdin.Close()
		}
	})
	return a
}

// sendUntil writes in to the client's stdin, again every so often until
// its stdout shows want: a resize, or a line the test waits for on
// another client, may take effect after the first write.
func (a *attachment) sendUntil(t *testing.T, in, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("sent %q, stdout never showed %q; stdout %q, stderr %q", in, want, a.stdout.String(), a.stderr.String())
		}
		go a.stdin.Write([]byte(in))
		waitFor(a.stdout, want, time.Second)
	}
}

// returned waits for Attach to return.
func (a *attachment) returned(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Attach did not return")
		return nil
	}
}

func (c *logged) wait(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exit, err := c.rt.Wait(ctx, c.id)
	if err != nil {
		t.Fatalf("wait %s: %v", c.id, err)
	}
	return exit.Code
}

func (c *logged) logText(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor reports whether b shows want within d.
func waitFor(b *syncBuffer, want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestAttachedClientWritesStdinAndReadsOutputWhichIsAlsoLogged(t *testing.T) {
	e := newEnv(t)
	c := e.startLogged("cat", runtime.CreateOptions{OpenStdin: true}, func(s *specs.Spec) { s.Process.Args = []string{"cat"} })
	a := c.attach(t, true)
	a.sendUntil(t, "hello-through-attach\n", "hello-through-attach\n")
	if a.stderr.String() != "" {
		t.Errorf("cat's echo reached stderr: %q", a.stderr.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(c.logText(t), " stdout F hello-through-attach\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the log has no stdout record of the echo:\n%s", c.logText(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without StdinOnce the end of a client's stdin detaches it and
	// leaves the container's stdin open.
	a.stdin.Close()
	if err := a.returned(t); err != nil {
		t.Errorf("Attach after detaching: %v", err)
	}
	if st, _ := c.rt.State(c.id); st.Status != runtime.StatusRunning {
		t.Errorf("cat is %s after a client let go of stdin without StdinOnce", st.Status)
	}
	b := c.attach(t, true)
	b.sendUntil(t, "again\n", "again\n")
	if err := c.rt.Kill(c.id, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if err := b.returned(t); err != nil {
		t.Errorf("Attach when the container exits: %v", err)
	}
}

func TestTerminalContainerAnswersThroughAttachAndTakesResizes(t *testing.T) {
	e := newEnv(t)
	c := e.startLogged("tty", runtime.CreateOptions{OpenStdin: true}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh"}
	})
	a := c.attach(t, true)
	// The terminal echoes what is typed: look for what only running it prints.
	a.sendUntil(t, "[ -t 0 ] && echo tty-$((20+22))\n", "tty-42")
	a.resize <- runtime.TerminalSize{Width: 123, Height: 45}
	a.sendUntil(t, "stty size\n", "45 123")
	if a.stderr.String() != "" {
		t.Errorf("a terminal's output reached stderr: %q", a.stderr.String())
	}
	a.stdin.Write([]byte("exit 7\n"))
	if err := a.returned(t); err != nil {
		t.Errorf("Attach when the shell exits: %v", err)
	}
	if code := c.wait(t); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if log := c.logText(t); !strings.Contains(log, " stdout F tty-42\n") || strings.Contains(log, " stderr ") {
		t.Errorf("the terminal is not logged as stdout:\n%s", log)
	}
}

func TestTwoAttachedClientsBothSeeStdoutAndStderrApart(t *testing.T) {
	e := newEnv(t)
	c := e.startLogged("two", runtime.CreateOptions{OpenStdin: true},
		sh(`while read l; do echo "out:$l"; echo "err:$l" >&2; done`))
	a := c.attach(t, true)
	a.sendUntil(t, "first\n", "out:first")
	b := c.attach(t, false)
	// b may connect after a line went by: keep sending until it sees one.
	deadline := time.Now().Add(10 * time.Second)
	for !waitFor(b.stdout, "out:ping", 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second client saw nothing: %q", b.stdout.String())
		}
		a.stdin.Write([]byte("ping\n"))
	}
	for name, x := range map[string]*attachment{"first": a, "second": b} {
		if !waitFor(x.stderr, "err:ping", 5*time.Second) {
			t.Errorf("%s client: no stderr: %q", name, x.stderr.String())
		}
		if strings.Contains(x.stdout.String(), "err:") || strings.Contains(x.stderr.String(), "out:") {
			t.Errorf("%s client: streams mixed: stdout %q stderr %q", name, x.stdout.String(), x.stderr.String())
		}
	}
	log := c.logText(t)
	if !strings.Contains(log, " stdout F out:ping\n") || !strings.Contains(log, " stderr F err:ping\n") {
		t.Errorf("log:\n%s", log)
	}
}

func TestStdinOnceClosesStdinWhenTheClientLetsGo(t *testing.T) {
	e := newEnv(t)
	opts := runtime.CreateOptions{OpenStdin: true, StdinOnce: true}
	cat := func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "cat; echo cat-done"} }

	// The client detaches.
	c := e.startLogged("detach", opts, cat)
	a := c.attach(t, true)
	a.sendUntil(t, "one\n", "one\n")
	a.cancel()
	if code := c.wait(t); code != 0 {
		t.Errorf("cat exited %d after the client detached, want 0", code)
	}

	// The client's stdin ends: it sees the rest of the output.
	c = e.startLogged("eof", opts, cat)
	a = c.attach(t, true)
	a.sendUntil(t, "two\n", "two\n")
	a.stdin.Close()
	if err := a.returned(t); err != nil {
		t.Errorf("Attach: %v", err)
	}
	if !strings.Contains(a.stdout.String(), "cat-done") {
		t.Errorf("the client missed the output after its stdin ended: %q", a.stdout.String())
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("cat exited %d, want 0", code)
	}
}

// blockingWriter blocks every write until released, and counts.
type blockingWriter struct {
	release chan struct{}
	n       *atomic.Int64
}

func (w blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func TestSlowClientIsDisconnectedNotWaitedFor(t *testing.T) {
	e := newEnv(t)
	c := e.startLogged("flood", runtime.CreateOptions{OpenStdin: true},
		sh("read x; head -c 16000000 /dev/zero; echo; echo flood-done"))
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	// A stdin kept open: its end would detach the client.
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	go stdinW.Write([]byte("go\n"))
	go func() {
		done <- c.rt.Attach(ctx, c.id, stdinR, blockingWriter{release, &got}, io.Discard, nil)
	}()
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(c.logText(t), " stdout F flood-done\n") {
		t.Error("the log misses the end of the output")
	}
	select {
	case err := <-done:
		t.Fatalf("Attach returned while its writer was blocked: %v", err)
	default:
	}
	unblock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Attach did not return once the shim dropped it")
	}
	// It got what was queued for it and in the socket, not everything.
	if n := got.Load(); n >= 16000000 {
		t.Errorf("the slow client got all %d bytes: it was waited for", n)
	}
}
