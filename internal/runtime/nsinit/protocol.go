// Package nsinit is the code that runs in the two small processes behind
// every container: the shim, which stays the container's parent to reap it
// and record its exit, and the init, which runs inside the container's new
// namespaces, builds its root filesystem and process settings, waits for
// `start`, then execs the user's program.
//
// Both run from skiff-init, a binary that links nothing else (not even
// skiff-runtime's cgroup libraries), so that each starts about as fast as
// an empty Go program.
//
// File descriptors passed between the processes:
//
//	3  config pipe: a Config (EncodeConfig; ExecConfig for an exec), then EOF
//	4  sync pipe:   the init reports {"type":"ready"} or {"type":"error"}
//	5  report pipe: the shim reports the init's pid (shim only)
//	5  console:     in the init of a container whose shim holds the
//	                terminal (ShimConfig.Terminal): one end of a socketpair
//	                whose other end the shim keeps. The init sends the
//	                terminal's master over it (SCM_RIGHTS, see setupConsole)
//	                as it would to a --console-socket; Config.ConsoleFD
//	                names it (ShimConsoleFD).
//	6  shim config: the ShimConfig (EncodeShimConfig), then EOF (shim only)
//
// # Attach
//
// A shim that writes the container's log (ShimConfig.LogPath) holds the
// container's stdio: pipes for stdout and stderr, a pipe for stdin when
// asked (ShimConfig.OpenStdin), or the terminal's master. It serves them on
// the unix socket <state>/attach.sock (AttachSocket, mode 0600) to any
// number of clients at once. Both directions carry frames: a byte naming
// the stream, the payload's length (big-endian uint32), the payload.
//
//	shim → client  AttachStdout, AttachStderr: the container's output from
//	               the moment the client connected (a terminal's is all
//	               AttachStdout). The shim closes the connection once the
//	               container has exited and its output is written: the
//	               client then reads EOF.
//	client → shim  AttachStdin: data for the container's stdin. The first
//	               one, which may be empty, opens the client's stdin.
//	               AttachCloseStdin: the client's stdin has ended.
//	               AttachResize: a terminal size, rows then columns, each
//	               a big-endian uint16 (TIOCSWINSZ on the master).
//
// When a client's stdin ends (AttachCloseStdin, or it disconnects with its
// stdin open): with ShimConfig.StdinOnce and no terminal the container's
// stdin is closed, so that it reads EOF, and later stdin is dropped;
// otherwise the client is detached (as containerd's CRI attach does). A
// client that falls more than 1 MiB (attachQueueBytes) behind is
// disconnected, never waited for: the container's output is never held
// up, and a client never sees output with a gap in it. Output also goes
// to the log as before, whether or not anyone is attached; a terminal's
// is logged as stdout.
package nsinit

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what the runtime hands a container's init.
type Config struct {
	Spec *specs.Spec `json:"spec"`
	// Rootfs is the absolute path of the root filesystem on the host.
	Rootfs string `json:"rootfs"`
	// ExecFIFO is the host path of the FIFO that `start` opens; the init
	// waits for that before it execs. Empty: it execs once ready (run).
	ExecFIFO string `json:"execFifo"`
	// ConsoleSocket, when set, receives the terminal's master.
	ConsoleSocket string `json:"consoleSocket,omitempty"`
	// ConsoleFD, when not 0, is the init's descriptor (ShimConsoleFD) of
	// the socket that takes the terminal's master to the shim; it is used
	// instead of ConsoleSocket.
	ConsoleFD int `json:"consoleFd,omitempty"`
	// CgroupPaths are the container's cgroup directories on the host, by
	// v1 controller, shown read-only at its /sys/fs/cgroup.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// Seccomp is the spec's filter, compiled.
	Seccomp []unix.SockFilter `json:"seccomp,omitempty"`
}

// ExecConfig is what the runtime hands the init of an exec'd process.
type ExecConfig struct {
	Process *specs.Process `json:"process"`
	// ContainerPid is the container's init, whose namespaces are joined.
	ContainerPid int `json:"containerPid"`
	// ConsoleFD, when >= 0, is the socket that receives the terminal.
	ConsoleFD int `json:"consoleFd"`
	// Seccomp is the container's compiled filter, applied to the process too.
	Seccomp []unix.SockFilter `json:"seccomp,omitempty"`
}

// ShimConfig is what the shim needs from the runtime.
type ShimConfig struct {
	// StateDir is where the shim writes exit.json.
	StateDir string `json:"stateDir"`
	// Cloneflags are the namespaces the init is created in.
	Cloneflags uintptr `json:"cloneflags"`
	// MemoryCgroup is the memory cgroup directory, read for OOM kills.
	MemoryCgroup string `json:"memoryCgroup,omitempty"`
	// CgroupV2 says MemoryCgroup is a cgroup v2 directory.
	CgroupV2 bool `json:"cgroupV2,omitempty"`
	// PidNamespace, when set, is an existing pid namespace the init is
	// started in (joined by the shim: setns of a pid namespace only
	// applies to the children forked after it).
	PidNamespace string `json:"pidNamespace,omitempty"`
	// CloneIntoCgroup is the container's cgroup v2 directory (on a v2 or
	// hybrid host), which the init is created in (CLONE_INTO_CGROUP)
	// rather than migrated to.
	CloneIntoCgroup string `json:"cloneIntoCgroup,omitempty"`
	// LogPath, when set, receives the container's stdout and stderr in the
	// CRI log format (see criLog) instead of the shim's own stdio.
	LogPath string `json:"logPath,omitempty"`
	// Terminal (with LogPath) says the spec has process.terminal: the shim
	// takes the terminal's master from the init (ShimConsoleFD), logs what
	// it shows as stdout and serves it to attached clients.
	Terminal bool `json:"terminal,omitempty"`
	// OpenStdin (with LogPath) gives the container a stdin pipe that
	// attached clients write to; without it stdin is the shim's own
	// (/dev/null for CRI containers). A terminal is always writable.
	OpenStdin bool `json:"openStdin,omitempty"`
	// StdinOnce closes that pipe when the first client that attached with
	// stdin lets go of it (see Attach above).
	StdinOnce bool `json:"stdinOnce,omitempty"`
}

// ShimConsoleFD is the descriptor, in the init, of the socket over which
// the init sends the terminal's master to its shim.
const ShimConsoleFD = 5

// AttachSocket is the name, in the container's state directory, of the
// socket the shim serves attach on.
const AttachSocket = "attach.sock"

// Frame types of the attach socket.
const (
	AttachStdin      byte = 0
	AttachStdout     byte = 1
	AttachStderr     byte = 2
	AttachCloseStdin byte = 3
	AttachResize     byte = 4
)

// MaxAttachFrame is the largest payload a frame may carry.
const MaxAttachFrame = 1 << 20

// Message is one line on the sync or report pipe.
type Message struct {
	Type string `json:"type"` // "pid", "ready" or "error"
	Pid  int    `json:"pid,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

// Exit is what the shim records when the container's init ends.
type Exit struct {
	// Code is the exit code, or 128+signal when killed, as shells report.
	Code int `json:"code"`
	// Signal is the signal that killed the process, if any.
	Signal int `json:"signal,omitempty"`
	// OOMKilled reports that the memory cgroup killed a process.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// At is when the exit was seen (RFC 3339).
	At string `json:"at"`
}
