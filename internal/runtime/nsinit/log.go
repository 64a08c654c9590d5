package nsinit

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// criLog writes a container's output in the CRI log format the kubelet
// reads: one record per line, "<RFC 3339 nano time> <stream> <F|P> <text>",
// P marking a piece of a line longer than the buffer. SIGUSR1 reopens the
// file (the kubelet renames it to rotate, then asks for a reopen).
type criLog struct {
	path string
	mu   sync.Mutex
	f    *os.File
	wg   sync.WaitGroup
}

// maxLogLine is the longest piece of a line written as one record.
const maxLogLine = 16 * 1024

func openCRILog(path string) (*criLog, error) {
	l := &criLog{path: path}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, unix.SIGUSR1)
	go func() {
		for range reopen {
			l.reopen()
		}
	}()
	return l, nil
}

func (l *criLog) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// pipe returns the write end of a pipe whose lines are logged as stream
// and whose data is also passed on to tee as it comes.
func (l *criLog) pipe(stream string, tee io.Writer) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	l.follow(stream, r, tee, r)
	return w, nil
}

// follow logs the lines r gives as stream until it ends (a terminal's
// master ends with EIO), passing its data on to tee as it comes, so that
// attached clients see a line before its end. closer, if any, is closed
// at the end.
func (l *criLog) follow(stream string, r io.Reader, tee io.Writer, closer io.Closer) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if closer != nil {
			defer closer.Close()
		}
		l.copy(stream, io.TeeReader(r, tee))
	}()
}

func (l *criLog) copy(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag = "F"
				// A terminal ends lines with "\r\n"; the record ends
				// with the line, as containerd's do.
				line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
			} else if err != bufio.ErrBufferFull {
				tag = "F" // the last line, without its newline
			}
			rec := make([]byte, 0, len(line)+48)
			rec = time.Now().UTC().AppendFormat(rec, time.RFC3339Nano)
			rec = append(rec, ' ')
			rec = append(rec, stream...)
			rec = append(rec, ' ')
			rec = append(rec, tag...)
			rec = append(rec, ' ')
			rec = append(rec, line...)
			rec = append(rec, '\n')
			l.mu.Lock()
			l.f.Write(rec)
			l.mu.Unlock()
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// drain waits until the streams end or the deadline passes (a process
// the container left behind may hold them open).
func (l *criLog) drain(d time.Duration) {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
	l.mu.Lock()
	l.f.Sync()
	l.mu.Unlock()
}
