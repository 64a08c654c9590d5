package kubeletapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// criLine is one CRI log record, newline included.
func criLine(at time.Time, stream, tag, text string) string {
	return fmt.Sprintf("%s %s %s %s\n", at.Format(time.RFC3339Nano), stream, tag, text)
}

// sampleLog has stdout and stderr interleaved and a line split in three
// partial records.
func sampleLog() string {
	return criLine(t0, "stdout", "F", "one") +
		criLine(t0.Add(1*time.Second), "stderr", "F", "two") +
		criLine(t0.Add(2*time.Second+500*time.Millisecond), "stdout", "P", "thr") +
		criLine(t0.Add(2*time.Second+600*time.Millisecond), "stdout", "P", "e") +
		criLine(t0.Add(2*time.Second+700*time.Millisecond), "stdout", "F", "e") +
		criLine(t0.Add(3*time.Second), "stdout", "F", "") +
		criLine(t0.Add(4*time.Second), "stdout", "F", "five has  spaces ")
}

type logsFixture struct {
	pods *fakePods
	dir  string
	url  string // the server's base URL
}

// newLogsFixture serves a pod default/web with container app (running,
// log sampleLog, a previous instance with its own log) and container
// fresh (no previous instance).
func newLogsFixture(t *testing.T) *logsFixture {
	t.Helper()
	dir := t.TempDir()
	f := &logsFixture{pods: newFakePods(), dir: dir}
	write(t, filepath.Join(dir, "app", "1.log"), sampleLog())
	write(t, filepath.Join(dir, "app", "0.log"), criLine(t0.Add(-time.Hour), "stdout", "F", "old instance"))
	write(t, filepath.Join(dir, "fresh", "0.log"), criLine(t0, "stdout", "F", "fresh"))
	f.pods.addContainer("default", "web", "app", fakeContainer{
		id: "app-1", log: filepath.Join(dir, "app", "1.log"),
		prevID: "app-0", prevLog: filepath.Join(dir, "app", "0.log"),
	}, false)
	f.pods.addContainer("default", "web", "fresh", fakeContainer{id: "fresh-0", log: filepath.Join(dir, "fresh", "0.log")}, false)
	srv := httptest.NewServer(Handler(Config{Pods: f.pods, Streams: &fakeStreams{}}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func (f *logsFixture) get(t *testing.T, path string, q url.Values) (int, string) {
	t.Helper()
	res, err := http.Get(f.url + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

func TestContainerLogsServesTheFileAsKubectlShowsIt(t *testing.T) {
	f := newLogsFixture(t)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) + " " }
	for _, tc := range []struct {
		name  string
		query url.Values
		want  string
	}{
		{"whole file, stdout and stderr in file order, partial records joined", nil,
			"one\ntwo\nthree\n\nfive has  spaces \n"},
		{"timestamps prefix each line with its first record's time",
			url.Values{"timestamps": {"true"}},
			ts(0) + "one\n" + ts(time.Second) + "two\n" + ts(2500*time.Millisecond) + "three\n" + ts(3*time.Second) + "\n" + ts(4*time.Second) + "five has  spaces \n"},
		{"tailLines counts whole lines", url.Values{"tailLines": {"3"}}, "three\n\nfive has  spaces \n"},
		{"tailLines beyond the file gives it all", url.Values{"tailLines": {"100"}}, "one\ntwo\nthree\n\nfive has  spaces \n"},
		{"tailLines 0 gives nothing", url.Values{"tailLines": {"0"}}, ""},
		{"sinceTime leaves out older lines", url.Values{"sinceTime": {t0.Add(2 * time.Second).Format(time.RFC3339)}},
			"three\n\nfive has  spaces \n"},
		{"a line is kept or left out whole by its first record's time", url.Values{"sinceTime": {t0.Add(2600 * time.Millisecond).Format(time.RFC3339Nano)}},
			"\nfive has  spaces \n"},
		{"limitBytes cuts the output", url.Values{"limitBytes": {"6"}}, "one\ntw"},
		{"limitBytes counts timestamps", url.Values{"limitBytes": {"10"}, "timestamps": {"true"}}, ts(0)[:10]},
		{"tail then since then limit", url.Values{"tailLines": {"4"}, "sinceTime": {t0.Add(2 * time.Second).Format(time.RFC3339)}, "limitBytes": {"8"}}, "three\n\nf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.get(t, "/containerLogs/default/web/app", tc.query)
			if code != http.StatusOK || body != tc.want {
				t.Errorf("got %d %q, want 200 %q", code, body, tc.want)
			}
		})
	}
}

func TestContainerLogsSinceSecondsCountsBackFromNow(t *testing.T) {
	f := newLogsFixture(t)
	p := filepath.Join(f.dir, "recent.log")
	now := time.Now()
	write(t, p, criLine(now.Add(-time.Hour), "stdout", "F", "an hour ago")+criLine(now.Add(-time.Second), "stdout", "F", "just now"))
	f.pods.addContainer("default", "web", "recent", fakeContainer{id: "recent-0", log: p}, false)
	code, body := f.get(t, "/containerLogs/default/web/recent", url.Values{"sinceSeconds": {"60"}})
	if code != http.StatusOK || body != "just now\n" {
		t.Errorf("got %d %q, want 200 %q", code, body, "just now\n")
	}
}

func TestContainerLogsPreviousReadsTheInstanceBefore(t *testing.T) {
	f := newLogsFixture(t)
	code, body := f.get(t, "/containerLogs/default/web/app", url.Values{"previous": {"true"}})
	if code != http.StatusOK || body != "old instance\n" {
		t.Errorf("got %d %q", code, body)
	}
}

func TestContainerLogsPreviousDoesNotNeedTheNewestInstance(t *testing.T) {
	f := newLogsFixture(t)
	f.pods.addContainer("default", "web", "crashing", fakeContainer{
		prevID: "crashing-0", prevLog: filepath.Join(f.dir, "app", "0.log"), waiting: "CrashLoopBackOff",
	}, false)
	code, body := f.get(t, "/containerLogs/default/web/crashing", url.Values{"previous": {"true"}})
	if code != http.StatusOK || body != "old instance\n" {
		t.Errorf("previous: got %d %q", code, body)
	}
	code, body = f.get(t, "/containerLogs/default/web/crashing", nil)
	if want := `container "crashing" in pod "web" is waiting to start: CrashLoopBackOff`; code != http.StatusBadRequest || strings.TrimSpace(body) != want {
		t.Errorf("newest: got %d %q, want 400 %q", code, body, want)
	}
}

func TestContainerLogsErrorsAreTheKubelets(t *testing.T) {
	f := newLogsFixture(t)
	for _, tc := range []struct {
		name, path string
		query      url.Values
		code       int
		body       string
	}{
		{"no previous instance", "/containerLogs/default/web/fresh", url.Values{"previous": {"true"}},
			http.StatusBadRequest, `previous terminated container "fresh" in pod "web" not found`},
		{"unknown container", "/containerLogs/default/web/nope", nil,
			http.StatusNotFound, `container "nope" not found in pod "web"`},
		{"unknown pod, even with previous", "/containerLogs/default/gone/app", url.Values{"previous": {"true"}},
			http.StatusNotFound, `container "app" not found in pod "gone"`},
		{"undecodable query", "/containerLogs/default/web/app", url.Values{"tailLines": {"x"}},
			http.StatusBadRequest, `{"message": "Unable to decode query."}`},
		{"negative tail", "/containerLogs/default/web/app", url.Values{"tailLines": {"-1"}},
			http.StatusUnprocessableEntity, `{"message": "Invalid request."}`},
		{"both since forms", "/containerLogs/default/web/app", url.Values{"sinceSeconds": {"5"}, "sinceTime": {t0.Format(time.RFC3339)}},
			http.StatusUnprocessableEntity, `{"message": "Invalid request."}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.get(t, tc.path, tc.query)
			if code != tc.code || strings.TrimSpace(body) != tc.body {
				t.Errorf("got %d %q, want %d %q", code, body, tc.code, tc.body)
			}
		})
	}
}

func TestContainerLogsMissingFileIsEmpty(t *testing.T) {
	f := newLogsFixture(t)
	f.pods.addContainer("default", "web", "quiet", fakeContainer{id: "quiet-0", log: filepath.Join(f.dir, "quiet", "0.log")}, false)
	code, body := f.get(t, "/containerLogs/default/web/quiet", url.Values{"follow": {"true"}})
	if code != http.StatusOK || body != "" {
		t.Errorf("got %d %q, want 200 and nothing", code, body)
	}
}

// follow opens a follow request and returns a reader of its body.
func (f *logsFixture) follow(t *testing.T, path string, q url.Values) (*bufio.Reader, func()) {
	t.Helper()
	if q == nil {
		q = url.Values{}
	}
	q.Set("follow", "true")
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	closeFn := func() { cancel(); res.Body.Close() }
	t.Cleanup(closeFn)
	return bufio.NewReader(res.Body), closeFn
}

// readLine reads one line from a follow body, failing after a timeout.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("read: %v (got %q)", res.err, res.s)
		}
		return res.s
	case <-time.After(5 * time.Second):
		t.Fatal("no line within 5s: not flushed?")
	}
	return ""
}

// expectEnd waits for a follow body to end.
func expectEnd(t *testing.T, r *bufio.Reader) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		rest, err := io.ReadAll(r)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("unexpected %q", rest)
		}
		ch <- err
	}()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end within 5s")
	}
}

func TestContainerLogsFollowStreamsAppendedLinesAndEndsWhenTheContainerStops(t *testing.T) {
	f := newLogsFixture(t)
	f.pods.setRunning("app-1", true)
	r, _ := f.follow(t, "/containerLogs/default/web/app", url.Values{"tailLines": {"1"}, "timestamps": {"true"}})
	if got, want := readLine(t, r), t0.Add(4*time.Second).Format(time.RFC3339Nano)+" five has  spaces \n"; got != want {
		t.Fatalf("first line %q, want %q", got, want)
	}

	p := filepath.Join(f.dir, "app", "1.log")
	appendTo(t, p, criLine(t0.Add(5*time.Second), "stdout", "F", "six"))
	if got, want := readLine(t, r), t0.Add(5*time.Second).Format(time.RFC3339Nano)+" six\n"; got != want {
		t.Fatalf("appended line %q, want %q", got, want)
	}
	// A record split across writes, and a line split across records.
	rec := criLine(t0.Add(6*time.Second), "stderr", "P", "sev")
	appendTo(t, p, rec[:10])
	time.Sleep(50 * time.Millisecond)
	appendTo(t, p, rec[10:]+criLine(t0.Add(7*time.Second), "stderr", "F", "en"))
	if got, want := readLine(t, r), t0.Add(6*time.Second).Format(time.RFC3339Nano)+" seven\n"; got != want {
		t.Fatalf("joined line %q, want %q", got, want)
	}

	// The container writes its last line and exits.
	appendTo(t, p, criLine(t0.Add(8*time.Second), "stdout", "F", "bye"))
	f.pods.setRunning("app-1", false)
	if got := readLine(t, r); !strings.HasSuffix(got, " bye\n") {
		t.Fatalf("last line %q", got)
	}
	expectEnd(t, r)
}

func TestContainerLogsFollowOfAStoppedContainerEndsAtTheFilesEnd(t *testing.T) {
	f := newLogsFixture(t)
	r, _ := f.follow(t, "/containerLogs/default/web/fresh", nil)
	if got := readLine(t, r); got != "fresh\n" {
		t.Fatalf("got %q", got)
	}
	expectEnd(t, r)
}

func TestContainerLogsFollowContinuesIntoARotatedFile(t *testing.T) {
	f := newLogsFixture(t)
	f.pods.setRunning("app-1", true)
	p := filepath.Join(f.dir, "app", "1.log")
	r, _ := f.follow(t, "/containerLogs/default/web/app", url.Values{"tailLines": {"0"}})

	appendTo(t, p, criLine(t0.Add(5*time.Second), "stdout", "F", "before rotation"))
	if got := readLine(t, r); got != "before rotation\n" {
		t.Fatalf("got %q", got)
	}
	// The kubelet's rotation: rename, then the runtime reopens the path.
	if err := os.Rename(p, p+".20260301-100005"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p+".20260301-100005", criLine(t0.Add(6*time.Second), "stdout", "F", "late in the old file"))
	time.Sleep(100 * time.Millisecond)
	write(t, p, criLine(t0.Add(7*time.Second), "stdout", "F", "in the new file"))
	for _, want := range []string{"late in the old file\n", "in the new file\n"} {
		if got := readLine(t, r); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	appendTo(t, p, criLine(t0.Add(8*time.Second), "stdout", "F", "more"))
	if got := readLine(t, r); got != "more\n" {
		t.Fatalf("got %q", got)
	}
	f.pods.setRunning("app-1", false)
	expectEnd(t, r)
}

func TestContainerLogsFollowStopsWhenTheClientGoesAway(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "0.log")
	write(t, p, criLine(t0, "stdout", "F", "hello"))
	pods := newFakePods()
	pods.addContainer("default", "web", "app", fakeContainer{id: "app-0", log: p}, true)
	h := Handler(Config{Pods: pods, Streams: &fakeStreams{}})

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/containerLogs/default/web/app?follow=true", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(rec, req)
		close(done)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("handler still following after the client left")
	}
	if rec.Body.String() != "hello\n" || !rec.Flushed {
		t.Errorf("body %q, flushed %v", rec.Body.String(), rec.Flushed)
	}
}
