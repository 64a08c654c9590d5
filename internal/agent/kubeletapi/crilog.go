package kubeletapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// runningCheckPeriod is how often a follower asks whether the container
// still runs, and the longest it sleeps without news from the file.
const runningCheckPeriod = time.Second

// record is one line of a CRI log file:
//
//	<RFC3339Nano time> <stdout|stderr> <F|P>[:more tags] <text>
//
// A P (partial) record continues in the next records up to an F.
type record struct {
	time    time.Time
	partial bool
	text    []byte
}

// parseRecord parses a CRI log line without its newline.
func parseRecord(line []byte) (record, error) {
	var r record
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return r, errors.New("no stream after the time")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return r, fmt.Errorf("time: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return r, errors.New("no tag after the stream")
	}
	if s := string(stream); s != "stdout" && s != "stderr" {
		return r, fmt.Errorf("unknown stream %q", s)
	}
	tags, text, _ := bytes.Cut(rest, []byte{' '})
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	if len(tag) == 0 {
		return r, errors.New("no tag")
	}
	// As the kubelet: any tag but P ends the line.
	return record{time: t, partial: string(tag) == "P", text: text}, nil
}

// errLimit ends a copy when limitBytes is reached.
var errLimit = errors.New("log byte limit reached")

// logWriter writes records as kubectl shows them: the text of each line,
// with timestamps its first record's time and a space in front.
type logWriter struct {
	w          io.Writer
	timestamps bool
	since      time.Time // lines starting before are left out
	left       int64     // bytes still allowed; -1 for no limit
	midLine    bool      // the last record was partial
	skip       bool      // the current line is left out
	buf        []byte
}

// write writes r, returning errLimit once the byte limit is reached.
func (lw *logWriter) write(r record) error {
	startsLine := !lw.midLine
	if startsLine {
		lw.skip = !lw.since.IsZero() && r.time.Before(lw.since)
	}
	lw.midLine = r.partial
	if lw.skip {
		return nil
	}
	b := lw.buf[:0]
	if startsLine && lw.timestamps {
		b = r.time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, ' ')
	}
	b = append(b, r.text...)
	if !r.partial {
		b = append(b, '\n')
	}
	lw.buf = b
	limited := lw.left >= 0 && int64(len(b)) >= lw.left
	if limited {
		b = b[:lw.left]
	}
	n, err := lw.w.Write(b)
	if lw.left >= 0 {
		lw.left -= int64(n)
	}
	if err != nil {
		return err
	}
	if limited {
		return errLimit
	}
	return nil
}

// tailBuffer keeps the records of the last n lines.
type tailBuffer struct {
	n     int64
	lines [][]record // a ring of complete lines once full
	next  int        // the oldest line when the ring is full
	cur   []record   // the line being assembled
}

func (t *tailBuffer) add(r record) {
	t.cur = append(t.cur, r)
	if r.partial {
		return
	}
	line := t.cur
	t.cur = nil
	switch {
	case t.n == 0:
	case int64(len(t.lines)) < t.n:
		t.lines = append(t.lines, line)
	default:
		t.lines[t.next] = line
		t.next = (t.next + 1) % len(t.lines)
	}
}

// writeTo writes the kept lines. An unfinished last line counts as one; if
// it does not fit, lw leaves out the rest of it too.
func (t *tailBuffer) writeTo(lw *logWriter) error {
	skip := 0
	if len(t.cur) > 0 && int64(len(t.lines)) == t.n && t.n > 0 {
		skip = 1
	}
	for i := skip; i < len(t.lines); i++ {
		for _, r := range t.lines[(t.next+i)%len(t.lines)] {
			if err := lw.write(r); err != nil {
				return err
			}
		}
	}
	if t.n == 0 {
		if len(t.cur) > 0 {
			lw.midLine, lw.skip = true, true
		}
		return nil
	}
	for _, r := range t.cur {
		if err := lw.write(r); err != nil {
			return err
		}
	}
	return nil
}

// openLog opens a container's log file; a file not there yet is no error
// and gives a nil file.
func openLog(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return f, nil
}

