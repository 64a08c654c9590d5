package nsinit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestAttachFramesRoundTripAndBadOnesAreRefused(t *testing.T) {
	var b bytes.Buffer
	WriteAttachFrame(&b, AttachStdout, []byte("out"))
	WriteAttachFrame(&b, AttachStdin, nil)
	WriteAttachFrame(&b, AttachResize, []byte{0, 45, 0, 123})
	r := bufio.NewReader(&b)
	for _, want := range []struct {
		typ     byte
		payload string
	}{{AttachStdout, "out"}, {AttachStdin, ""}, {AttachResize, "\x00\x2d\x00\x7b"}} {
		typ, p, err := ReadAttachFrame(r, nil)
		if err != nil || typ != want.typ || string(p) != want.payload {
			t.Errorf("frame = %d %q %v, want %d %q", typ, p, err, want.typ, want.payload)
		}
	}
	if _, _, err := ReadAttachFrame(r, nil); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}

	huge := make([]byte, 5)
	binary.BigEndian.PutUint32(huge[1:], MaxAttachFrame+1)
	if _, _, err := ReadAttachFrame(bufio.NewReader(bytes.NewReader(huge)), nil); err == nil {
		t.Error("a frame over MaxAttachFrame was accepted")
	}
	cut := []byte{AttachStdout, 0, 0, 0, 10, 'a', 'b'}
	if _, _, err := ReadAttachFrame(bufio.NewReader(bytes.NewReader(cut)), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut frame: %v, want unexpected EOF", err)
	}
}
