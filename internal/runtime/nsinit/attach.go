package nsinit

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// WriteAttachFrame writes one frame of the attach protocol (see the
// package comment) to w.
func WriteAttachFrame(w io.Writer, typ byte, payload []byte) error {
	_, err := w.Write(attachFrame(typ, payload))
	return err
}

func attachFrame(typ byte, payload []byte) []byte {
	f := make([]byte, 5+len(payload))
	f[0] = typ
	binary.BigEndian.PutUint32(f[1:5], uint32(len(payload)))
	copy(f[5:], payload)
	return f
}

// ReadAttachFrame reads one frame from r; the payload is only valid until
// the next call with the same buf, which it reuses when large enough.
func ReadAttachFrame(r *bufio.Reader, buf []byte) (typ byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxAttachFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes", n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return hdr[0], payload, nil
}

// attachQueueBytes is how much output may wait for one client before the
// shim gives up on it.
const attachQueueBytes = 1 << 20

// attachServer is the shim's side of attach: it serves the container's
// stdio to the clients of the attach socket.
type attachServer struct {
	stdinOnce bool
	listener  *os.File
	path      string

	mu      sync.Mutex
	clients map[*attachClient]struct{}
	closed  bool
	// stdin is where client stdin goes: the pipe's write end, or the
	// terminal's master; nil when the container takes none (any more).
	stdin *os.File
	// console is the terminal's master, for resizes.
	console *os.File
	wg      sync.WaitGroup
}

type attachClient struct {
	s    *attachServer
	conn *os.File
	// out holds frames to write; queued counts their bytes.
	out    chan []byte
	queued int
	quit   chan struct{}
	once   sync.Once
	// stdinOpen is set between the client's first stdin frame and the end
	// of its stdin.
	stdinOpen bool
}

// ShortSocketPath returns a name for the unix socket at path that fits a
// sockaddr_un (107 bytes) for bind and connect: path itself when short
// enough, else /proc/self/fd/<n>/<base> through a descriptor of its
// directory, held until release is called. State directories under a
// long root (a test's temporary directory, say) do not fit.
func ShortSocketPath(path string) (short string, release func(), err error) {
	if len(path) < len(unix.RawSockaddrUnix{}.Path) {
		return path, func() {}, nil
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	short = "/proc/self/fd/" + strconv.Itoa(dir) + "/" + filepath.Base(path)
	if len(short) >= len(unix.RawSockaddrUnix{}.Path) {
		unix.Close(dir)
		return "", nil, fmt.Errorf("socket name %s is too long", filepath.Base(path))
	}
	return short, func() { unix.Close(dir) }, nil
}

// listenAttach starts serving the attach socket at path. The socket is
// made with plain syscalls and served through the Go runtime's poller (an
// os.File of a non-blocking descriptor), so that skiff-init links no net
// package.
func listenAttach(path string, stdinOnce bool) (*attachServer, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	os.Remove(path)
	short, release, err := ShortSocketPath(path)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: short})
	release()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind attach socket %s: %w", path, err)
	}
	// Before listen: nobody can connect in between.
	if err := os.Chmod(path, 0o600); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on attach socket: %w", err)
	}
	s := &attachServer{stdinOnce: stdinOnce, listener: os.NewFile(uintptr(fd), "attach"), path: path,
		clients: map[*attachClient]struct{}{}}
	go s.accept()
	return s, nil
}

// setStdin gives clients the container's stdin; console, when not nil, is
// the terminal's master (and then stdin too).
func (s *attachServer) setStdin(stdin, console *os.File) {
	s.mu.Lock()
	s.stdin, s.console = stdin, console
	s.mu.Unlock()
}

