package runtime

import "testing"

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"c": true, "abc-1.2_3+x": true, "9lives": true, "A": true,
		"": false, "-x": false, ".x": false, "_x": false, "a/b": false, "../x": false, "a b": false, "é": false, "a\n": false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}
