package nsinit

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setupConsole gives the process a terminal from the container's own
// devpts: it opens /dev/ptmx, makes the pty's slave its stdio and
// controlling terminal, and sends the master to the runtime's caller over
// the unix socket sock (SCM_RIGHTS, with the terminal's name as payload, as
// runc's --console-socket does).
func setupConsole(sock int) error {
	return setupConsoleAt(sock, false)
}

// setupConsoleAt is setupConsole; with devConsole the terminal is also
// bind-mounted on /dev/console, as the container's init gets it.
func setupConsoleAt(sock int, devConsole bool) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	slave, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	if devConsole {
		if f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			f.Close()
		}
		if err := unix.Mount(name, "/dev/console", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind terminal on /dev/console: %w", err)
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup terminal: %w", err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	if err := unix.Sendmsg(sock, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send terminal: %w", err)
	}
	unix.Close(sock)
	return nil
}

// connectConsoleSocket connects to the unix socket at path.
func connectConsoleSocket(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect console socket %s: %w", path, err)
	}
	return fd, nil
}

// RecvConsole receives a terminal master sent by setupConsole.
func RecvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("receive terminal: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("receive terminal: no descriptor")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