func (s *attachServer) accept() {
	rc, err := s.listener.SyscallConn()
	if err != nil {
		return
	}
	for {
		var nfd int
		var aerr error
		err := rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			return aerr != unix.EAGAIN
		})
		if err != nil {
			return // the listener is closed
		}
		if aerr != nil {
			if aerr == unix.EINTR || aerr == unix.ECONNABORTED {
				continue
			}
			if aerr == unix.EMFILE || aerr == unix.ENFILE || aerr == unix.ENOBUFS || aerr == unix.ENOMEM {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return
		}
		c := &attachClient{s: s, conn: os.NewFile(uintptr(nfd), "attach-client"),
			out: make(chan []byte, 1024), quit: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.conn.Close()
			continue
		}
		s.clients[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.write()
		go c.read()
	}
}

// output returns a writer whose data goes to every client as stream typ.
// It never blocks and never fails: a client too far behind is dropped.
func (s *attachServer) output(typ byte) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if len(p) == 0 {
			return 0, nil
		}
		frame := attachFrame(typ, p)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return len(p), nil
		}
		var slow []*attachClient
		for c := range s.clients {
			if c.queued+len(frame) > attachQueueBytes {
				slow = append(slow, c)
				continue
			}
			select {
			case c.out <- frame:
				c.queued += len(frame)
			default:
				slow = append(slow, c)
			}
		}
		s.mu.Unlock()
		for _, c := range slow {
			c.close()
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// write sends the client its queued frames; a nil frame is the end.
func (c *attachClient) write() {
	for {
		select {
		case f := <-c.out:
			if f == nil {
				c.close()
				return
			}
			c.s.mu.Lock()
			c.queued -= len(f)
			c.s.mu.Unlock()
			if _, err := c.conn.Write(f); err != nil {
				c.close()
				return
			}
		case <-c.quit:
			return
		}
	}
}

// read handles the client's frames until it goes.
func (c *attachClient) read() {
	defer c.close()
	r := bufio.NewReader(c.conn)
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := ReadAttachFrame(r, buf)
		if err != nil {
			return
		}
		switch typ {
		case AttachStdin:
			c.s.mu.Lock()
			c.stdinOpen = true
			stdin := c.s.stdin
			c.s.mu.Unlock()
			if stdin != nil && len(p) > 0 {
				// Blocks while the container does not read: only this
				// client waits.
				stdin.Write(p)
			}
		case AttachCloseStdin:
			if !c.s.stdinEnded(c) {
				return // detached
			}
		case AttachResize:
			if len(p) == 4 {
				c.s.resize(binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4]))
			}
		}
	}
}

// stdinEnded handles the end of a client's stdin. It reports whether the
// client stays attached: with StdinOnce and a pipe the container's stdin
// is closed and the client goes on reading output; otherwise the client
// is detached, as containerd does.
func (s *attachServer) stdinEnded(c *attachClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.stdinOpen {
		return true
	}
	c.stdinOpen = false
	if !s.stdinOnce || s.console != nil {
		return false
	}
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	return true
}

func (s *attachServer) resize(rows, cols uint16) {
	s.mu.Lock()
	console := s.console
	s.mu.Unlock()
	if console != nil {
		unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
}

// close disconnects the client; a client whose stdin was open lets go of
// it.
func (c *attachClient) close() {
	c.once.Do(func() {
		c.s.stdinEnded(c)
		c.s.mu.Lock()
		delete(c.s.clients, c)
		c.s.mu.Unlock()
		close(c.quit)
		c.conn.Close()
		c.s.wg.Done()
	})
}

// shutdown stops accepting, gives each client what is queued for it (for
// at most d) and disconnects them all, then removes the socket.
func (s *attachServer) shutdown(d time.Duration) {
	s.mu.Lock()
	s.closed = true
	s.listener.Close()
	deadline := time.Now().Add(d)
	var full []*attachClient
	for c := range s.clients {
		c.conn.SetWriteDeadline(deadline)
		select {
		case c.out <- nil:
		default:
			full = append(full, c)
		}
	}
	s.mu.Unlock()
	for _, c := range full {
		c.close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d + 100*time.Millisecond):
	}
	os.Remove(s.path)
}