// logCopier copies a CRI log file, and with follow its growth, to a client.
type logCopier struct {
	path    string
	opts    logOptions
	running func() bool
	out     *logWriter
	tail    *tailBuffer // nil once the file's first content is written
	f       *os.File    // nil while the file does not exist
	br      *bufio.Reader
	pending []byte // a record read up to EOF, its newline not yet written
}

// copyLog writes the log at path, already opened as f (nil if missing), to
// w as opts asks, calling flush whenever it has written what there is.
// running tells a follower when to stop. copyLog closes f.
func copyLog(ctx context.Context, f *os.File, path string, opts logOptions, running func() bool, w io.Writer, flush func()) error {
	c := &logCopier{
		path:    path,
		opts:    opts,
		running: running,
		out:     &logWriter{w: w, timestamps: opts.timestamps, since: opts.since, left: -1},
		f:       f,
		br:      bufio.NewReaderSize(nil, 64<<10),
	}
	if opts.limit > 0 {
		c.out.left = opts.limit
	}
	if opts.tail >= 0 {
		c.tail = &tailBuffer{n: opts.tail}
	}
	if f != nil {
		c.br.Reset(f)
	}
	defer func() {
		if c.f != nil {
			c.f.Close()
		}
	}()
	err := c.run(ctx, flush)
	flush()
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

func (c *logCopier) run(ctx context.Context, flush func()) error {
	if err := c.drain(); err != nil {
		return err
	}
	if !c.opts.follow {
		if err := c.emitPending(); err != nil {
			return err
		}
	}
	if c.tail != nil {
		if err := c.tail.writeTo(c.out); err != nil {
			return err
		}
		c.tail = nil
	}
	if !c.opts.follow {
		return nil
	}

	w := newWatcher(filepath.Dir(c.path))
	defer w.close()
	var checked time.Time
	for {
		flush()
		rotated, err := c.reopenIfRotated()
		if err != nil {
			return err
		}
		if rotated {
			if err := c.drain(); err != nil {
				return err
			}
			continue
		}
		if time.Since(checked) >= runningCheckPeriod {
			checked = time.Now()
			if !c.running() {
				// The container has stopped, so all it wrote is in the
				// file: read to the end once more and stop.
				if err := c.drain(); err != nil {
					return err
				}
				return c.emitPending()
			}
		}
		if err := w.wait(ctx, runningCheckPeriod); err != nil {
			return err
		}
		if err := c.drain(); err != nil {
			return err
		}
	}
}

// drain writes the file's complete records up to its end.
func (c *logCopier) drain() error {
	if c.f == nil {
		return nil
	}
	for {
		line, err := c.br.ReadBytes('\n')
		if err == io.EOF {
			c.pending = append(c.pending, line...)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", c.path, err)
		}
		if len(c.pending) > 0 {
			line = append(c.pending, line...)
			c.pending = nil
		}
		if err := c.emit(line[:len(line)-1]); err != nil {
			return err
		}
	}
}

// emitPending writes a last record that lacks its newline, as the kubelet
// does at the end of a file.
func (c *logCopier) emitPending() error {
	if len(c.pending) == 0 {
		return nil
	}
	line := c.pending
	c.pending = nil
	return c.emit(line)
}

func (c *logCopier) emit(line []byte) error {
	r, err := parseRecord(line)
	if err != nil {
		return nil // the kubelet skips malformed records too
	}
	if c.tail != nil {
		c.tail.add(r)
		return nil
	}
	return c.out.write(r)
}

// reopenIfRotated switches to a new file at the path: the kubelet rotates
// a log by renaming it and having the runtime reopen the path. The old
// file is read to its end first. It also opens a file that appeared late.
func (c *logCopier) reopenIfRotated() (bool, error) {
	fi, err := os.Stat(c.path)
	if err != nil {
		return false, nil // renamed and not yet recreated, or not yet there
	}
	if c.f != nil {
		if cur, err := c.f.Stat(); err == nil && os.SameFile(cur, fi) {
			return false, nil
		}
		if err := c.drain(); err != nil {
			return false, err
		}
		if err := c.emitPending(); err != nil {
			return false, err
		}
		c.f.Close()
		c.f = nil
	}
	f, err := openLog(c.path)
	if err != nil || f == nil {
		return false, err
	}
	c.f = f
	c.br.Reset(f)
	return true, nil
}
