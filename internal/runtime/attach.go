package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Attach connects to the stdio of a container created with a log path,
// through its shim's attach socket (see package nsinit), until the
// container exits or ctx ends. The container's output from now on goes to
// stdout and stderr (a terminal's all to stdout; either may be nil to
// drop it); stdin, when not nil, goes to the container's stdin, and its
// end ends the container's stdin (StdinOnce) or detaches; sizes from
// resize go to the container's terminal. Several clients may attach at
// once. One that reads its output too slowly is disconnected by the shim,
// and Attach then returns as if the container had exited; it returns nil
// at that end, ctx's error when ctx ends first.
func (r *Runtime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan TerminalSize) error {
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	if st, _ := r.status(rec); st == StatusStopped {
		return fmt.Errorf("container %q is not running: %w", id, ErrInvalidState)
	}
	path, release, err := nsinit.ShortSocketPath(filepath.Join(r.dir(id), nsinit.AttachSocket))
	if err != nil {
		return fmt.Errorf("attach to container %q: %w", id, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	release()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("attach to container %q (only one created with a log path can be attached to): %w", id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	done := make(chan struct{})
	defer close(done)

	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return nsinit.WriteAttachFrame(conn, typ, p)
	}
	if stdin != nil {
		// The first stdin frame, empty, tells the shim we bring stdin
		// (for StdinOnce). The copy may outlive Attach, blocked in a
		// Read: its sends then fail on the closed connection.
		if err := send(nsinit.AttachStdin, nil); err != nil {
			return attachEnd(ctx, err)
		}
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && send(nsinit.AttachStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					send(nsinit.AttachCloseStdin, nil)
					return
				}
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					var p [4]byte
					binary.BigEndian.PutUint16(p[0:2], size.Height)
					binary.BigEndian.PutUint16(p[2:4], size.Width)
					if send(nsinit.AttachResize, p[:]) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := nsinit.ReadAttachFrame(br, buf)
		if err != nil {
			return attachEnd(ctx, err)
		}
		var w io.Writer
		switch typ {
		case nsinit.AttachStdout:
			w = stdout
		case nsinit.AttachStderr:
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return fmt.Errorf("attach to container %q: %w", id, err)
			}
		}
	}
}

// attachEnd is what Attach returns when its connection ends with err.
func attachEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The shim closing a connection with unread stdin resets it.
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return fmt.Errorf("attach: %w", err)
}
