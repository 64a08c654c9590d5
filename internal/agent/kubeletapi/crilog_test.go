package kubeletapi

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseRecordReadsTheCRILogFormat(t *testing.T) {
	at := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)
	for _, tc := range []struct {
		line    string
		partial bool
		text    string
		bad     bool
	}{
		{line: "2016-10-06T00:17:09.669794202Z stdout F log content", text: "log content"},
		{line: "2016-10-06T00:17:09.669794202Z stderr P partial ", partial: true, text: "partial "},
		{line: "2016-10-06T00:17:09.669794202Z stdout F ", text: ""},
		{line: "2016-10-06T00:17:09.669794202Z stdout F", text: ""},
		{line: "2016-10-06T00:17:09.669794202Z stdout P:x tagged", partial: true, text: "tagged"},
		{line: "2016-10-06T02:17:09.669794202+02:00 stdout F zoned", text: "zoned"},
		{line: "2016-10-06T00:17:09.669794202Z stdin F x", bad: true},
		{line: "yesterday stdout F x", bad: true},
		{line: "2016-10-06T00:17:09.669794202Z", bad: true},
		{line: "2016-10-06T00:17:09.669794202Z stdout", bad: true},
	} {
		r, err := parseRecord([]byte(tc.line))
		if tc.bad {
			if err == nil {
				t.Errorf("%q: parsed, want an error", tc.line)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if !r.time.Equal(at) || r.partial != tc.partial || string(r.text) != tc.text {
			t.Errorf("%q: got %v %v %q", tc.line, r.time, r.partial, r.text)
		}
	}
}

func TestWatcherWakesOnAWriteInTheDirectory(t *testing.T) {
	dir := t.TempDir()
	w := newWatcher(dir)
	defer w.close()
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = os.WriteFile(filepath.Join(dir, "0.log"), []byte("x\n"), 0o644)
	}()
	start := time.Now()
	if err := w.wait(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// inotify wakes at once; polling within pollPeriod.
	if d := time.Since(start); d > time.Second {
		t.Errorf("woke after %v", d)
	}
}

func TestWatcherWaitEndsWithItsContext(t *testing.T) {
	w := newWatcher(t.TempDir())
	defer w.close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	for {
		if err := w.wait(ctx, 10*time.Second); err != nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("wait ignored the context")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v", d)
	}
}
